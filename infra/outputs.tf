output "config_table_name" {
  description = "DynamoDB table of the documents (TEIJI_CONFIG_TABLE for the teiji command)."
  value       = aws_dynamodb_table.config.name
}

output "config_table_arn" {
  description = "ARN of the documents table."
  value       = aws_dynamodb_table.config.arn
}

output "state_table_name" {
  description = "DynamoDB table of baselines and the tick lease (TEIJI_STATE_TABLE for the teiji command)."
  value       = aws_dynamodb_table.state.name
}

output "state_table_arn" {
  description = "ARN of the state table."
  value       = aws_dynamodb_table.state.arn
}

output "function_name" {
  description = "Name of the tick function."
  value       = aws_lambda_function.tick.function_name
}

output "function_arn" {
  description = "ARN of the tick function."
  value       = aws_lambda_function.tick.arn
}

output "execution_role_arn" {
  description = "ARN of the function's role (trust it from the role_name roles in other accounts)."
  value       = aws_iam_role.execution.arn
}

output "log_group_name" {
  description = "CloudWatch log group holding every tick's report."
  value       = aws_cloudwatch_log_group.tick.name
}

output "alarm_topic_arn" {
  description = "ARN of the SNS topic created for the alarms, or null."
  value       = one(aws_sns_topic.alarms[*].arn)
}

output "schedule_names" {
  description = "EventBridge Scheduler schedules, one per shard."
  value       = aws_scheduler_schedule.tick[*].name
}

output "event_bus_name" {
  description = "EventBridge bus teiji's events go to (source teiji); empty when events are off."
  value       = var.event_bus_name
}

output "notification_topic_arn" {
  description = "SNS topic receiving teiji's events (notify_emails / create_notification_topic); connect AWS Chatbot to it for Slack or Microsoft Teams. Null when there is none."
  value       = one(aws_sns_topic.events[*].arn)
}

output "edits_function_name" {
  description = "Function that converges edited documents' services from the config table's stream; null when stream_edits is false."
  value       = one(aws_lambda_function.edits[*].function_name)
}

output "config_stream_arn" {
  description = "DynamoDB stream of the config table (keys only); null when stream_edits is false."
  value       = var.stream_edits ? aws_dynamodb_table.config.stream_arn : null
}

output "edits_failed_queue_url" {
  description = "SQS queue that receives the position of stream batches the edits function gave up on (the next tick converges them anyway); null when stream_edits is false."
  value       = one(aws_sqs_queue.edits_failed[*].url)
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard of the tick's metrics (null without create_dashboard)."
  value       = var.create_dashboard ? aws_cloudwatch_dashboard.tick[0].dashboard_name : null
}

output "dashboard_url" {
  description = "Console address of the dashboard (null without create_dashboard)."
  value       = var.create_dashboard ? "https://${local.region}.console.aws.amazon.com/cloudwatch/home?region=${local.region}#dashboards/dashboard/${aws_cloudwatch_dashboard.tick[0].dashboard_name}" : null
}

output "fanout_queue_url" {
  description = "The fan-out's work queue (TEIJI_FANOUT_QUEUE_URL); null without fanout."
  value       = one(aws_sqs_queue.fanout[*].url)
}

output "fanout_dead_letter_queue_url" {
  description = "Work items that failed twice (their scopes were reported failed); null without fanout."
  value       = one(aws_sqs_queue.fanout_dead[*].url)
}

output "fanout_worker_function_name" {
  description = "The fan-out worker function; null without fanout."
  value       = one(aws_lambda_function.worker[*].function_name)
}

output "wake_target_groups" {
  description = "Each of wake_load_balancers paired with its wake target group (TEIJI_WAKE_TARGET_GROUPS); empty when wake on request is off."
  value       = { for balancer, group in aws_lb_target_group.wake : balancer => group.arn }
}

output "wake_function_name" {
  description = "The function that wakes a sleeping service on a request through its load balancer; null when wake on request is off."
  value       = one(aws_lambda_function.wake[*].function_name)
}
