# The tick function, its log group, its async-invoke rules and the alarm on its errors.

resource "aws_cloudwatch_log_group" "tick" {
  #checkov:skip=CKV_AWS_158:KMS encryption is optional (log_kms_key_arn); CloudWatch Logs encrypts log data at rest by default.
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = local.tags
}

resource "aws_lambda_function" "tick" {
  #checkov:skip=CKV_AWS_116:No dead-letter queue on purpose: a failed tick must never be replayed later on a stale decision; the next tick (15 minutes later) recomputes everything, and the Errors alarm reports the failure.
  #checkov:skip=CKV_AWS_117:Runs outside a VPC: it only calls AWS APIs, and a VPC would need NAT or interface endpoints for ECS, Application Auto Scaling, ELB, DynamoDB and STS.
  #checkov:skip=CKV_AWS_173:The environment holds table names and switches, no secrets; Lambda encrypts it at rest with an AWS managed key.
  #checkov:skip=CKV_AWS_272:The zip is built locally by `make package` and pinned by source_code_hash; Lambda code signing needs a Signer profile the module cannot assume exists.
  #checkov:skip=CKV_AWS_50:X-Ray tracing would need xray:PutTraceSegments, which the least-privilege role deliberately does not grant; every tick logs a full report instead.
  function_name = local.function_name
  description   = "teiji: keeps ECS services in the state their schedules ask for, every 15 minutes"
  # fanout = true: the orchestrator's role (infra/fanout.tf), which converges nothing itself.
  role             = var.fanout ? aws_iam_role.orchestrator[0].arn : aws_iam_role.execution.arn
  handler          = "engine.handler.lambda_handler"
  runtime          = var.runtime
  architectures    = [var.architecture]
  filename         = local.zip_path
  source_code_hash = filebase64sha256(local.zip_path)
  timeout          = var.timeout
  memory_size      = var.memory_size

  # One concurrent execution per shard: ticks never overlap (the lease in the state table
  # guards the rare case anyway).
  reserved_concurrent_executions = var.shards

  environment {
    variables = { for name, value in local.lambda_environment : name => value if value != null && value != "" }
  }

  # JSON: the runtime's own lines (START, END, REPORT; the root logger) are JSON objects too,
  # with the request id. teiji writes its JSON lines to stdout itself (one object a line, its
  # request_id included), which Lambda passes on as they are, not encoded twice, so CloudWatch
  # Logs still extracts the metrics of the tick's embedded-metric-format line. The levels
  # filter only the runtime's lines; teiji's own follow TEIJI_LOG_LEVEL.
  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.tick.name
    application_log_level = var.log_level == "WARNING" ? "WARN" : var.log_level
    system_log_level      = "INFO"
  }

  tags = local.tags

  depends_on = [
    aws_cloudwatch_log_group.tick,
    aws_iam_role_policy.execution,
    aws_iam_role_policy.orchestrator,
  ]
}

# The scheduler invokes asynchronously. A throttled or failed invocation would otherwise be
# retried for up to 6 hours; a late retry would act on a stale decision, so none is made and an
# event older than a minute is dropped.
resource "aws_lambda_function_event_invoke_config" "tick" {
  function_name                = aws_lambda_function.tick.function_name
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = 60
}

resource "aws_sns_topic" "alarms" {
  #checkov:skip=CKV_AWS_26:Encryption is optional (alarm_topic_kms_key_id): the key policy must let CloudWatch use the key, which the AWS managed SNS key does not; messages only say which alarm fired.
  count             = var.create_alarm_topic ? 1 : 0
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = var.alarm_topic_kms_key_id
  tags              = local.tags
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  alarm_name          = "${local.function_name}-errors"
  alarm_description   = "A teiji tick failed (see the log group ${local.log_group_name}): some services may not be in the state their schedule asks for."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.tick.function_name }
  statistic           = "Sum"
  period              = 900
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_topic_arns
  ok_actions          = local.alarm_topic_arns
  tags                = local.tags
}

# A tick that could not start (throttled while the previous one still runs, then older than a
# minute) is dropped on purpose; many in a row mean the ticks take too long for the shards.
resource "aws_cloudwatch_metric_alarm" "dropped" {
  alarm_name          = "${local.function_name}-dropped"
  alarm_description   = "teiji ticks were dropped for an hour: each tick runs longer than 15 minutes or overlaps the next; raise shards or timeout."
  namespace           = "AWS/Lambda"
  metric_name         = "AsyncEventsDropped"
  dimensions          = { FunctionName = aws_lambda_function.tick.function_name }
  statistic           = "Sum"
  period              = 900
  evaluation_periods  = 4
  datapoints_to_alarm = 4
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_topic_arns
  ok_actions          = local.alarm_topic_arns
  tags                = local.tags
}
