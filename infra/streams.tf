# Edits that take effect in seconds: the config table's DynamoDB stream (keys only, see
# dynamodb.tf) triggers the edits function, the same zip as the tick with its own handler
# (engine.handler.stream_handler, which hands each batch to engine/stream_handler.py). It
# converges the services a batch of edits touches under the tick lease, or with fanout = true
# under each (account, region)'s lease, the one its worker takes (README, "Edits that take
# effect in seconds"). stream_edits = false removes it all; edits then wait for the tick.

locals {
  edits_function_name  = "${var.name_prefix}-edits"
  edits_log_group_name = "/aws/lambda/${local.edits_function_name}"
  document_kinds       = ["schedule", "calendar", "override", "profile"]
}

resource "aws_cloudwatch_log_group" "edits" {
  #checkov:skip=CKV_AWS_158:KMS encryption is optional (log_kms_key_arn), as for the tick's log group; CloudWatch Logs encrypts log data at rest by default.
  count             = var.stream_edits ? 1 : 0
  name              = local.edits_log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = local.tags
}

# Where the event source mapping puts a batch it gave up on (its shard and sequence numbers,
# never the documents): read it to see which edits waited for the next tick instead.
resource "aws_sqs_queue" "edits_failed" {
  count                     = var.stream_edits ? 1 : 0
  name                      = "${var.name_prefix}-edits-failed"
  message_retention_seconds = 1209600 # 14 days, the most SQS keeps
  sqs_managed_sse_enabled   = true
  tags                      = local.tags
}

resource "aws_lambda_function" "edits" {
  #checkov:skip=CKV_AWS_116:A function dead-letter queue serves asynchronous invocations only; the stream's event source mapping invokes synchronously and has its own on-failure destination (aws_sqs_queue.edits_failed).
  #checkov:skip=CKV_AWS_117:Runs outside a VPC, as the tick does: it only calls AWS APIs.
  #checkov:skip=CKV_AWS_173:The environment holds table names and switches, no secrets (the tick's own); Lambda encrypts it at rest with an AWS managed key.
  #checkov:skip=CKV_AWS_272:The zip is the tick's, built by `make package` and pinned by source_code_hash; code signing needs a Signer profile the module cannot assume exists.
  #checkov:skip=CKV_AWS_50:X-Ray tracing would need xray:PutTraceSegments, which the least-privilege role does not grant; every batch logs its outcome.
  count            = var.stream_edits ? 1 : 0
  function_name    = local.edits_function_name
  description      = "teiji: converges the services whose documents were just edited (DynamoDB stream of the config table)"
  role             = aws_iam_role.execution.arn
  handler          = "engine.handler.stream_handler"
  runtime          = var.runtime
  architectures    = [var.architecture]
  filename         = local.zip_path
  source_code_hash = filebase64sha256(local.zip_path)
  memory_size      = var.memory_size
  # Up to 60 s waiting for a tick's (or a worker's) lease, then one convergence of a few services.
  timeout = 180

  # One batch at a time: edit batches never wait for each other's lease.
  reserved_concurrent_executions = 1

  environment {
    variables = { for name, value in local.lambda_environment : name => value if value != null && value != "" }
  }

  # As the tick's: the runtime's own lines in JSON beside teiji's, at the deployment's level.
  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.edits[0].name
    application_log_level = var.log_level == "WARNING" ? "WARN" : var.log_level
    system_log_level      = "INFO"
  }

  tags = local.tags

  depends_on = [
    aws_cloudwatch_log_group.edits,
    aws_iam_role_policy.execution,
  ]
}

resource "aws_lambda_event_source_mapping" "edits" {
  count             = var.stream_edits ? 1 : 0
  event_source_arn  = aws_dynamodb_table.config.stream_arn
  function_name     = aws_lambda_function.edits[0].arn
  starting_position = "TRIM_HORIZON" # the stream is created with the mapping: miss nothing
  # schedule_enabled = false pauses the edits too (the first step of a rollback).
  enabled = var.schedule_enabled

  # A burst of edits (a `teiji put` of many documents) converges in one run; no batching window,
  # so a single edit is sent on at once.
  batch_size                         = 100
  maximum_batching_window_in_seconds = 0
  parallelization_factor             = 1

  # The function names the records to deliver again (a tick held their lease); a batch that
  # fails whole is split to find the record at fault; after 5 deliveries, or once a record is
  # 15 minutes old (a scheduled tick has read the table since), the batch's position goes to
  # the queue and the stream moves on.
  function_response_types        = ["ReportBatchItemFailures"]
  bisect_batch_on_function_error = true
  maximum_retry_attempts         = 5
  maximum_record_age_in_seconds  = 900

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.edits_failed[0].arn
    }
  }

  # Documents only, and not DynamoDB's own TTL deletions of overrides that ended a day ago
  # (userIdentity dynamodb.amazonaws.com): the tick never writes the config table, and
  # people's writes (console, AWS CLI, `teiji put`, `teiji start`/`stop`/`override`) carry no
  # identity or their own. So do the wake function's overrides (infra/wake.tf): they pass too,
  # and the edits function converges that service again. Two patterns, either matching.
  filter_criteria {
    filter {
      pattern = jsonencode({
        dynamodb     = { Keys = { pk = { S = local.document_kinds } } }
        userIdentity = { principalId = [{ exists = false }] }
      })
    }
    filter {
      pattern = jsonencode({
        dynamodb     = { Keys = { pk = { S = local.document_kinds } } }
        userIdentity = { principalId = [{ anything-but = ["dynamodb.amazonaws.com"] }] }
      })
    }
  }

  depends_on = [aws_iam_role_policy.execution]
}

# A batch given up on: some edits waited for the next tick (at most 15 minutes).
resource "aws_cloudwatch_metric_alarm" "edits_failed" {
  count               = var.stream_edits ? 1 : 0
  alarm_name          = "${local.edits_function_name}-gave-up"
  alarm_description   = "teiji's edits function gave up on a batch of config-table edits (queue ${var.name_prefix}-edits-failed); the next tick converges them. See the log group ${local.edits_log_group_name}."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.edits_failed[0].name }
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
