# Both modes: the single-invocation tick (the default) and the fan-out (fanout = true).
# Mock AWS provider: nothing is created.

mock_provider "aws" {
  source = "./tests/mocks"
}

override_resource {
  target = aws_sqs_queue.fanout
  values = {
    arn = "arn:aws:sqs:ap-northeast-1:111111111111:teiji-work"
    url = "https://sqs.ap-northeast-1.amazonaws.com/111111111111/teiji-work"
  }
}

override_resource {
  target = aws_sqs_queue.fanout_dead
  values = {
    arn = "arn:aws:sqs:ap-northeast-1:111111111111:teiji-work-dead"
    url = "https://sqs.ap-northeast-1.amazonaws.com/111111111111/teiji-work-dead"
  }
}

override_resource {
  target = aws_iam_role.orchestrator
  values = { arn = "arn:aws:iam::111111111111:role/teiji-orchestrator" }
}

override_resource {
  target = aws_cloudwatch_log_group.worker
  values = { arn = "arn:aws:logs:ap-northeast-1:111111111111:log-group:/aws/lambda/teiji-worker" }
}

variables {
  lambda_zip_path = "tests/stub-lambda.zip"
}

run "single_invocation_is_the_default" {
  command = apply

  assert {
    condition     = length(aws_sqs_queue.fanout) == 0 && length(aws_lambda_function.worker) == 0 && length(aws_lambda_event_source_mapping.fanout) == 0
    error_message = "Without fanout there is no queue, no worker and no mapping."
  }
  assert {
    condition     = length(aws_iam_role.orchestrator) == 0 && aws_lambda_function.tick.role == aws_iam_role.execution.arn
    error_message = "Without fanout the tick runs with the execution role."
  }
  assert {
    condition     = !contains(keys(aws_lambda_function.tick.environment[0].variables), "TEIJI_FANOUT_QUEUE_URL")
    error_message = "Without fanout the tick converges every service itself."
  }
  assert {
    condition     = output.fanout_queue_url == null
    error_message = "No queue URL without fanout."
  }
}

run "fanout_wires_queue_worker_and_mapping" {
  command = apply

  variables {
    fanout                 = true
    fanout_max_concurrency = 100
    fanout_worker_timeout  = 180
  }

  assert {
    condition     = aws_lambda_function.tick.environment[0].variables["TEIJI_FANOUT_QUEUE_URL"] == "https://sqs.ap-northeast-1.amazonaws.com/111111111111/teiji-work"
    error_message = "The tick hands the scopes to the work queue."
  }
  assert {
    condition     = aws_lambda_function.worker[0].environment[0].variables["TEIJI_CONCURRENCY"] == "32" && aws_lambda_function.tick.environment[0].variables["TEIJI_CONCURRENCY"] == "8"
    error_message = "A worker works 32 services of its one scope at once; the tick keeps 8 per scope."
  }
  assert {
    condition     = jsondecode(aws_sqs_queue.fanout[0].redrive_policy).maxReceiveCount == 2 && jsondecode(aws_sqs_queue.fanout[0].redrive_policy).deadLetterTargetArn == "arn:aws:sqs:ap-northeast-1:111111111111:teiji-work-dead"
    error_message = "A work item is tried twice (engine.fanout.MAX_RECEIVES), then dead-lettered."
  }
  assert {
    condition     = aws_sqs_queue.fanout[0].visibility_timeout_seconds == 2 * aws_lambda_function.worker[0].timeout && aws_sqs_queue.fanout[0].visibility_timeout_seconds + aws_lambda_function.worker[0].timeout <= 900
    error_message = "A try, the visibility timeout and a retry fit in the tick's 15 minutes."
  }
  assert {
    condition     = aws_sqs_queue.fanout[0].sqs_managed_sse_enabled && aws_sqs_queue.fanout_dead[0].sqs_managed_sse_enabled
    error_message = "Both queues are encrypted."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.fanout[0].scaling_config[0].maximum_concurrency == 100 && aws_lambda_event_source_mapping.fanout[0].batch_size == 1
    error_message = "The mapping caps the workers at fanout_max_concurrency, one scope each."
  }
  assert {
    condition     = contains(aws_lambda_event_source_mapping.fanout[0].function_response_types, "ReportBatchItemFailures")
    error_message = "A held or failed scope is delivered again on its own."
  }
  assert {
    condition     = aws_lambda_function.worker[0].handler == "engine.handler.fanout_worker_handler" && aws_lambda_function.worker[0].filename == aws_lambda_function.tick.filename
    error_message = "The worker is the tick's zip with its own handler."
  }
  assert {
    condition     = aws_lambda_function.worker[0].role == aws_iam_role.execution.arn
    error_message = "The worker runs with the execution role, the one target accounts trust."
  }
  assert {
    condition     = aws_lambda_function.tick.role == "arn:aws:iam::111111111111:role/teiji-orchestrator"
    error_message = "The orchestrator runs with its own role."
  }
  assert {
    condition     = local.orchestrator_by_sid["SendWorkItems"].Action == ["sqs:SendMessage"] && local.orchestrator_by_sid["SendWorkItems"].Resource == ["arn:aws:sqs:ap-northeast-1:111111111111:teiji-work"]
    error_message = "The orchestrator may send to the work queue only."
  }
  assert {
    condition     = alltrue([for s in values(local.orchestrator_by_sid) : alltrue([for a in s.Action : !startswith(a, "ecs:") && !startswith(a, "application-autoscaling:") && !startswith(a, "sts:") && !startswith(a, "elasticloadbalancing:")])])
    error_message = "The orchestrator's role converges nothing: no ECS, scaling, ELB or AssumeRole."
  }
  assert {
    condition     = local.orchestrator_by_sid["RecordTicks"].Action == ["dynamodb:PutItem"] && local.orchestrator_by_sid["RecordTicks"].Condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["fanout#*"]
    error_message = "The orchestrator writes the fan-out's tick records only."
  }
  assert {
    condition     = local.worker_by_sid["WorkQueue"].Resource == ["arn:aws:sqs:ap-northeast-1:111111111111:teiji-work"] && !contains(local.worker_by_sid["WorkQueue"].Action, "sqs:SendMessage")
    error_message = "The worker receives and deletes on the work queue, and sends nothing."
  }
  assert {
    condition     = local.worker_by_sid["CountOutcomes"].Action == ["dynamodb:UpdateItem"] && local.worker_by_sid["CountOutcomes"].Condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["fanout#*"]
    error_message = "The worker updates the fan-out's records only."
  }
  assert {
    condition     = jsondecode(aws_sqs_queue_redrive_allow_policy.fanout_dead[0].redrive_allow_policy).sourceQueueArns == ["arn:aws:sqs:ap-northeast-1:111111111111:teiji-work"]
    error_message = "Only the work queue may dead-letter into its DLQ."
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.fanout_dead) == 1
    error_message = "Dead-lettered scopes raise an alarm."
  }
}

run "fanout_refuses_shards" {
  command = plan

  variables {
    fanout = true
    shards = 2
  }

  expect_failures = [aws_sqs_queue.fanout]
}

# The edits function converges each scope's services under that scope's lease
# (engine/stream_handler.py): it runs beside the workers.
run "fanout_runs_beside_the_edits_function" {
  command = apply

  variables {
    fanout = true
  }

  assert {
    condition     = length(aws_lambda_function.edits) == 1 && length(aws_lambda_event_source_mapping.edits) == 1 && length(aws_lambda_function.worker) == 1
    error_message = "Fan-out and the edits function are both on (stream_edits defaults to true)."
  }
  assert {
    condition     = aws_lambda_function.edits[0].environment[0].variables["TEIJI_FANOUT_QUEUE_URL"] == "https://sqs.ap-northeast-1.amazonaws.com/111111111111/teiji-work"
    error_message = "The edits function knows fan-out is on, so it takes the scopes' leases."
  }
  assert {
    condition     = aws_lambda_function.edits[0].role == aws_iam_role.execution.arn && aws_lambda_function.worker[0].role == aws_iam_role.execution.arn
    error_message = "The edits function and the workers share the execution role."
  }
  assert {
    condition     = local.execution_by_sid["StateTable"].Resource == [aws_dynamodb_table.state.arn] && !contains(keys(local.execution_by_sid["StateTable"]), "Condition") && length(setsubtract(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"], local.execution_by_sid["StateTable"].Action)) == 0
    error_message = "The execution role reads and writes every lease record of the state table, the scopes' (lease#scope#...) included."
  }
  assert {
    condition     = length(aws_sqs_queue.fanout) == 1 && length(aws_sqs_queue.edits_failed) == 1
    error_message = "Both queues exist: the work queue and the edits' on-failure queue."
  }
}
