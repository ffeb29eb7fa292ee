# The mock AWS provider every test of the root module plans with: no credentials, no account,
# nothing created; the ARNs the tests compare against.

mock_data "aws_caller_identity" {
  defaults = { account_id = "111111111111" }
}
mock_data "aws_region" {
  defaults = { name = "ap-northeast-1" }
}
mock_data "aws_partition" {
  defaults = { partition = "aws" }
}
mock_data "aws_iam_policy_document" {
  defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
}
mock_resource "aws_cloudwatch_log_group" {
  defaults = { arn = "arn:aws:logs:ap-northeast-1:111111111111:log-group:/aws/lambda/teiji-tick" }
}
mock_resource "aws_iam_role" {
  defaults = { arn = "arn:aws:iam::111111111111:role/teiji-tick" }
}
mock_resource "aws_lambda_function" {
  defaults = { arn = "arn:aws:lambda:ap-northeast-1:111111111111:function:teiji-tick" }
}
mock_resource "aws_sns_topic" {
  defaults = { arn = "arn:aws:sns:ap-northeast-1:111111111111:teiji-alarms" }
}
mock_resource "aws_cloudwatch_event_rule" {
  defaults = { arn = "arn:aws:events:ap-northeast-1:111111111111:rule/teiji-notify" }
}
mock_resource "aws_sqs_queue" {
  defaults = {
    arn = "arn:aws:sqs:ap-northeast-1:111111111111:teiji-edits-failed"
    url = "https://sqs.ap-northeast-1.amazonaws.com/111111111111/teiji-edits-failed"
  }
}
mock_resource "aws_dynamodb_table" {
  defaults = { stream_arn = "arn:aws:dynamodb:ap-northeast-1:111111111111:table/teiji-config/stream/2026-12-02T00:00:00.000" }
}
