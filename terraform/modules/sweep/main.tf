# The expiry sweep: every minute, EventBridge Scheduler invokes WebSocketResponder with
# {"action":"disconnect","expired":true}, which closes every CONNECTED connection whose token has
# expired (GSI3; the cost is proportional to the expired connections). API Gateway checks a token
# only at $connect: without the sweep a connection outlives its token by up to two hours.
#
# A sweep that needs more than one invocation answers with a cursor; the next minute's sweep
# starts over and finds what is left (the expired connections it closed have left the index), so
# the schedule does not need to loop on the cursor.

data "aws_caller_identity" "this" {}

locals {
  input = jsonencode({ action = "disconnect", expired = true })
}

resource "aws_iam_role" "this" {
  name_prefix = substr("${var.name}-", 0, 38)
  description = "Lets the ${var.name} schedule invoke WebSocketResponder, and nothing else."
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "scheduler.amazonaws.com" }
      Action    = "sts:AssumeRole"
      # Only this account's schedules may assume it (confused-deputy protection).
      Condition = { StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.this.account_id } }
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "this" {
  name = "invoke-responder"
  role = aws_iam_role.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["lambda:InvokeFunction"]
      Resource = [var.responder_arn]
    }]
  })
}

resource "aws_scheduler_schedule" "this" {
  name                = var.name
  description         = "Closes WebSocket connections whose token has expired (WebSocketResponder, action disconnect, expired)."
  schedule_expression = var.every_minutes == 1 ? "rate(1 minute)" : "rate(${var.every_minutes} minutes)"
  state               = var.enabled ? "ENABLED" : "DISABLED"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = var.responder_arn
    role_arn = aws_iam_role.this.arn
    input    = local.input

    retry_policy {
      # A missed sweep is made up by the next one a minute later.
      maximum_retry_attempts       = 0
      maximum_event_age_in_seconds = 60
    }
  }
}
