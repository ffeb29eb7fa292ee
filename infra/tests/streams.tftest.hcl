# Edits that take effect in seconds: the config table's stream, the edits function behind it,
# its event source mapping, the on-failure queue and the role's grants on exactly those.
# Mock AWS provider: nothing is created.

mock_provider "aws" {
  source = "./tests/mocks"
}

override_resource {
  target = aws_dynamodb_table.config
  values = {
    arn        = "arn:aws:dynamodb:ap-northeast-1:111111111111:table/teiji-config"
    stream_arn = "arn:aws:dynamodb:ap-northeast-1:111111111111:table/teiji-config/stream/2026-12-02T00:00:00.000"
  }
}

override_resource {
  target = aws_sqs_queue.edits_failed
  values = {
    arn = "arn:aws:sqs:ap-northeast-1:111111111111:teiji-edits-failed"
    url = "https://sqs.ap-northeast-1.amazonaws.com/111111111111/teiji-edits-failed"
  }
}

override_resource {
  target = aws_cloudwatch_log_group.edits
  values = { arn = "arn:aws:logs:ap-northeast-1:111111111111:log-group:/aws/lambda/teiji-edits" }
}

variables {
  lambda_zip_path = "tests/stub-lambda.zip"
}

run "edits_are_on_by_default_keys_only" {
  command = apply

  assert {
    condition     = aws_dynamodb_table.config.stream_enabled && aws_dynamodb_table.config.stream_view_type == "KEYS_ONLY"
    error_message = "The config table streams every write as its key only."
  }
  assert {
    condition     = aws_dynamodb_table.state.stream_enabled != true
    error_message = "The state table (teiji's own writes) has no stream."
  }
  assert {
    condition     = aws_lambda_function.edits[0].handler == "engine.handler.stream_handler" && aws_lambda_function.edits[0].filename == aws_lambda_function.tick.filename
    error_message = "The edits function is the tick's zip with its own handler."
  }
  assert {
    condition     = aws_lambda_function.edits[0].role == aws_lambda_function.tick.role
    error_message = "It runs with the tick's role (target accounts trust that one role)."
  }
  assert {
    condition     = aws_lambda_function.edits[0].environment[0].variables["TEIJI_CONFIG_TABLE"] == aws_lambda_function.tick.environment[0].variables["TEIJI_CONFIG_TABLE"]
    error_message = "It reads the tick's settings."
  }
  assert {
    condition     = aws_lambda_function.edits[0].timeout >= 60 + 45 + 30
    error_message = "Its timeout leaves room for the lease wait (60 s), the margin (45 s) and a convergence."
  }
  assert {
    condition     = aws_lambda_function.edits[0].logging_config[0].log_format == "JSON" && aws_lambda_function.edits[0].logging_config[0].log_group == "/aws/lambda/teiji-edits"
    error_message = "The edits function logs JSON into its own log group, as the tick does."
  }
}

run "the_mapping_retries_boundedly_and_reports_per_record" {
  command = apply

  assert {
    condition     = aws_lambda_event_source_mapping.edits[0].event_source_arn == "arn:aws:dynamodb:ap-northeast-1:111111111111:table/teiji-config/stream/2026-12-02T00:00:00.000"
    error_message = "The mapping reads the config table's stream."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.edits[0].function_response_types == toset(["ReportBatchItemFailures"])
    error_message = "The function reports which records to deliver again."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.edits[0].bisect_batch_on_function_error && aws_lambda_event_source_mapping.edits[0].maximum_retry_attempts == 5 && aws_lambda_event_source_mapping.edits[0].maximum_record_age_in_seconds == 900
    error_message = "A failing batch is split, retried 5 times at most, and never older than 15 minutes (a tick has read the table since)."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.edits[0].batch_size == 100 && aws_lambda_event_source_mapping.edits[0].maximum_batching_window_in_seconds == 0
    error_message = "Batches of 100, sent on at once."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.edits[0].destination_config[0].on_failure[0].destination_arn == "arn:aws:sqs:ap-northeast-1:111111111111:teiji-edits-failed"
    error_message = "A batch given up on goes to the queue."
  }
  assert {
    condition     = aws_sqs_queue.edits_failed[0].sqs_managed_sse_enabled
    error_message = "The queue is encrypted."
  }
}

run "the_filter_keeps_documents_and_drops_ttl_deletions" {
  command = apply

  assert {
    condition = toset([for f in aws_lambda_event_source_mapping.edits[0].filter_criteria[0].filter : f.pattern]) == toset([
      "{\"dynamodb\":{\"Keys\":{\"pk\":{\"S\":[\"schedule\",\"calendar\",\"override\",\"profile\"]}}},\"userIdentity\":{\"principalId\":[{\"exists\":false}]}}",
      "{\"dynamodb\":{\"Keys\":{\"pk\":{\"S\":[\"schedule\",\"calendar\",\"override\",\"profile\"]}}},\"userIdentity\":{\"principalId\":[{\"anything-but\":[\"dynamodb.amazonaws.com\"]}]}}",
    ])
    error_message = "Documents only, written by anyone but DynamoDB's TTL."
  }
}

run "the_role_reads_that_stream_and_sends_to_that_queue_only" {
  command = apply

  assert {
    condition     = local.execution_by_sid["ReadConfigStream"].Resource == ["arn:aws:dynamodb:ap-northeast-1:111111111111:table/teiji-config/stream/2026-12-02T00:00:00.000"]
    error_message = "Stream reads on the config table's stream only."
  }
  assert {
    condition     = toset(local.execution_by_sid["ReadConfigStream"].Action) == toset(["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"])
    error_message = "The four actions the event source mapping needs."
  }
  assert {
    condition     = local.execution_by_sid["EditsFailedQueue"].Action == ["sqs:SendMessage"] && local.execution_by_sid["EditsFailedQueue"].Resource == ["arn:aws:sqs:ap-northeast-1:111111111111:teiji-edits-failed"]
    error_message = "SendMessage to the on-failure queue only."
  }
  assert {
    condition     = local.execution_by_sid["WriteEditsLogs"].Resource == ["arn:aws:logs:ap-northeast-1:111111111111:log-group:/aws/lambda/teiji-edits:*"]
    error_message = "The edits function writes its own log group only."
  }
  assert {
    condition     = output.edits_function_name == "teiji-edits" && output.edits_failed_queue_url != null
    error_message = "The outputs name the function and the queue."
  }
}

run "paused_with_the_ticks" {
  command = apply

  variables {
    schedule_enabled = false
  }

  assert {
    condition     = !aws_lambda_event_source_mapping.edits[0].enabled
    error_message = "schedule_enabled = false pauses the edits function too."
  }
}

run "turned_off_nothing_of_it_exists" {
  command = apply

  variables {
    stream_edits = false
  }

  assert {
    condition     = !aws_dynamodb_table.config.stream_enabled
    error_message = "No stream without the edits function."
  }
  assert {
    condition     = length(aws_lambda_function.edits) == 0 && length(aws_lambda_event_source_mapping.edits) == 0 && length(aws_sqs_queue.edits_failed) == 0 && length(aws_cloudwatch_log_group.edits) == 0
    error_message = "stream_edits = false creates none of it."
  }
  assert {
    condition     = !contains(keys(local.execution_by_sid), "ReadConfigStream") && !contains(keys(local.execution_by_sid), "EditsFailedQueue") && !contains(keys(local.execution_by_sid), "WriteEditsLogs")
    error_message = "And the role gets none of its grants."
  }
  assert {
    condition     = output.edits_function_name == null && output.config_stream_arn == null
    error_message = "Its outputs are null."
  }
}

# Beside the fan-out (fanout = true) the edits function stays: it reads TEIJI_FANOUT_QUEUE_URL
# and converges each (account, region) under that scope's lease (engine/stream_handler.py).
run "beside_the_fanout_workers" {
  command = plan

  variables {
    fanout = true
  }

  assert {
    condition     = length(aws_lambda_function.edits) == 1 && length(aws_lambda_event_source_mapping.edits) == 1 && aws_dynamodb_table.config.stream_enabled
    error_message = "fanout = true keeps the stream and the edits function."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.edits[0].enabled && contains(aws_lambda_event_source_mapping.edits[0].function_response_types, "ReportBatchItemFailures")
    error_message = "Edits held by a worker's lease are delivered again, record by record."
  }
}
