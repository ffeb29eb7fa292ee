# Wake on request (wake_load_balancers; a schedule's wake: {on_request: true, keep_for: ...}).
# While teiji keeps such a service stopped, the tick points each listener rule that forwards to
# the service at the wake target group of the rule's load balancer (engine/wake_rules.py). A
# request then reaches the wake function (the tick's zip, engine.handler.wake_handler): it
# writes an override for that service, converges it in-process as the tick would, and answers
# with a small page; once the targets are healthy the rules get their actions back.
#
# AWS shapes it: a Lambda target group and its function are in one account and region, and a
# target group serves one load balancer only. So wake on request works for load balancers in
# teiji's own account and region, each with a target group of its own (TEIJI_WAKE_TARGET_GROUPS
# pairs them). wake_load_balancers = [] (the default) creates none of this.

locals {
  wake_on             = length(var.wake_load_balancers) > 0
  wake_keep_on        = local.wake_on && var.wake_keep_minutes > 0
  wake_function_name  = "${var.name_prefix}-wake"
  wake_log_group_name = "/aws/lambda/${local.wake_function_name}"

  # arn:<partition>:elasticloadbalancing:<region>:<account>:loadbalancer/app/<name>/<id>
  wake_balancers = {
    for arn in var.wake_load_balancers : arn => {
      region  = split(":", arn)[3]
      account = split(":", arn)[4]
      name    = split("/", arn)[2]
      id      = split("/", arn)[3]
    }
  }
}

# One Lambda target group per load balancer. The name (at most 32 characters) ends in the load
# balancer's id, unique in the account and region; the tag names the load balancer in full.
resource "aws_lb_target_group" "wake" {
  for_each    = local.wake_balancers
  name        = "${substr(var.name_prefix, 0, 10)}-wake-${each.value.id}"
  target_type = "lambda"

  # Off (the default for Lambda targets, said here so that nobody turns it on): each health
  # check would invoke the wake function, and so wake the service it stands in for.
  health_check {
    enabled = false
  }

  tags = merge(local.tags, { "teiji:wake-load-balancer" = each.key })

  lifecycle {
    precondition {
      condition     = each.value.account == local.account_id && each.value.region == local.region
      error_message = "wake_load_balancers: ${each.key} is in account ${each.value.account}, region ${each.value.region}; wake on request works only for load balancers in teiji's own account ${local.account_id} and region ${local.region}, because a Lambda target group must be in its function's account and region."
    }
  }
}

resource "aws_cloudwatch_log_group" "wake" {
  #checkov:skip=CKV_AWS_158:KMS encryption is optional (log_kms_key_arn), as for the tick's log group; CloudWatch Logs encrypts log data at rest by default.
  count             = local.wake_on ? 1 : 0
  name              = local.wake_log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = local.tags
}

resource "aws_lambda_function" "wake" {
  #checkov:skip=CKV_AWS_116:A function dead-letter queue serves asynchronous invocations only; the load balancer invokes synchronously and the person at the browser sees the answer (and the next tick converges the service anyway).
  #checkov:skip=CKV_AWS_117:Runs outside a VPC, as the tick does: it only calls AWS APIs, and the load balancer invokes it without a network connection.
  #checkov:skip=CKV_AWS_173:The environment holds table names and switches, no secrets (the tick's own); Lambda encrypts it at rest with an AWS managed key.
  #checkov:skip=CKV_AWS_272:The zip is the tick's, built by `make package` and pinned by source_code_hash; code signing needs a Signer profile the module cannot assume exists.
  #checkov:skip=CKV_AWS_50:X-Ray tracing would need xray:PutTraceSegments, which the least-privilege role does not grant; every request logs its outcome.
  count            = local.wake_on ? 1 : 0
  function_name    = local.wake_function_name
  description      = "teiji: wakes a sleeping ECS service when a request reaches its load balancer (wake on request)"
  role             = aws_iam_role.wake[0].arn
  handler          = "engine.handler.wake_handler"
  runtime          = var.runtime
  architectures    = [var.architecture]
  filename         = local.zip_path
  source_code_hash = filebase64sha256(local.zip_path)
  memory_size      = var.memory_size
  # Someone waits at a browser: one override and one service's convergence take seconds, and
  # the load balancer keeps the connection for its idle timeout (60 s by default) at most. A
  # stuck call fails the request within 30 s rather than holding a concurrency slot; the
  # override is written first, so the next tick starts the service even then.
  timeout = 30

  # The function is on the request path of every sleeping service behind these load
  # balancers: a burst (a crawler, a retrying client, many people at 9:00) must not take the
  # account's unreserved concurrency from its other functions. Past this, requests are
  # throttled; the first one has already woken the service.
  reserved_concurrent_executions = var.wake_max_concurrency

  environment {
    variables = { for name, value in local.lambda_environment : name => value if value != null && value != "" }
  }

  # As the tick's: the runtime's own lines in JSON beside teiji's, at the deployment's level.
  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.wake[0].name
    application_log_level = var.log_level == "WARNING" ? "WARN" : var.log_level
    system_log_level      = "INFO"
  }

  tags = local.tags

  depends_on = [
    aws_cloudwatch_log_group.wake,
    aws_iam_role_policy.wake,
  ]
}

# Each target group may invoke the function, and only through that target group.
resource "aws_lambda_permission" "wake" {
  for_each      = aws_lb_target_group.wake
  statement_id  = "WakeTargetGroup-${local.wake_balancers[each.key].id}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.wake[0].function_name
  principal     = "elasticloadbalancing.amazonaws.com"
  source_arn    = each.value.arn
}

resource "aws_lb_target_group_attachment" "wake" {
  for_each         = aws_lb_target_group.wake
  target_group_arn = each.value.arn
  target_id        = aws_lambda_function.wake[0].arn

  # Registering a Lambda target needs the permission first.
  depends_on = [aws_lambda_permission.wake]
}

# The wake function's role, its own rather than the execution role's. It is the one function
# that writes documents (an override, pk "override", nothing else), and it runs for whoever can
# send a request to these load balancers, often the internet: it gets the tick's permissions in
# this account and region only (the only place its services can be, since their load balancers
# are), and no AssumeRole into other accounts and no ExternalId. Giving the override write to
# the execution role instead would let the tick, the edits function and the fan-out workers
# write documents too.
resource "aws_iam_role" "wake" {
  count              = local.wake_on ? 1 : 0
  name               = "${var.name_prefix}-wake"
  assume_role_policy = data.aws_iam_policy_document.execution_trust.json
  tags               = local.tags
}

# The tick's ECS, Application Auto Scaling and ELB statements, for this account and region.
module "ecs_access_wake" {
  source = "./modules/ecs-access"

  partition               = local.partition
  account_id              = local.account_id
  regions                 = [local.region]
  clusters                = var.clusters
  target_group_arns       = var.target_group_arns
  wake_load_balancer_arns = var.wake_load_balancers
}

locals {
  wake_statements = [
    {
      Sid      = "WriteOwnLogs"
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = ["${coalesce(one(aws_cloudwatch_log_group.wake[*].arn), "-")}:*"]
    },
    {
      Sid      = "ReadConfigTable"
      Effect   = "Allow"
      Action   = ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query"]
      Resource = [aws_dynamodb_table.config.arn]
    },
    # The override a request asks for, and no other document: every item it writes must have
    # the partition key "override" (engine.store.ConfigStore.put_override_item).
    {
      Sid       = "WriteOverrides"
      Effect    = "Allow"
      Action    = ["dynamodb:PutItem"]
      Resource  = [aws_dynamodb_table.config.arn]
      Condition = { "ForAllValues:StringEquals" = { "dynamodb:LeadingKeys" = ["override"] } }
    },
    # As the tick: baselines, the lease, the saved listener rules.
    {
      Sid    = "StateTable"
      Effect = "Allow"
      Action = [
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:TransactWriteItems",
      ]
      Resource = [aws_dynamodb_table.state.arn]
    },
  ]

  # The keep-awake run (wake_keep_minutes > 0): the load balancers' RequestCount of the woken
  # services. GetMetricData has no resource-level permissions (it is authorized on "*"), and
  # it only reads: the wake role gets it, the execution role does not.
  wake_keep_statements = [
    {
      Sid      = "ReadRequestCounts"
      Effect   = "Allow"
      Action   = ["cloudwatch:GetMetricData"]
      Resource = ["*"]
    },
  ]

  # As the execution role's conditional statements of the same Sid (infra/iam.tf).
  wake_conditional = {
    PublishEvents           = local.execution_conditional.PublishEvents
    TableKeyThroughDynamoDB = local.execution_conditional.TableKeyThroughDynamoDB
  }
  wake_enabled = {
    PublishEvents           = local.execution_enabled.PublishEvents
    TableKeyThroughDynamoDB = local.execution_enabled.TableKeyThroughDynamoDB
  }

  wake_policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      local.wake_statements,
      module.ecs_access_wake.statements,
      [for sid, statement in local.wake_conditional : statement if local.wake_enabled[sid]],
      local.wake_keep_on ? local.wake_keep_statements : [],
    )
  })
  # The planned policy by Sid: what tests/wake.tftest.hcl asserts on.
  wake_by_sid = { for statement in jsondecode(local.wake_policy).Statement : statement.Sid => statement }
}

resource "aws_iam_role_policy" "wake" {
  count  = local.wake_on ? 1 : 0
  name   = "teiji-wake"
  role   = aws_iam_role.wake[0].id
  policy = local.wake_policy
}

# The keep-awake run (engine/wake_keep_run.py): once a woken service's rules are restored, its
# requests go to it directly and no longer pass the wake function. Every wake_keep_minutes the
# same function reads the load balancers' RequestCount of the services it woke and extends
# each wake to keep_for after the latest request. The event's constant input tells it from a
# load balancer's request (whose own body is never a top-level key of the event).
resource "aws_cloudwatch_event_rule" "wake_keep" {
  count               = local.wake_keep_on ? 1 : 0
  name                = "${local.wake_function_name}-keep"
  description         = "teiji: extends wakes while their services get requests (every ${var.wake_keep_minutes} min)"
  schedule_expression = var.wake_keep_minutes == 1 ? "rate(1 minute)" : "rate(${var.wake_keep_minutes} minutes)"
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "wake_keep" {
  count = local.wake_keep_on ? 1 : 0
  rule  = aws_cloudwatch_event_rule.wake_keep[0].name
  arn   = aws_lambda_function.wake[0].arn
  input = jsonencode({ teiji = "keep-awake" })

  # A late run reads the same counts the next one reads: no retries, nothing stale.
  retry_policy {
    maximum_retry_attempts       = 0
    maximum_event_age_in_seconds = 60
  }
}

# That rule, and only it, may invoke the wake function (besides its target groups).
resource "aws_lambda_permission" "wake_keep" {
  count         = local.wake_keep_on ? 1 : 0
  statement_id  = "WakeKeepSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.wake[0].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.wake_keep[0].arn
}
