# Wake on request: off by default; on, one Lambda target group per load balancer, wired to the
# wake function, named in TEIJI_WAKE_TARGET_GROUPS, and ModifyRule on those load balancers'
# rules only; the keep-awake schedule (wake_keep_minutes) and its GetMetricData. Mock AWS provider: nothing is created.

mock_provider "aws" {
  source = "./tests/mocks"
}

override_resource {
  target = aws_dynamodb_table.config
  values = { arn = "arn:aws:dynamodb:ap-northeast-1:111111111111:table/teiji-config" }
}

override_resource {
  target = aws_dynamodb_table.state
  values = { arn = "arn:aws:dynamodb:ap-northeast-1:111111111111:table/teiji-state" }
}

override_resource {
  target = aws_lambda_function.wake
  values = { arn = "arn:aws:lambda:ap-northeast-1:111111111111:function:teiji-wake" }
}

override_resource {
  target = aws_iam_role.wake
  values = { arn = "arn:aws:iam::111111111111:role/teiji-wake" }
}

override_resource {
  target = aws_cloudwatch_log_group.wake
  values = { arn = "arn:aws:logs:ap-northeast-1:111111111111:log-group:/aws/lambda/teiji-wake" }
}

# The mock would give every target group the same ARN, or a random string; each its own.
override_resource {
  target = aws_lb_target_group.wake["arn:aws:elasticloadbalancing:ap-northeast-1:111111111111:loadbalancer/app/stg-web/0123456789abcdef"]
  values = { arn = "arn:aws:elasticloadbalancing:ap-northeast-1:111111111111:targetgroup/teiji-wake-0123456789abcdef/1111111111111111" }
}

override_resource {
  target = aws_lb_target_group.wake["arn:aws:elasticloadbalancing:ap-northeast-1:111111111111:loadbalancer/app/stg-api/fedcba9876543210"]
  values = { arn = "arn:aws:elasticloadbalancing:ap-northeast-1:111111111111:targetgroup/teiji-wake-fedcba9876543210/2222222222222222" }
}

variables {
  lambda_zip_path = "tests/stub-lambda.zip"
  web             = "arn:aws:elasticloadbalancing:ap-northeast-1:111111111111:loadbalancer/app/stg-web/0123456789abcdef"
  api             = "arn:aws:elasticloadbalancing:ap-northeast-1:111111111111:loadbalancer/app/stg-api/fedcba9876543210"
}

run "off_by_default" {
  command = apply

  assert {
    condition = (
      length(aws_lb_target_group.wake) == 0 && length(aws_lambda_function.wake) == 0 &&
      length(aws_lambda_permission.wake) == 0 && length(aws_lb_target_group_attachment.wake) == 0 &&
      length(aws_iam_role.wake) == 0 && length(aws_iam_role_policy.wake) == 0 &&
      length(aws_cloudwatch_log_group.wake) == 0 && length(aws_cloudwatch_event_rule.wake_keep) == 0 &&
      length(aws_cloudwatch_event_target.wake_keep) == 0 && length(aws_lambda_permission.wake_keep) == 0
    )
    error_message = "Without wake_load_balancers there is no wake function, target group, permission, role or keep-awake schedule."
  }
  assert {
    condition = alltrue([
      for variables in [aws_lambda_function.tick.environment[0].variables, aws_lambda_function.edits[0].environment[0].variables] :
      !contains(keys(variables), "TEIJI_WAKE_TARGET_GROUPS")
    ])
    error_message = "Without wake_load_balancers TEIJI_WAKE_TARGET_GROUPS is not set: wake on request is off."
  }
  assert {
    condition     = !contains(flatten([for s in values(local.execution_by_sid) : s.Action]), "elasticloadbalancing:ModifyRule")
    error_message = "Without wake_load_balancers the execution role may change no listener rule."
  }
  assert {
    condition     = contains(keys(local.execution_by_sid), "DescribeWakeRules")
    error_message = "The rules are still read, so the tick can report a load balancer without a wake target group."
  }
  assert {
    condition     = output.wake_target_groups == {} && output.wake_function_name == null
    error_message = "No wake outputs when it is off."
  }
}

run "two_load_balancers" {
  command = apply

  variables {
    wake_load_balancers = [var.web, var.api]
  }

  assert {
    condition     = toset(keys(aws_lb_target_group.wake)) == toset([var.web, var.api]) && aws_lb_target_group.wake[var.web].arn != aws_lb_target_group.wake[var.api].arn
    error_message = "Each load balancer gets a target group of its own (a target group serves one load balancer)."
  }
  assert {
    condition = alltrue([
      for group in values(aws_lb_target_group.wake) :
      group.target_type == "lambda" && group.health_check[0].enabled == false && length(group.name) <= 32
    ])
    error_message = "Lambda target groups, no health checks (each would invoke the function and wake the service), names of at most 32 characters."
  }
  assert {
    condition     = aws_lb_target_group.wake[var.web].name == "teiji-wake-0123456789abcdef" && aws_lb_target_group.wake[var.web].tags["teiji:wake-load-balancer"] == var.web
    error_message = "A target group is named after its load balancer's id and tagged with its ARN: ${aws_lb_target_group.wake[var.web].name}"
  }
  assert {
    condition = alltrue([
      for balancer in [var.web, var.api] :
      aws_lambda_permission.wake[balancer].principal == "elasticloadbalancing.amazonaws.com" &&
      aws_lambda_permission.wake[balancer].action == "lambda:InvokeFunction" &&
      aws_lambda_permission.wake[balancer].source_arn == aws_lb_target_group.wake[balancer].arn &&
      aws_lambda_permission.wake[balancer].function_name == "teiji-wake"
    ])
    error_message = "Each target group, and nothing else, may invoke the wake function."
  }
  assert {
    condition = alltrue([
      for balancer in [var.web, var.api] :
      aws_lb_target_group_attachment.wake[balancer].target_group_arn == aws_lb_target_group.wake[balancer].arn &&
      aws_lb_target_group_attachment.wake[balancer].target_id == "arn:aws:lambda:ap-northeast-1:111111111111:function:teiji-wake"
    ])
    error_message = "The wake function is the target of each wake target group."
  }
  assert {
    condition = (
      aws_lambda_function.wake[0].handler == "engine.handler.wake_handler" &&
      aws_lambda_function.wake[0].filename == aws_lambda_function.tick.filename &&
      aws_lambda_function.wake[0].timeout == 30 &&
      aws_lambda_function.wake[0].reserved_concurrent_executions == 10
    )
    error_message = "The wake function: the tick's zip, its own handler, a 30 s timeout, reserved concurrency wake_max_concurrency."
  }
  assert {
    condition = alltrue([
      for variables in [
        aws_lambda_function.tick.environment[0].variables,
        aws_lambda_function.edits[0].environment[0].variables,
        aws_lambda_function.wake[0].environment[0].variables,
      ] :
      variables["TEIJI_WAKE_TARGET_GROUPS"] == "${var.api}=${aws_lb_target_group.wake[var.api].arn},${var.web}=${aws_lb_target_group.wake[var.web].arn}"
    ])
    error_message = "Every function that reads the settings pairs each load balancer with its wake target group: ${aws_lambda_function.tick.environment[0].variables["TEIJI_WAKE_TARGET_GROUPS"]}"
  }
  assert {
    condition     = aws_lambda_function.wake[0].environment[0].variables == aws_lambda_function.tick.environment[0].variables
    error_message = "The wake function reads the tick's settings."
  }
  assert {
    condition = alltrue([
      for by_sid in [local.execution_by_sid, local.wake_by_sid] :
      by_sid["SwapWakeRules"].Action == ["elasticloadbalancing:ModifyRule"] && toset(by_sid["SwapWakeRules"].Resource) == toset([
        "arn:aws:elasticloadbalancing:ap-northeast-1:111111111111:listener-rule/app/stg-web/0123456789abcdef/*",
        "arn:aws:elasticloadbalancing:ap-northeast-1:111111111111:listener-rule/app/stg-api/fedcba9876543210/*",
      ])
    ])
    error_message = "ModifyRule: the rules of exactly the two load balancers: ${jsonencode(local.execution_by_sid["SwapWakeRules"].Resource)}"
  }
  assert {
    condition     = length([for s in values(local.execution_by_sid) : s if contains(s.Action, "elasticloadbalancing:ModifyRule")]) == 1 && length([for s in values(local.wake_by_sid) : s if contains(s.Action, "elasticloadbalancing:ModifyRule")]) == 1
    error_message = "No other statement grants ModifyRule."
  }
  assert {
    condition     = aws_lambda_function.wake[0].role == "arn:aws:iam::111111111111:role/teiji-wake" && aws_iam_role_policy.wake[0].role == aws_iam_role.wake[0].id
    error_message = "The wake function runs with its own role."
  }
  assert {
    condition     = local.wake_by_sid["WriteOverrides"].Action == ["dynamodb:PutItem"] && local.wake_by_sid["WriteOverrides"].Resource == ["arn:aws:dynamodb:ap-northeast-1:111111111111:table/teiji-config"] && local.wake_by_sid["WriteOverrides"].Condition["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"] == ["override"]
    error_message = "The wake function writes override items of the config table only."
  }
  assert {
    condition = alltrue([
      for sid, s in local.wake_by_sid :
      length(setintersection(toset(s.Action), toset(["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem", "dynamodb:TransactWriteItems"]))) == 0
      if sid != "WriteOverrides" && (contains(s.Resource, "arn:aws:dynamodb:ap-northeast-1:111111111111:table/teiji-config") || contains(s.Resource, "*"))
    ])
    error_message = "No other statement lets the wake function write the config table."
  }
  assert {
    condition     = local.wake_by_sid["StateTable"].Resource == ["arn:aws:dynamodb:ap-northeast-1:111111111111:table/teiji-state"] && toset(local.wake_by_sid["StateTable"].Action) == toset(local.execution_by_sid["StateTable"].Action)
    error_message = "The wake function uses the state table as the tick does."
  }
  assert {
    condition     = local.wake_by_sid["WriteOwnLogs"].Resource == ["arn:aws:logs:ap-northeast-1:111111111111:log-group:/aws/lambda/teiji-wake:*"] && aws_lambda_function.wake[0].logging_config[0].log_group == "/aws/lambda/teiji-wake"
    error_message = "The wake function logs to its own log group."
  }
  assert {
    condition = output.wake_target_groups == {
      (var.web) = "arn:aws:elasticloadbalancing:ap-northeast-1:111111111111:targetgroup/teiji-wake-0123456789abcdef/1111111111111111"
      (var.api) = "arn:aws:elasticloadbalancing:ap-northeast-1:111111111111:targetgroup/teiji-wake-fedcba9876543210/2222222222222222"
    } && output.wake_function_name == "teiji-wake"
    error_message = "The outputs name the target groups by load balancer, and the function."
  }
  # The keep-awake run: every 5 minutes by default, the same function, its constant input.
  assert {
    condition = (
      aws_cloudwatch_event_rule.wake_keep[0].schedule_expression == "rate(5 minutes)" &&
      aws_cloudwatch_event_target.wake_keep[0].arn == "arn:aws:lambda:ap-northeast-1:111111111111:function:teiji-wake" &&
      jsondecode(aws_cloudwatch_event_target.wake_keep[0].input) == { teiji = "keep-awake" } &&
      aws_cloudwatch_event_target.wake_keep[0].retry_policy[0].maximum_retry_attempts == 0
    )
    error_message = "The keep-awake schedule invokes the wake function every wake_keep_minutes with {\"teiji\": \"keep-awake\"} and no retries."
  }
  assert {
    condition = (
      aws_lambda_permission.wake_keep[0].principal == "events.amazonaws.com" &&
      aws_lambda_permission.wake_keep[0].source_arn == aws_cloudwatch_event_rule.wake_keep[0].arn &&
      aws_lambda_permission.wake_keep[0].function_name == "teiji-wake"
    )
    error_message = "Only the keep-awake rule may invoke the wake function through EventBridge."
  }
  assert {
    condition     = local.wake_by_sid["ReadRequestCounts"].Action == ["cloudwatch:GetMetricData"] && local.wake_by_sid["ReadRequestCounts"].Resource == ["*"]
    error_message = "The wake role reads metrics (GetMetricData has no resource-level permission)."
  }
  assert {
    condition     = length([for s in values(local.execution_by_sid) : s if contains(s.Action, "cloudwatch:GetMetricData")]) == 0 && length([for s in values(local.wake_by_sid) : s if contains(s.Action, "cloudwatch:GetMetricData")]) == 1
    error_message = "Only the wake role, in one statement, may read metrics; the execution role may not."
  }
}

run "the_keep_awake_run_turned_off" {
  command = apply

  variables {
    wake_load_balancers = [var.web]
    wake_keep_minutes   = 0
  }

  assert {
    condition = (
      length(aws_cloudwatch_event_rule.wake_keep) == 0 && length(aws_cloudwatch_event_target.wake_keep) == 0 &&
      length(aws_lambda_permission.wake_keep) == 0 && length(aws_lambda_function.wake) == 1 &&
      !contains(keys(local.wake_by_sid), "ReadRequestCounts")
    )
    error_message = "wake_keep_minutes = 0: no schedule, no permission for EventBridge, no GetMetricData; the wake function stays."
  }
}

run "the_keep_awake_run_every_minute" {
  command = plan

  variables {
    wake_load_balancers = [var.web]
    wake_keep_minutes   = 1
  }

  assert {
    condition     = aws_cloudwatch_event_rule.wake_keep[0].schedule_expression == "rate(1 minute)"
    error_message = "One minute is said in the singular, as EventBridge requires: ${aws_cloudwatch_event_rule.wake_keep[0].schedule_expression}"
  }
}

run "a_keep_awake_interval_past_an_hour_is_refused" {
  command = plan

  variables {
    wake_load_balancers = [var.web]
    wake_keep_minutes   = 61
  }

  expect_failures = [var.wake_keep_minutes]
}

# The wake function acts in this account and region only, even when the tick reaches further.
run "the_wake_role_stays_in_its_account_and_region" {
  command = apply

  variables {
    wake_load_balancers = [var.web]
    allowed_accounts    = ["222222222222"]
    allowed_regions     = ["us-east-1"]
    role_name           = "teiji-target"
    clusters            = ["web"]
  }

  assert {
    condition     = local.wake_by_sid["Services"].Resource == ["arn:aws:ecs:ap-northeast-1:111111111111:service/web/*"] && length(local.execution_by_sid["Services"].Resource) == 2
    error_message = "The wake role's ECS grants: the listed clusters in this account and region: ${jsonencode(local.wake_by_sid["Services"].Resource)}"
  }
  assert {
    condition     = local.wake_by_sid["DescribeTargetHealth"].Condition.StringEquals["aws:RequestedRegion"] == ["ap-northeast-1"]
    error_message = "The wake role's grants on \"*\" are held to this region."
  }
  assert {
    condition     = alltrue([for s in values(local.wake_by_sid) : alltrue([for a in s.Action : !startswith(a, "sts:") && !startswith(a, "ssm:")])])
    error_message = "The wake role assumes no role and reads no ExternalId."
  }
  assert {
    condition     = contains(keys(local.execution_by_sid), "AssumeRoleInOtherAccounts")
    error_message = "The tick still reaches the other account."
  }
}

# Fan-out: the workers converge the sleeping services, so they read the pairs too.
run "the_fanout_worker_reads_the_pairs" {
  command = apply

  variables {
    wake_load_balancers = [var.web]
    fanout              = true
    stream_edits        = false
  }

  assert {
    condition     = aws_lambda_function.worker[0].environment[0].variables["TEIJI_WAKE_TARGET_GROUPS"] == "${var.web}=${aws_lb_target_group.wake[var.web].arn}"
    error_message = "The fan-out worker reads TEIJI_WAKE_TARGET_GROUPS."
  }
}

run "a_long_name_prefix_still_fits_the_target_group_name" {
  command = plan

  variables {
    name_prefix         = "a-very-long-deployment-name-for-teiji-01"
    wake_load_balancers = [var.web]
  }

  assert {
    condition     = aws_lb_target_group.wake[var.web].name == "a-very-lon-wake-0123456789abcdef" && length(aws_lb_target_group.wake[var.web].name) == 32
    error_message = "Target group names are at most 32 characters: ${aws_lb_target_group.wake[var.web].name}"
  }
}

run "a_network_load_balancer_is_refused" {
  command = plan

  variables {
    wake_load_balancers = ["arn:aws:elasticloadbalancing:ap-northeast-1:111111111111:loadbalancer/net/stg-nlb/0123456789abcdef"]
  }

  expect_failures = [var.wake_load_balancers]
}

run "a_target_group_arn_is_refused" {
  command = plan

  variables {
    wake_load_balancers = ["arn:aws:elasticloadbalancing:ap-northeast-1:111111111111:targetgroup/stg-web/0123456789abcdef"]
  }

  expect_failures = [var.wake_load_balancers]
}

run "a_load_balancer_named_twice_is_refused" {
  command = plan

  variables {
    wake_load_balancers = [var.web, var.web]
  }

  expect_failures = [var.wake_load_balancers]
}

run "a_load_balancer_of_another_account_is_refused" {
  command = plan

  variables {
    wake_load_balancers = ["arn:aws:elasticloadbalancing:ap-northeast-1:222222222222:loadbalancer/app/stg-web/0123456789abcdef"]
  }

  expect_failures = [aws_lb_target_group.wake]
}

run "a_load_balancer_of_another_region_is_refused" {
  command = plan

  variables {
    wake_load_balancers = ["arn:aws:elasticloadbalancing:us-east-1:111111111111:loadbalancer/app/stg-web/0123456789abcdef"]
  }

  expect_failures = [aws_lb_target_group.wake]
}
