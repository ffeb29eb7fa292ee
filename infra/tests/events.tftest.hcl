# teiji's events: the permission on the deployment's bus only, and the optional rule that sends
# them to an SNS topic. Mock AWS provider: nothing is created.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  lambda_zip_path = "tests/stub-lambda.zip"
}

run "events_go_to_the_default_bus_and_only_there" {
  command = apply

  assert {
    condition     = local.execution_by_sid["PublishEvents"].Resource == ["arn:aws:events:ap-northeast-1:111111111111:event-bus/default"]
    error_message = "The tick may put events on the default bus of its own account and region, nowhere else."
  }
  assert {
    condition     = local.execution_by_sid["PublishEvents"].Action == ["events:PutEvents"]
    error_message = "Publishing needs events:PutEvents only."
  }
  assert {
    condition     = aws_lambda_function.tick.environment[0].variables["TEIJI_EVENT_BUS"] == "default"
    error_message = "The function is told the bus."
  }
  assert {
    condition     = length(aws_sns_topic.events) == 0 && length(aws_cloudwatch_event_rule.notify) == 0
    error_message = "No notification topic or rule unless asked for."
  }
}

run "a_bus_of_its_own_by_arn" {
  command = apply

  variables {
    event_bus_name = "arn:aws:events:ap-northeast-1:111111111111:event-bus/platform"
  }

  assert {
    condition     = local.execution_by_sid["PublishEvents"].Resource == ["arn:aws:events:ap-northeast-1:111111111111:event-bus/platform"]
    error_message = "A bus given by ARN is the one resource granted."
  }
}

run "no_bus_no_events_and_no_permission" {
  command = apply

  variables {
    event_bus_name = ""
    notify_emails  = ["ops@example.com"]
  }

  assert {
    condition     = !contains(keys(local.execution_by_sid), "PublishEvents")
    error_message = "Without a bus the role may not put events."
  }
  assert {
    condition     = length(aws_sns_topic.events) == 0
    error_message = "Without a bus there is nothing to notify from."
  }
}

run "emails_get_a_topic_a_rule_and_a_subscription_each" {
  command = apply

  variables {
    notify_emails       = ["ops@example.com", "dev@example.com"]
    notify_detail_types = ["Service Failed", "Tick Failed"]
  }

  assert {
    condition     = length(aws_sns_topic_subscription.email) == 2
    error_message = "One email subscription per address."
  }
  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.notify[0].event_pattern) == { source = ["teiji"], "detail-type" = ["Service Failed", "Tick Failed"] }
    error_message = "The rule matches teiji's events of the chosen detail types only."
  }
  assert {
    condition     = jsondecode(aws_sns_topic_policy.events[0].policy).Statement[0].Condition.ArnEquals["aws:SourceArn"] == aws_cloudwatch_event_rule.notify[0].arn
    error_message = "Only the rule may publish to the topic."
  }
}

run "an_unknown_detail_type_is_refused" {
  command = plan

  variables {
    notify_detail_types = ["Service Stoped"]
  }

  expect_failures = [var.notify_detail_types]
}
