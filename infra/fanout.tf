# Fan-out for fleets past one invocation (fanout = true; engine/fanout.py says why SQS and not a
# Step Functions Distributed Map). The scheduled tick becomes the orchestrator: with a role of
# its own that reads the documents, records the tick in the state table and sends one work item
# per (account, region) to the work queue, and nothing else. The worker function (the same zip,
# engine.handler.fanout_worker_handler) converges one scope per message under that scope's lease;
# it runs with the execution role, the one the target accounts' roles trust, plus the queue.
# A message that fails twice goes to the dead-letter queue (the tick's report counts that scope
# failed; the next tick converges it). The edits function (streams.tf) runs beside the workers:
# with TEIJI_FANOUT_QUEUE_URL in its environment it converges each scope's services under that
# scope's lease, the one its worker takes (same state table, same execution role).

locals {
  worker_function_name  = "${var.name_prefix}-worker"
  worker_log_group_name = "/aws/lambda/${local.worker_function_name}"
  # The first delivery, the visibility timeout, one retry: inside the tick's 15 minutes (the
  # aggregate message comes after 900 s, SQS's longest delay).
  fanout_visibility_s = 2 * var.fanout_worker_timeout
  # engine.fanout.MAX_RECEIVES: the first try and one retry within the tick.
  fanout_max_receives = 2
}

resource "aws_sqs_queue" "fanout_dead" {
  count                     = var.fanout ? 1 : 0
  name                      = "${var.name_prefix}-work-dead"
  message_retention_seconds = 1209600 # 14 days, the most SQS keeps: what failed, to read
  sqs_managed_sse_enabled   = true
  tags                      = local.tags
}

resource "aws_sqs_queue" "fanout" {
  count = var.fanout ? 1 : 0
  name  = "${var.name_prefix}-work"
  # A work item older than an hour is four ticks late; later ticks have handed its scope out.
  message_retention_seconds  = 3600
  visibility_timeout_seconds = local.fanout_visibility_s
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.fanout_dead[0].arn
    maxReceiveCount     = local.fanout_max_receives
  })
  tags = local.tags

  lifecycle {
    precondition {
      condition     = var.shards == 1
      error_message = "fanout = true replaces shards: set shards = 1 (one orchestrator; each account and region gets its own worker and lease)."
    }
  }
}

resource "aws_sqs_queue_redrive_allow_policy" "fanout_dead" {
  count     = var.fanout ? 1 : 0
  queue_url = aws_sqs_queue.fanout_dead[0].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.fanout[0].arn]
  })
}

# The orchestrator's role: the documents, the tick's records, the queue. No ECS, no AssumeRole.
resource "aws_iam_role" "orchestrator" {
  count              = var.fanout ? 1 : 0
  name               = "${var.name_prefix}-orchestrator"
  assume_role_policy = data.aws_iam_policy_document.execution_trust.json
  tags               = local.tags
}

locals {
  orchestrator_statements = [
    {
      Sid      = "WriteOwnLogs"
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = ["${aws_cloudwatch_log_group.tick.arn}:*"]
    },
    {
      Sid      = "ReadConfigTable"
      Effect   = "Allow"
      Action   = ["dynamodb:GetItem", "dynamodb:Query"]
      Resource = [aws_dynamodb_table.config.arn]
    },
    # Only the tick records of the fan-out (pk fanout#<tick>), never a baseline or a lease.
    {
      Sid       = "RecordTicks"
      Effect    = "Allow"
      Action    = ["dynamodb:PutItem"]
      Resource  = [aws_dynamodb_table.state.arn]
      Condition = { "ForAllValues:StringLike" = { "dynamodb:LeadingKeys" = ["fanout#*"] } }
    },
    {
      Sid      = "SendWorkItems"
      Effect   = "Allow"
      Action   = ["sqs:SendMessage"]
      Resource = [coalesce(one(aws_sqs_queue.fanout[*].arn), "-")]
    },
  ]
  orchestrator_key = var.table_kms_key_arn == null ? [] : [{
    Sid       = "TableKeyThroughDynamoDB"
    Effect    = "Allow"
    Action    = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    Resource  = [var.table_kms_key_arn]
    Condition = { StringEquals = { "kms:ViaService" = ["dynamodb.${local.region}.amazonaws.com"] } }
  }]
  orchestrator_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = concat(local.orchestrator_statements, local.orchestrator_key)
  })
  orchestrator_by_sid = { for statement in jsondecode(local.orchestrator_policy).Statement : statement.Sid => statement }
}

resource "aws_iam_role_policy" "orchestrator" {
  count  = var.fanout ? 1 : 0
  name   = "teiji-orchestrator"
  role   = aws_iam_role.orchestrator[0].id
  policy = local.orchestrator_policy
}

# The worker's additions to the execution role: its queue, its log group and the counter of
# the tick's outcomes (an Update inside TransactWriteItems needs dynamodb:UpdateItem).
locals {
  worker_statements = [
    {
      Sid      = "WorkQueue"
      Effect   = "Allow"
      Action   = ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
      Resource = [coalesce(one(aws_sqs_queue.fanout[*].arn), "-")]
    },
    {
      Sid       = "CountOutcomes"
      Effect    = "Allow"
      Action    = ["dynamodb:UpdateItem"]
      Resource  = [aws_dynamodb_table.state.arn]
      Condition = { "ForAllValues:StringLike" = { "dynamodb:LeadingKeys" = ["fanout#*"] } }
    },
    {
      Sid      = "WriteWorkerLogs"
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = ["${coalesce(one(aws_cloudwatch_log_group.worker[*].arn), "-")}:*"]
    },
  ]
  worker_by_sid = { for statement in local.worker_statements : statement.Sid => statement }
}

resource "aws_iam_role_policy" "worker" {
  count  = var.fanout ? 1 : 0
  name   = "teiji-worker"
  role   = aws_iam_role.execution.id
  policy = jsonencode({ Version = "2012-10-17", Statement = local.worker_statements })
}

resource "aws_cloudwatch_log_group" "worker" {
  #checkov:skip=CKV_AWS_158:KMS encryption is optional (log_kms_key_arn), as for the tick's log group; CloudWatch Logs encrypts log data at rest by default.
  count             = var.fanout ? 1 : 0
  name              = local.worker_log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = local.tags
}

resource "aws_lambda_function" "worker" {
  #checkov:skip=CKV_AWS_116:A function dead-letter queue serves asynchronous invocations only; the event source mapping invokes synchronously and the work queue's redrive policy has the dead-letter queue.
  #checkov:skip=CKV_AWS_117:Runs outside a VPC, as the tick does: it only calls AWS APIs.
  #checkov:skip=CKV_AWS_173:The environment holds table names and switches, no secrets (the tick's own); Lambda encrypts it at rest with an AWS managed key.
  #checkov:skip=CKV_AWS_272:The zip is the tick's, built by `make package` and pinned by source_code_hash; code signing needs a Signer profile the module cannot assume exists.
  #checkov:skip=CKV_AWS_50:X-Ray tracing would need xray:PutTraceSegments, which the least-privilege role does not grant; every scope logs its outcome.
  #checkov:skip=CKV_AWS_115:Concurrency is capped by the event source mapping's maximum_concurrency (fanout_max_concurrency), which throttles nothing back to the queue, unlike reserved concurrency.
  count            = var.fanout ? 1 : 0
  function_name    = local.worker_function_name
  description      = "teiji: converges the ECS services of one account and region per message (fan-out)"
  role             = aws_iam_role.execution.arn
  handler          = "engine.handler.fanout_worker_handler"
  runtime          = var.runtime
  architectures    = [var.architecture]
  filename         = local.zip_path
  source_code_hash = filebase64sha256(local.zip_path)
  timeout          = var.fanout_worker_timeout
  memory_size      = var.memory_size

  environment {
    # One account and region per worker: all its threads serve that one group.
    variables = merge(
      { for name, value in local.lambda_environment : name => value if value != null && value != "" },
      { TEIJI_CONCURRENCY = tostring(var.fanout_worker_concurrency) },
    )
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.worker[0].name
    application_log_level = var.log_level == "WARNING" ? "WARN" : var.log_level
    system_log_level      = "INFO"
  }

  tags = local.tags

  depends_on = [
    aws_cloudwatch_log_group.worker,
    aws_iam_role_policy.execution,
    aws_iam_role_policy.worker,
  ]
}

resource "aws_lambda_event_source_mapping" "fanout" {
  count            = var.fanout ? 1 : 0
  event_source_arn = aws_sqs_queue.fanout[0].arn
  function_name    = aws_lambda_function.worker[0].arn
  enabled          = var.schedule_enabled
  # One scope per invocation: a failure retries that scope only.
  batch_size              = 1
  function_response_types = ["ReportBatchItemFailures"]

  # Workers at once: each holds a whole (account, region) bucket of its own.
  scaling_config {
    maximum_concurrency = var.fanout_max_concurrency
  }

  depends_on = [aws_iam_role_policy.worker]
}

# Scopes whose worker failed twice: the tick's report names them; this says so in CloudWatch.
resource "aws_cloudwatch_metric_alarm" "fanout_dead" {
  count               = var.fanout ? 1 : 0
  alarm_name          = "${local.worker_function_name}-dead-letters"
  alarm_description   = "teiji's fan-out workers failed twice on some scopes (queue ${var.name_prefix}-work-dead); the next tick converges them. See the log group ${local.worker_log_group_name}."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.fanout_dead[0].name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_topic_arns
  ok_actions          = local.alarm_topic_arns
  tags                = local.tags
}
