# A CloudWatch dashboard of the tick's metrics (namespace teiji, dimension Deployment = the
# function's name; engine/metrics.py writes them in its log, so they cost no API call).
#
# Every tick (each shard's) writes one figure per metric per quarter hour, so a 15-minute Sum is
# the deployment's total at that tick. CloudWatch dashboards take relative time ranges only (an
# ISO 8601 duration back from now), never "this calendar month": the savings figures are the
# last 30 days (setPeriodToTimeRange sums the whole range into one value), and
# `teiji savings --from <first of the month>` gives the calendar month.

locals {
  dashboard_name = "${var.name_prefix}-tick"
  metric_dims    = ["Deployment", local.function_name]

  dashboard_widgets = [
    {
      type   = "metric"
      x      = 0
      y      = 0
      width  = 12
      height = 6
      properties = {
        title  = "Services by state"
        region = local.region
        view   = "timeSeries"
        stat   = "Sum"
        period = 900
        metrics = [
          concat(["teiji", "ServicesRunning"], local.metric_dims, [{ label = "running" }]),
          concat(["teiji", "ServicesStopped"], local.metric_dims, [{ label = "stopped" }]),
        ]
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 0
      width  = 12
      height = 6
      properties = {
        title  = "Changes and failures per tick"
        region = local.region
        view   = "timeSeries"
        stat   = "Sum"
        period = 900
        metrics = [
          concat(["teiji", "Changed"], local.metric_dims, [{ label = "changed" }]),
          concat(["teiji", "Failed"], local.metric_dims, [{ label = "failed" }]),
          concat(["teiji", "Skipped"], local.metric_dims, [{ label = "skipped" }]),
          concat(["teiji", "InvalidDocuments"], local.metric_dims, [{ label = "invalid documents" }]),
        ]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 6
      width  = 12
      height = 6
      properties = {
        title  = "AWS requests and throttling"
        region = local.region
        view   = "timeSeries"
        stat   = "Sum"
        period = 900
        metrics = [
          concat(["teiji", "Throttles"], local.metric_dims, [{ label = "throttled" }]),
          concat(["teiji", "ApiCalls"], local.metric_dims, [{ label = "requests", yAxis = "right" }]),
        ]
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 6
      width  = 12
      height = 6
      properties = {
        title                = "Savings, last 30 days (Fargate list prices)"
        region               = local.region
        view                 = "singleValue"
        stat                 = "Sum"
        period               = 86400
        start                = "-P30D"
        end                  = "P0D"
        setPeriodToTimeRange = true
        metrics = [
          concat(["teiji", "EstimatedSavingsUSD"], local.metric_dims, [{ label = "estimated savings (USD)" }]),
          concat(["teiji", "StoppedTaskHours"], local.metric_dims, [{ label = "stopped task-hours" }]),
        ]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 12
      width  = 24
      height = 6
      properties = {
        title  = "Savings per day"
        region = local.region
        view   = "timeSeries"
        stat   = "Sum"
        period = 86400
        metrics = [
          concat(["teiji", "EstimatedSavingsUSD"], local.metric_dims, [{ label = "estimated savings (USD)" }]),
          concat(["teiji", "StoppedTaskHours"], local.metric_dims, [{ label = "stopped task-hours", yAxis = "right" }]),
        ]
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "tick" {
  count          = var.create_dashboard ? 1 : 0
  dashboard_name = local.dashboard_name
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
