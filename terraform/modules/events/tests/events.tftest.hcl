mock_provider "aws" {
  source = "../../tests/mocks"

  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { name = "us-east-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
}

variables {
  name             = "ws-connection-test"
  table_stream_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/ws-connection-test-connections/stream/2026-12-03T00:00:00.000"
}

run "the_pipes_read_only_the_stream_and_put_only_on_the_bus" {
  command = apply

  assert {
    condition = jsondecode(output.policy_json).Statement == [
      {
        Effect   = "Allow"
        Action   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
        Resource = [var.table_stream_arn]
      },
      {
        Effect   = "Allow"
        Action   = ["events:PutEvents"]
        Resource = [output.bus_arn]
      },
    ]
    error_message = "Two statements: read the table's stream, put events on the one bus."
  }

  assert {
    condition     = jsondecode(aws_iam_role.this.assume_role_policy).Statement[0].Principal == { Service = "pipes.amazonaws.com" } && jsondecode(aws_iam_role.this.assume_role_policy).Statement[0].Condition.StringEquals["aws:SourceAccount"] == "123456789012"
    error_message = "Only this account's pipes may assume the role."
  }

  assert {
    condition     = length(aws_cloudwatch_event_bus.this) == 1 && aws_cloudwatch_event_bus.this[0].name == "ws-connection-test"
    error_message = "Without bus_name the module makes its own bus."
  }
}

run "a_connect_and_a_close_each_become_one_event_and_nothing_else_does" {
  command = apply

  assert {
    condition = jsondecode(aws_pipes_pipe.this["connected"].source_parameters[0].filter_criteria[0].filter[0].pattern) == {
      eventName = ["INSERT"]
      dynamodb  = { NewImage = { sk = { S = ["CONNECTION"] }, status = { S = ["CONNECTED"] } } }
    }
    error_message = "A connection opening is the INSERT of a CONNECTED record (not a tombstone, not a stream item)."
  }

  assert {
    condition = jsondecode(aws_pipes_pipe.this["disconnected"].source_parameters[0].filter_criteria[0].filter[0].pattern) == {
      eventName = ["MODIFY"]
      dynamodb = {
        OldImage = { sk = { S = ["CONNECTION"] }, status = { S = ["CONNECTED"] } }
        NewImage = { status = { S = ["DISCONNECTED", "GONE"] } }
      }
    }
    error_message = "A connection closing is its record leaving CONNECTED (a $disconnect, or GONE when one was lost); a replayed $disconnect (DISCONNECTED to DISCONNECTED) is not another event."
  }

  assert {
    condition = alltrue([for kind, pipe in aws_pipes_pipe.this : (
      pipe.source == var.table_stream_arn && pipe.target == output.bus_arn
      && pipe.source_parameters[0].dynamodb_stream_parameters[0].starting_position == "LATEST"
      && pipe.target_parameters[0].eventbridge_event_bus_parameters[0].source == "ws-connection"
    )])
    error_message = "Each pipe reads the stream from now and puts its events on the bus with source ws-connection."
  }

  assert {
    condition     = aws_pipes_pipe.this["connected"].target_parameters[0].eventbridge_event_bus_parameters[0].detail_type == "Connection opened" && aws_pipes_pipe.this["disconnected"].target_parameters[0].eventbridge_event_bus_parameters[0].detail_type == "Connection closed"
    error_message = "The detail-types the docs name."
  }
}

run "the_detail_is_json_with_what_a_consumer_needs_and_no_client_data" {
  command = apply

  # Each placeholder filled as Pipes fills a string path: the template must be JSON with these keys.
  assert {
    condition = toset(keys(jsondecode(replace(aws_pipes_pipe.this["connected"].target_parameters[0].input_template, "/<[^>]+>/", "x")))) == toset(
    ["event", "eventId", "connectionId", "conversationId", "userId", "region", "at"])
    error_message = "A connect's detail: event, eventId (to drop a duplicate), connection, conversation, user, region, time."
  }

  assert {
    condition = toset(keys(jsondecode(replace(aws_pipes_pipe.this["disconnected"].target_parameters[0].input_template, "/<[^>]+>/", "x")))) == toset(
    ["event", "eventId", "connectionId", "conversationId", "userId", "region", "status", "reason", "closeCode", "at"])
    error_message = "A close's detail adds its status, reason (banned, expired, a client's close reason) and close code."
  }

  assert {
    condition     = alltrue([for pipe in aws_pipes_pipe.this : !strcontains(pipe.target_parameters[0].input_template, "ip.") && !strcontains(pipe.target_parameters[0].input_template, "userAgent")])
    error_message = "No IP or user agent leaves the table."
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.banned.event_pattern) == { source = ["ws-connection"], "detail-type" = ["Connection closed"], detail = { reason = ["banned"] } }
    error_message = "The example rule matches closes for a ban."
  }
}

run "the_default_bus_can_be_used_instead" {
  command = apply
  variables {
    bus_name = "default"
  }

  assert {
    condition     = output.bus_arn == "arn:aws:events:us-east-1:123456789012:event-bus/default" && length(aws_cloudwatch_event_bus.this) == 0
    error_message = "bus_name = default puts the events on the account's default bus and makes none."
  }
}

run "a_bad_stream_or_name_is_refused" {
  command = plan
  variables {
    table_stream_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/t"
    name             = "no spaces"
  }
  expect_failures = [var.table_stream_arn, var.name]
}

run "no_presence_pipe_without_its_function" {
  command = apply

  assert {
    condition     = keys(output.pipe_arns) == ["connected", "disconnected"]
    error_message = "Without presence there are the two lifecycle pipes only."
  }
}

run "presence_goes_through_the_membership_function_which_the_role_may_invoke" {
  command = apply
  variables {
    presence = { function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ws-connection-test-MembershipFunction" }
  }

  assert {
    condition = [for f in aws_pipes_pipe.this["presence"].source_parameters[0].filter_criteria[0].filter : jsondecode(f.pattern)] == [
      { eventName = ["INSERT"], dynamodb = { NewImage = { sk = { S = ["CONNECTION"] }, status = { S = ["CONNECTED"] } } } },
      {
        eventName = ["MODIFY"]
        dynamodb = {
          OldImage = { sk = { S = ["CONNECTION"] }, status = { S = ["CONNECTED"] } }
          NewImage = { status = { S = ["DISCONNECTED", "GONE"] } }
        }
      },
      { eventName = ["REMOVE"], dynamodb = { OldImage = { sk = { S = ["CONNECTION"] }, status = { S = ["CONNECTED"] } } } },
    ]
    error_message = "The function gets an opening, an end, and a live record deleted by its TTL; nothing else (no tombstone, no stream or membership item)."
  }

  assert {
    condition = (
      aws_pipes_pipe.this["presence"].enrichment == var.presence.function_arn
      && aws_pipes_pipe.this["presence"].target == output.bus_arn
      && aws_pipes_pipe.this["presence"].target_parameters[0].eventbridge_event_bus_parameters[0].detail_type == "Presence changed"
      && aws_pipes_pipe.this["presence"].target_parameters[0].input_template == null
    )
    error_message = "The function's answer is the events' detail (no template), detail-type Presence changed, on the bus."
  }

  assert {
    condition     = jsondecode(output.policy_json).Statement[2] == { Effect = "Allow", Action = ["lambda:InvokeFunction"], Resource = [var.presence.function_arn] }
    error_message = "The role may invoke the one function, nothing else more."
  }
}

run "a_presence_function_that_is_not_a_function_arn_is_refused" {
  command = plan
  variables {
    presence = { function_arn = "MembershipFunction" }
  }
  expect_failures = [var.presence]
}
