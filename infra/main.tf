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

  # Who may touch what. This account and region are always allowed; the lists add to them.
  allowed_accounts = distinct(concat([local.account_id], var.allowed_accounts))
  allowed_regions  = distinct(concat([local.region], var.allowed_regions))
  other_accounts   = [for account in local.allowed_accounts : account if account != local.account_id]

  external_id_parameter_path = coalesce(var.external_id_parameter_path, "/${var.name_prefix}/external-id")
  external_id_parameter_arn  = "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${local.external_id_parameter_path}"

  # Read by engine.config.Settings. TEIJI_DEFAULT_TIMEZONE is the zone of a schedule document
  # that names none; TEIJI_SHARDS is the deployment's shard count (a tick records it in the
  # state table's lease record and refuses events of any other count). Null and empty values are left out of the function's environment.
  lambda_environment = {
    TEIJI_CONFIG_TABLE          = aws_dynamodb_table.config.name
    TEIJI_STATE_TABLE           = aws_dynamodb_table.state.name
    TEIJI_DRY_RUN               = var.dry_run ? "true" : "false"
    TEIJI_PROTECTED             = join(",", var.protected)
    TEIJI_MAX_OVERRIDE          = var.max_override
    TEIJI_LEASE_SECONDS         = "120" # renewed while the tick works: a dead tick blocks 2 minutes
    TEIJI_LOG_LEVEL             = var.log_level
    TEIJI_ROLE_NAME             = var.role_name
    TEIJI_CONCURRENCY           = tostring(var.concurrency)
    TEIJI_SHARDS                = tostring(var.shards)
    TEIJI_DEFAULT_TIMEZONE      = var.default_timezone
    TEIJI_TARGET_CHECK_INTERVAL = tostring(var.target_check_interval)
    TEIJI_EVENT_BUS             = var.event_bus_name
    TEIJI_TICK_INTERVAL         = "15m" # the schedules' cron(0/15 ...) step (scheduler.tf)
    TEIJI_METRICS_PER_SERVICE   = var.metrics_per_service ? "true" : "false"
    # fanout = true: the tick hands the scopes to this queue (infra/fanout.tf).
    TEIJI_FANOUT_QUEUE_URL = var.fanout ? aws_sqs_queue.fanout[0].url : null
    # Wake on request (infra/wake.tf): each load balancer paired with its wake target group;
    # empty (wake_load_balancers = []) turns it off.
    TEIJI_WAKE_TARGET_GROUPS = join(",", [for balancer, group in aws_lb_target_group.wake : "${balancer}=${group.arn}"])
    # The allow-list and the growth cap, read fail-closed by engine.config.Access.
    TEIJI_ALLOWED_ACCOUNTS = join(",", local.allowed_accounts)
    TEIJI_ALLOWED_REGIONS  = join(",", local.allowed_regions)
    TEIJI_ALLOWED_CLUSTERS = contains(var.clusters, "*") ? "" : join(",", var.clusters)
    TEIJI_MAX_DESIRED      = tostring(var.max_desired)
    # Where each other account's ExternalId is kept (never the ExternalId itself).
    TEIJI_EXTERNAL_ID_PARAMETER = length(local.other_accounts) > 0 ? local.external_id_parameter_path : null
    # glibc gives each of the tick's threads its own malloc arena by default (8 per core), and
    # each keeps the memory it freed: two arenas hold a 10,000-service tick's peak RSS under
    # 200 MB (bench/rss.py runs the tick with the same setting, LAMBDA_MALLOC).
    MALLOC_ARENA_MAX = "2"
  }

  # The bus the tick's events go to: a name in this account and region, or an ARN.
  event_bus_arn = (
    startswith(var.event_bus_name, "arn:")
    ? var.event_bus_name
    : "arn:${local.partition}:events:${local.region}:${local.account_id}:event-bus/${coalesce(var.event_bus_name, "-")}"
  )

  alarm_topic_arns = [
    for arn in concat([var.alarm_sns_topic_arn], aws_sns_topic.alarms[*].arn) : arn if arn != null
  ]

  tags = merge({ "teiji:component" = "scheduler" }, var.tags)
}
