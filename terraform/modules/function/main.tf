locals {
  function_name = "${var.name_prefix}-${var.name}"
}

data "aws_partition" "current" {}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_iam_role" "this" {
  name = local.function_name
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "lambda.amazonaws.com" }
    }]
  })
  tags = var.tags
}

locals {
  # Exactly: write to its own log group, plus what the caller grants. Built with jsonencode (not
  # the aws_iam_policy_document data source) so tests under a mocked provider see the real JSON.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [{
        Sid      = "OwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${aws_cloudwatch_log_group.this.arn}:*"]
      }],
      [for s in var.policy_statements : merge(
        { Effect = "Allow", Action = s.actions, Resource = s.resources },
        s.conditions == null ? {} : { Condition = s.conditions },
      )],
    )
  })
}

resource "aws_iam_role_policy" "this" {
  name   = local.function_name
  role   = aws_iam_role.this.id
  policy = local.policy
}

# X-Ray has no resource-level permissions; AWS's managed policy grants just its two actions.
resource "aws_iam_role_policy_attachment" "xray" {
  count      = var.tracing ? 1 : 0
  role       = aws_iam_role.this.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

resource "aws_lambda_function" "this" {
  function_name    = local.function_name
  role             = aws_iam_role.this.arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  memory_size      = var.memory_mb
  timeout          = var.timeout_s
  filename         = var.zip_path
  source_code_hash = var.source_code_hash

  environment {
    variables = var.environment
  }

  logging_config {
    log_format = "Text" # our lines are JSON already; Lambda must not wrap them
    log_group  = aws_cloudwatch_log_group.this.name
  }

  tracing_config {
    mode = var.tracing ? "Active" : "PassThrough"
  }

  tags       = var.tags
  depends_on = [aws_iam_role_policy.this]
}

locals {
  alarms = {
    # Our own EMF counter: requests that failed (store down, post failed, JWKS unreachable).
    errors = { namespace = var.metrics_namespace, metric = "Errors", dimensions = { Service = var.svc } }
    # Lambda's: invocations that crashed or timed out.
    lambda-errors = { namespace = "AWS/Lambda", metric = "Errors", dimensions = { FunctionName = local.function_name } }
    throttles     = { namespace = "AWS/Lambda", metric = "Throttles", dimensions = { FunctionName = local.function_name } }
  }
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = "${local.function_name}-${each.key}"
  alarm_description   = "${each.value.namespace} ${each.value.metric} of ${local.function_name} above 0 for 5 minutes."
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_topic_arn == null ? [] : [var.alarm_topic_arn]
  ok_actions          = var.alarm_topic_arn == null ? [] : [var.alarm_topic_arn]
  tags                = var.tags
}
