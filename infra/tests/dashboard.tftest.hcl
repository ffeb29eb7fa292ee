# The dashboard of the tick's metrics: valid JSON, namespace teiji, the Deployment dimension the
# function's name (what engine/metrics.py writes), and none when it is not wanted.
# Mock AWS provider: nothing is created.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  lambda_zip_path = "tests/stub-lambda.zip"
}

run "the_dashboard_reads_the_ticks_metrics" {
  command = apply

  assert {
    condition     = length(aws_cloudwatch_dashboard.tick) == 1 && output.dashboard_name == "teiji-tick"
    error_message = "A dashboard is created by default, named after the function."
  }
  assert {
    condition = alltrue(flatten([
      for widget in jsondecode(aws_cloudwatch_dashboard.tick[0].dashboard_body).widgets : [
        for metric in widget.properties.metrics : metric[0] == "teiji" && metric[2] == "Deployment" && metric[3] == aws_lambda_function.tick.function_name
      ]
    ]))
    error_message = "Every metric is in namespace teiji with Deployment = the function's name."
  }
  assert {
    condition = toset(flatten([
      for widget in jsondecode(aws_cloudwatch_dashboard.tick[0].dashboard_body).widgets : [
        for metric in widget.properties.metrics : metric[1]
      ]
    ])) == toset(["ServicesRunning", "ServicesStopped", "Changed", "Failed", "Skipped", "InvalidDocuments", "Throttles", "ApiCalls", "EstimatedSavingsUSD", "StoppedTaskHours"])
    error_message = "The widgets show the services by state, changes, failures, throttles and the savings."
  }
  assert {
    condition = anytrue([
      for widget in jsondecode(aws_cloudwatch_dashboard.tick[0].dashboard_body).widgets :
      lookup(widget.properties, "start", "") == "-P30D" && lookup(widget.properties, "setPeriodToTimeRange", false) && widget.properties.view == "singleValue"
    ])
    error_message = "One single value sums the savings over the last 30 days."
  }
  assert {
    condition     = strcontains(output.dashboard_url, "#dashboards/dashboard/teiji-tick")
    error_message = "The output gives the dashboard's console address."
  }
  assert {
    condition     = aws_lambda_function.tick.logging_config[0].log_format == "JSON" && aws_lambda_function.tick.logging_config[0].application_log_level == "INFO"
    error_message = "The function logs JSON, the runtime's lines at the deployment's log level."
  }
}

run "no_dashboard_when_not_wanted" {
  command = apply

  variables {
    create_dashboard = false
    log_level        = "WARNING"
  }

  assert {
    condition     = length(aws_cloudwatch_dashboard.tick) == 0 && output.dashboard_name == null && output.dashboard_url == null
    error_message = "create_dashboard = false creates none."
  }
  assert {
    condition     = aws_lambda_function.tick.logging_config[0].application_log_level == "WARN"
    error_message = "Lambda spells WARNING as WARN."
  }
}
