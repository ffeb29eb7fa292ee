# teiji: one Lambda ticks every 15 minutes and keeps ECS services in the state their schedule
# documents ask for. This file holds the names and ARNs the other files share.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id

  function_name = "${var.name_prefix}-tick"
  # The name the Lambda runtime writes to; creating it here gives it a retention and lets the
  # execution role skip logs:CreateLogGroup.
  log_group_name = "/aws/lambda/${local.function_name}"
  zip_path       = coalesce(var.lambda_zip_path, "${path.module}/../dist/teiji-lambda.zip")

  ecs_arn_prefix   = "arn:${local.partition}:ecs:${local.region}:${local.account_id}"
  cluster_arns     = [for cluster in var.clusters : "${local.ecs_arn_prefix}:cluster/${cluster}"]
  service_arns     = [for cluster in var.clusters : "${local.ecs_arn_prefix}:service/${cluster}/*"]
  task_arns        = [for cluster in var.clusters : "${local.ecs_arn_prefix}:task/${cluster}/*"]
  instance_arns    = [for cluster in var.clusters : "${local.ecs_arn_prefix}:container-instance/${cluster}/*"]
  target_group_all = "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:targetgroup/*"
  target_group_arns = (
    var.target_group_arns == null ? [local.target_group_all] : var.target_group_arns
  )

  # Read by engine.config.Settings. TEIJI_DEFAULT_TIMEZONE is the zone of a schedule document
  # that names none; TEIJI_SHARDS tells a tick given no shard (a manual invocation) which shard
  # leases to take. Null and empty values are left out of the function's environment.
  lambda_environment = {
    TEIJI_CONFIG_TABLE     = aws_dynamodb_table.config.name
    TEIJI_STATE_TABLE      = aws_dynamodb_table.state.name
    TEIJI_DRY_RUN          = var.dry_run ? "true" : "false"
    TEIJI_PROTECTED        = join(",", var.protected)
    TEIJI_MAX_OVERRIDE     = var.max_override
    TEIJI_LEASE_SECONDS    = tostring(var.timeout + 60)
    TEIJI_LOG_LEVEL        = var.log_level
    TEIJI_ROLE_NAME        = var.role_name
    TEIJI_EXTERNAL_ID      = var.external_id
    TEIJI_CONCURRENCY      = tostring(var.concurrency)
    TEIJI_SHARDS           = tostring(var.shards)
    TEIJI_DEFAULT_TIMEZONE = var.default_timezone
  }

  alarm_topic_arns = [
    for arn in concat([var.alarm_sns_topic_arn], aws_sns_topic.alarms[*].arn) : arn if arn != null
  ]

  tags = merge({ "teiji:component" = "scheduler" }, var.tags)
}
