# teiji's events (engine/events.py) on the deployment's bus, and, when asked, a rule that sends
# them to an SNS topic: email subscriptions here, or AWS Chatbot for Slack and Microsoft Teams
# (README, "Events").

locals {
  notify = var.event_bus_name != "" && (length(var.notify_emails) > 0 || var.create_notification_topic)
}

resource "aws_sns_topic" "events" {
  #checkov:skip=CKV_AWS_26:Encryption is optional (notification_topic_kms_key_id): the key policy must let EventBridge use the key, which the AWS managed SNS key does not; events say which service changed, never a secret.
  count             = local.notify ? 1 : 0
  name              = "${var.name_prefix}-events"
  kms_master_key_id = var.notification_topic_kms_key_id
  tags              = local.tags
}

resource "aws_cloudwatch_event_rule" "notify" {
  count          = local.notify ? 1 : 0
  name           = "${var.name_prefix}-notify"
  description    = "teiji's events of the chosen detail types, to the notification topic."
  event_bus_name = var.event_bus_name
  event_pattern = jsonencode({
    source        = ["teiji"]
    "detail-type" = var.notify_detail_types
  })
  tags = local.tags
}

resource "aws_cloudwatch_event_target" "notify" {
  count          = local.notify ? 1 : 0
  rule           = aws_cloudwatch_event_rule.notify[0].name
  event_bus_name = var.event_bus_name
  arn            = aws_sns_topic.events[0].arn
}

# Only this rule may publish to the topic.
resource "aws_sns_topic_policy" "events" {
  count = local.notify ? 1 : 0
  arn   = aws_sns_topic.events[0].arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TeijiEventsRule"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sns:Publish"
      Resource  = aws_sns_topic.events[0].arn
      Condition = { ArnEquals = { "aws:SourceArn" = aws_cloudwatch_event_rule.notify[0].arn } }
    }]
  })
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = local.notify ? toset(var.notify_emails) : toset([])
  topic_arn = aws_sns_topic.events[0].arn
  protocol  = "email"
  endpoint  = each.value
}
