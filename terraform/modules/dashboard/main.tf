# One CloudWatch dashboard per environment: what the functions count (EMF), what API Gateway
# saw, how the functions ran, and whether DynamoDB throttled. Widget order is reading order:
# traffic first, then failures, then causes.

locals {
  # Service dimension => metric; every counter a function emits gets a line.
  emf_widgets = [
    for svc in sort(keys(var.emf_metrics)) : {
      type   = "metric"
      width  = 12
      height = 6
      properties = {
        title   = "${svc} (EMF)"
        region  = var.region
        stat    = "Sum"
        period  = 60
        view    = "timeSeries"
        metrics = [for m in var.emf_metrics[svc].metrics : [var.emf_metrics[svc].namespace, m, "Service", svc]]
      }
    }
  ]

  api_metrics = ["ConnectCount", "MessageCount", "IntegrationError", "ClientError", "ExecutionError"]
  api_widget = {
    type   = "metric"
    width  = 12
    height = 6
    properties = {
      title   = "API Gateway ${var.stage_name}"
      region  = var.region
      stat    = "Sum"
      period  = 60
      view    = "timeSeries"
      metrics = [for m in local.api_metrics : ["AWS/ApiGateway", m, "ApiId", var.api_id, "Stage", var.stage_name]]
    }
  }

  function_names = [for k in sort(keys(var.functions)) : var.functions[k]]
  duration_widget = {
    type   = "metric"
    width  = 12
    height = 6
    properties = {
      title  = "Lambda duration p50 / p99 (ms)"
      region = var.region
      period = 60
      view   = "timeSeries"
      # (flatten would flatten the lines themselves: one line per function and statistic)
      metrics = [for pair in setproduct(local.function_names, ["p50", "p99"]) :
        ["AWS/Lambda", "Duration", "FunctionName", pair[0], { stat = pair[1], label = "${pair[0]} ${pair[1]}" }]
      ]
    }
  }
  throttle_widget = {
    type   = "metric"
    width  = 12
    height = 6
    properties = {
      title   = "Lambda throttles and errors"
      region  = var.region
      stat    = "Sum"
      period  = 60
      view    = "timeSeries"
      metrics = [for pair in setproduct(["Throttles", "Errors"], local.function_names) : ["AWS/Lambda", pair[0], "FunctionName", pair[1]]]
    }
  }
  # Lambda publishes no init-duration metric; the REPORT line of a cold start carries it.
  init_widget = {
    type   = "log"
    width  = 12
    height = 6
    properties = {
      title  = "Lambda init duration (cold starts, from REPORT lines)"
      region = var.region
      view   = "table"
      query  = "SOURCE ${join(" | SOURCE ", [for g in var.log_groups : "'${g}'"])} | filter @type = \"REPORT\" and ispresent(@initDuration) | stats count() as coldStarts, pct(@initDuration, 50) as p50, pct(@initDuration, 99) as p99, max(@initDuration) as max by @log"
    }
  }
  dynamodb_widget = {
    type   = "metric"
    width  = 12
    height = 6
    properties = {
      title  = "DynamoDB throttling (${var.table_name})"
      region = var.region
      stat   = "Sum"
      period = 60
      view   = "timeSeries"
      metrics = concat(
        [for op in ["PutItem", "UpdateItem", "Query"] : ["AWS/DynamoDB", "ThrottledRequests", "TableName", var.table_name, "Operation", op]],
        [["AWS/DynamoDB", "ReadThrottleEvents", "TableName", var.table_name], ["AWS/DynamoDB", "WriteThrottleEvents", "TableName", var.table_name]],
      )
    }
  }

  widgets = concat(local.emf_widgets, [local.api_widget, local.duration_widget, local.throttle_widget, local.init_widget, local.dynamodb_widget])
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({ widgets = local.widgets })
}
