# A sample Step Functions state machine that fans a message out through WebSocketResponder and
# continues with each answer's cursor until one has none (docs/design.md §8). Its input is the responder's
# event; it splits the fan-out into `segments` (the input's, else var.segments) and runs them at
# once in a Map, each branch looping on its own cursor (docs/design.md §13). Each branch retries Lambda's throttling and service errors and a statusCode 500 with backoff, ends on
# 200 without a cursor and on 410, and fails on anything else (a 400 or 413 will not get better).
# It adds up each answer's `failed` (posts throttled on every try, errors, outcomes cut by a
# deadline): a branch that reached its end with any of them fails as FanOutIncomplete, and so does
# the whole execution (a Map fails when a branch does), so it never ends green while some of the
# audience may have missed the message.

data "aws_caller_identity" "this" {}

locals {
  backoff_seconds = [1, 2, 4, 8, 16]

  definition = {
    Comment = "Fan a message out through WebSocketResponder in segments at once, each continuing with its cursor until done."
    StartAt = "Defaults"
    States = {
      # The input's segments, else this machine's default (a post to one connection is one segment).
      Defaults = {
        Type       = "Pass"
        Parameters = { "event.$" = "$", defaults = { segments = var.segments } }
        Next       = "Split"
      }
      Split = {
        Type       = "Pass"
        Parameters = { "event.$" = "States.JsonMerge($.defaults, $.event, false)" }
        Next       = "Range"
      }
      Range = {
        Type = "Pass"
        Parameters = {
          "event.$"   = "$.event"
          "indices.$" = "States.ArrayRange(0, States.MathAdd($.event.segments, -1), 1)"
        }
        Next = "Segments"
      }
      # Every segment at once (an inline Map runs up to 40 branches at a time); each paces itself
      # against the account's quota.
      Segments = {
        Type           = "Map"
        ItemsPath      = "$.indices"
        MaxConcurrency = 0
        ItemSelector   = { "event.$" = "$.event", patch = { "segment.$" = "$$.Map.Item.Value" } }
        ItemProcessor = {
          ProcessorConfig = { Mode = "INLINE" }
          StartAt         = "Start"
          States          = local.branch
        }
        End = true
      }
    }
  }

  # One segment's loop: its event, then its cursor, until an answer has none.
  branch = {
    Start = {
      Type       = "Pass"
      Parameters = { "event.$" = "States.JsonMerge($.event, $.patch, false)", attempt = 0, failed = 0 }
      Next       = "Post"
    }
    Post = {
      Type     = "Task"
      Resource = "arn:aws:states:::lambda:invoke"
      Parameters = {
        FunctionName = var.responder_arn
        "Payload.$"  = "$.event"
      }
      ResultSelector = { "result.$" = "$.Payload" }
      ResultPath     = "$.last"
      Retry = [{
        ErrorEquals     = ["Lambda.TooManyRequestsException", "Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException"]
        IntervalSeconds = 1
        BackoffRate     = 2
        MaxAttempts     = 6
        JitterStrategy  = "FULL"
      }]
      Next = "Counted"
    }
    # A fan-out's answer carries counts; a single post's does not.
    Counted = {
      Type    = "Choice"
      Choices = [{ Variable = "$.last.result.failed", IsPresent = true, Next = "Tally" }]
      Default = "Route"
    }
    Tally = {
      Type = "Pass"
      Parameters = {
        "event.$"   = "$.event"
        "attempt.$" = "$.attempt"
        "last.$"    = "$.last"
        "failed.$"  = "States.MathAdd($.failed, $.last.result.failed)"
      }
      Next = "Route"
    }
    Route = {
      Type = "Choice"
      Choices = [
        {
          And = [
            { Variable = "$.last.result.statusCode", NumericEquals = 200 },
            { Variable = "$.last.result.cursor", IsPresent = true },
          ]
          Next = "TakeCursor"
        },
        {
          And = [
            { Variable = "$.last.result.statusCode", NumericEquals = 200 },
            { Variable = "$.failed", NumericGreaterThan = 0 },
          ]
          Next = "Incomplete"
        },
        { Variable = "$.last.result.statusCode", NumericEquals = 200, Next = "Delivered" },
        { Variable = "$.last.result.statusCode", NumericEquals = 410, Next = "Gone" },
        {
          And = [
            { Variable = "$.last.result.statusCode", NumericEquals = 500 },
            { Variable = "$.attempt", NumericLessThan = var.max_retries },
            { Variable = "$.last.result.cursor", IsPresent = true },
          ]
          Next = "TakeCursorThenBackOff"
        },
        {
          And = [
            { Variable = "$.last.result.statusCode", NumericEquals = 500 },
            { Variable = "$.attempt", NumericLessThan = var.max_retries },
          ]
          Next = "BackOff"
        },
      ]
      Default = "Failed"
    }
    TakeCursor = {
      Type       = "Pass"
      Parameters = { "cursor.$" = "$.last.result.cursor" }
      ResultPath = "$.patch"
      Next       = "Continue"
    }
    Continue = {
      Type       = "Pass"
      Parameters = { "event.$" = "States.JsonMerge($.event, $.patch, false)", attempt = 0, "failed.$" = "$.failed" }
      Next       = "Post"
    }
    # A 500 with a cursor: retry from the cursor, so connections already attempted are not posted to again.
    TakeCursorThenBackOff = {
      Type       = "Pass"
      Parameters = { "cursor.$" = "$.last.result.cursor" }
      ResultPath = "$.patch"
      Next       = "ContinueAfterBackOff"
    }
    ContinueAfterBackOff = {
      Type       = "Pass"
      Parameters = { "event.$" = "States.JsonMerge($.event, $.patch, false)", "attempt.$" = "$.attempt", "failed.$" = "$.failed" }
      Next       = "BackOff"
    }
    BackOff = {
      Type = "Pass"
      Parameters = {
        "event.$"   = "$.event"
        "attempt.$" = "States.MathAdd($.attempt, 1)"
        "failed.$"  = "$.failed"
        "wait.$"    = "States.ArrayGetItem(States.Array(${join(", ", local.backoff_seconds)}), $.attempt)"
      }
      Next = "Wait"
    }
    Wait = {
      Type        = "Wait"
      SecondsPath = "$.wait"
      Next        = "Post"
    }
    Delivered = { Type = "Succeed" }
    Gone      = { Type = "Succeed", Comment = "410: the one connection is gone; nothing more to do." }
    Incomplete = {
      Type  = "Fail"
      Error = "FanOutIncomplete"
      Cause = "Every connection was attempted, but some posts failed (throttled on every try, an error, or an outcome cut by a deadline): those clients may have missed the message. The responder's log lines say which."
    }
    Failed = {
      Type  = "Fail"
      Error = "FanOutFailed"
      Cause = "WebSocketResponder answered a status that retrying will not change, or 500 after every retry."
    }
  }
}

resource "aws_iam_role" "this" {
  name_prefix = substr("${var.name}-", 0, 38)
  description = "Lets the ${var.name} state machine invoke WebSocketResponder, and nothing else."
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "states.amazonaws.com" }
      Action    = "sts:AssumeRole"
      # Only this account's Step Functions may assume it (confused-deputy protection).
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

resource "aws_sfn_state_machine" "this" {
  name       = var.name
  role_arn   = aws_iam_role.this.arn
  type       = "STANDARD"
  definition = jsonencode(local.definition)
  tags       = var.tags
}
