# The 15-minute tick: EventBridge Scheduler, aligned to the quarter hour. One schedule per
# shard, each passing {"shard": i, "shards": n}.

resource "aws_scheduler_schedule" "tick" {
  #checkov:skip=CKV_AWS_297:The schedule holds only {"shard": i, "shards": n}; EventBridge Scheduler encrypts it with an AWS owned key, and a customer key would add a key policy to manage for nothing secret.
  count       = var.shards
  name        = var.shards == 1 ? local.function_name : "${local.function_name}-${count.index}"
  description = "teiji tick, shard ${count.index} of ${var.shards}"
  state       = var.schedule_enabled ? "ENABLED" : "DISABLED"

  schedule_expression          = "cron(0/15 * * * ? *)"
  schedule_expression_timezone = var.schedule_expression_timezone

  # Exactly on the quarter hour: the engine decides for the instant it runs.
  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.tick.arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode({ shard = count.index, shards = var.shards })

    # A retry or a late delivery would act on a stale decision; the next tick comes anyway.
    retry_policy {
      maximum_retry_attempts       = 0
      maximum_event_age_in_seconds = 60
    }
  }
}

data "aws_iam_policy_document" "scheduler_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name_prefix}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_trust.json
  tags               = local.tags
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "InvokeTick"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.tick.arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "invoke-tick"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}
