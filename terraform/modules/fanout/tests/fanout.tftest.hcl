mock_provider "aws" {
  source = "../../tests/mocks"

  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
}

variables {
  name          = "ws-connection-test-fanout"
  responder_arn = "arn:aws:lambda:us-east-1:123456789012:function:ws-connection-test-WebSocketResponder"
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
    condition     = jsondecode(aws_iam_role.this.assume_role_policy).Statement[0].Principal == { Service = "states.amazonaws.com" } && jsondecode(aws_iam_role.this.assume_role_policy).Statement[0].Condition.StringEquals["aws:SourceAccount"] == "123456789012"
    error_message = "Only this account's Step Functions may assume the role."
  }
}

run "it_loops_on_the_cursor_and_ends_on_200_or_410" {
  command = apply

  assert {
    condition     = jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemProcessor.States.Post.Parameters.FunctionName == var.responder_arn
    error_message = "It invokes the responder with the event."
  }

  assert {
    condition     = jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemProcessor.States.Route.Choices[0].Next == "TakeCursor" && jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemProcessor.States.Route.Choices[0].And[1] == { Variable = "$.last.result.cursor", IsPresent = true } && jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemProcessor.States.Continue.Next == "Post"
    error_message = "A 200 with a cursor goes round again with the cursor merged into the event."
  }

  assert {
    condition     = jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemProcessor.States.Continue.Parameters["event.$"] == "States.JsonMerge($.event, $.patch, false)" && jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemProcessor.States.TakeCursor.Parameters["cursor.$"] == "$.last.result.cursor"
    error_message = "The next invocation is the same event plus the cursor."
  }

  assert {
    condition     = [for c in jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemProcessor.States.Route.Choices : c.Next if lookup(c, "Variable", "") == "$.last.result.statusCode"] == ["Delivered", "Gone"]
    error_message = "200 without a cursor and 410 end the execution."
  }

  assert {
    condition     = jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemProcessor.States.Route.Default == "Failed"
    error_message = "Any other status (400, 413) fails the execution: retrying will not change it."
  }

  assert {
    condition     = contains(jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemProcessor.States.Post.Retry[0].ErrorEquals, "Lambda.TooManyRequestsException") && jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemProcessor.States.Post.Retry[0].BackoffRate == 2
    error_message = "Lambda throttling is retried with exponential backoff."
  }

  assert {
    condition     = jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemProcessor.States.Route.Choices[4].And[1] == { Variable = "$.attempt", NumericLessThan = 5 } && jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemProcessor.States.Wait.SecondsPath == "$.wait"
    error_message = "A 500 is retried after a growing wait, at most max_retries times."
  }
}

run "it_runs_every_segment_at_once_each_on_its_own_cursor" {
  command = apply
  variables {
    segments = 4
  }

  assert {
    condition     = jsondecode(aws_sfn_state_machine.this.definition).States.Defaults.Parameters.defaults == { segments = 4 } && jsondecode(aws_sfn_state_machine.this.definition).States.Split.Parameters["event.$"] == "States.JsonMerge($.defaults, $.event, false)"
    error_message = "The input's segments win over the module's default."
  }

  assert {
    condition     = jsondecode(aws_sfn_state_machine.this.definition).States.Range.Parameters["indices.$"] == "States.ArrayRange(0, States.MathAdd($.event.segments, -1), 1)"
    error_message = "One item per segment, 0 to segments - 1."
  }

  assert {
    condition = (
      jsondecode(aws_sfn_state_machine.this.definition).States.Segments.Type == "Map"
      && jsondecode(aws_sfn_state_machine.this.definition).States.Segments.MaxConcurrency == 0
      && jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemSelector == { "event.$" = "$.event", patch = { "segment.$" = "$$.Map.Item.Value" } }
      && jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemProcessor.States.Start.Parameters["event.$"] == "States.JsonMerge($.event, $.patch, false)"
    )
    error_message = "A Map runs the segments at once, each branch's event the input plus its segment."
  }

  assert {
    condition     = !can(jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ToleratedFailurePercentage) && !can(jsondecode(aws_sfn_state_machine.this.definition).States.Segments.Catch)
    error_message = "A branch that fails (posts still owed, a status retrying will not change) fails the whole run."
  }
}

run "it_never_ends_green_while_posts_failed" {
  command = apply

  assert {
    condition     = jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemProcessor.States.Post.Next == "Counted" && jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemProcessor.States.Tally.Parameters["failed.$"] == "States.MathAdd($.failed, $.last.result.failed)"
    error_message = "Each fan-out answer's failed count is added up."
  }

  assert {
    condition     = jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemProcessor.States.Route.Choices[1].Next == "Incomplete" && jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemProcessor.States.Route.Choices[1].And[1] == { Variable = "$.failed", NumericGreaterThan = 0 } && jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemProcessor.States.Incomplete.Type == "Fail"
    error_message = "A fan-out that reached its end with failed posts fails (FanOutIncomplete), before the 200 that ends green."
  }

  assert {
    condition     = alltrue([for state in ["Continue", "ContinueAfterBackOff", "BackOff"] : jsondecode(aws_sfn_state_machine.this.definition).States.Segments.ItemProcessor.States[state].Parameters["failed.$"] == "$.failed"])
    error_message = "The running count survives every continuation and back-off."
  }
}

run "a_qualified_or_foreign_arn_is_refused" {
  command = plan
  variables {
    responder_arn = "arn:aws:lambda:us-east-1:123456789012:function:ws-connection-test-WebSocketResponder:live"
    max_retries   = 9
    segments      = 101
  }
  expect_failures = [var.responder_arn, var.max_retries, var.segments]
}
