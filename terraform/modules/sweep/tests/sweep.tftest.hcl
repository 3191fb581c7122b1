mock_provider "aws" {
  source = "../../tests/mocks"

  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
}

variables {
  name          = "ws-connection-test-expiry-sweep"
  responder_arn = "arn:aws:lambda:us-east-1:123456789012:function:ws-connection-test-WebSocketResponder"
}

run "every_minute_it_asks_the_responder_to_close_expired_connections" {
  command = apply

  assert {
    condition     = aws_scheduler_schedule.this.schedule_expression == "rate(1 minute)" && aws_scheduler_schedule.this.state == "ENABLED"
    error_message = "On by default, every minute."
  }

  assert {
    condition     = jsondecode(aws_scheduler_schedule.this.target[0].input) == { action = "disconnect", expired = true } && aws_scheduler_schedule.this.target[0].arn == var.responder_arn
    error_message = "It invokes the responder with the sweep's event."
  }
}

run "the_role_may_only_invoke_the_responder" {
  command = apply

  assert {
    condition = jsondecode(aws_iam_role_policy.this.policy).Statement == [{
      Effect   = "Allow"
      Action   = ["lambda:InvokeFunction"]
      Resource = ["arn:aws:lambda:us-east-1:123456789012:function:ws-connection-test-WebSocketResponder"]
    }]
    error_message = "One statement: lambda:InvokeFunction on the responder's ARN, nothing else."
  }

  assert {
    condition     = jsondecode(aws_iam_role.this.assume_role_policy).Statement[0].Principal == { Service = "scheduler.amazonaws.com" } && jsondecode(aws_iam_role.this.assume_role_policy).Statement[0].Condition.StringEquals["aws:SourceAccount"] == "123456789012"
    error_message = "Only this account's EventBridge Scheduler may assume the role."
  }
}

run "it_can_be_turned_off_or_slowed" {
  command = apply
  variables {
    enabled       = false
    every_minutes = 5
  }

  assert {
    condition     = aws_scheduler_schedule.this.state == "DISABLED" && aws_scheduler_schedule.this.schedule_expression == "rate(5 minutes)"
    error_message = "enabled = false disables it; every_minutes sets the period."
  }
}

run "a_qualified_arn_or_a_bad_period_is_refused" {
  command = plan
  variables {
    responder_arn = "arn:aws:lambda:us-east-1:123456789012:function:ws-connection-test-WebSocketResponder:live"
    every_minutes = 0
  }
  expect_failures = [var.responder_arn, var.every_minutes]
}
