# Lifecycle events (docs/design.md §12): the connections table's stream, through EventBridge Pipes,
# to an EventBridge bus. With presence, a third pipe hands the records that open or
# end a connection to that function (MembershipFunction, the pipe's enrichment), which keeps who
# of each conversation is there and answers "Presence changed" events (a user joined, a user left). No code runs on the connect path and nothing is added to its latency: a
# pipe reads the stream, keeps only the records of a connection opening (INSERT of a CONNECTED
# record) or closing (MODIFY from CONNECTED to DISCONNECTED or GONE), reshapes each into the
# event's detail, and puts it on the bus. Streams deliver at least once and in order per item (per
# connection): `detail.eventId` (the stream record's id) lets a consumer drop a duplicate. Every
# value is a string placeholder, quoted as Pipes' input templates want string paths quoted.

data "aws_caller_identity" "this" {}
data "aws_region" "this" {}
data "aws_partition" "this" {}

locals {
  bus_arn = (
    var.bus_name == null ? aws_cloudwatch_event_bus.this[0].arn :
    "arn:${data.aws_partition.this.partition}:events:${data.aws_region.this.name}:${data.aws_caller_identity.this.account_id}:event-bus/${var.bus_name}"
  )
  image = "$.dynamodb.NewImage"
  # What each pipe keeps and what it makes of it. No IP, user agent or token ever leaves the table.
  pipes = {
    connected = {
      detail_type = "Connection opened"
      pattern = {
        eventName = ["INSERT"]
        dynamodb  = { NewImage = { sk = { S = ["CONNECTION"] }, status = { S = ["CONNECTED"] } } }
      }
      detail = "{\"event\": \"connected\", \"eventId\": \"<$.eventID>\", \"connectionId\": \"<${local.image}.connectionId.S>\", \"conversationId\": \"<${local.image}.conversationId.S>\", \"userId\": \"<${local.image}.userId.S>\", \"region\": \"<${local.image}.region.S>\", \"at\": \"<${local.image}.connectedAt.S>\"}"
    }
    disconnected = {
      detail_type = "Connection closed"
      pattern = {
        eventName = ["MODIFY"]
        dynamodb = {
          OldImage = { sk = { S = ["CONNECTION"] }, status = { S = ["CONNECTED"] } }
          NewImage = { status = { S = ["DISCONNECTED", "GONE"] } }
        }
      }
      detail = "{\"event\": \"disconnected\", \"eventId\": \"<$.eventID>\", \"connectionId\": \"<${local.image}.connectionId.S>\", \"conversationId\": \"<${local.image}.conversationId.S>\", \"userId\": \"<${local.image}.userId.S>\", \"region\": \"<${local.image}.region.S>\", \"status\": \"<${local.image}.status.S>\", \"reason\": \"<${local.image}.closeReason.S>\", \"closeCode\": \"<${local.image}.closeCode.N>\", \"at\": \"<${local.image}.updatedAt.S>\"}"
    }
  }
}

locals {
  # Every pipe: the lifecycle ones, each a filter and an input template to the bus; and with
  # presence, one whose records (an opening, an end, and a live record deleted by its TTL: a
  # connection that ended without a word) go in batches to the membership function, whose answer
  # (an array, each element one event's detail) goes to the bus. A failed batch is read again (up
  # to 10 times) before that shard's next one.
  all_pipes = merge(
    { for kind, pipe in local.pipes : kind => merge(pipe, { patterns = [pipe.pattern], enrichment = null }) },
    var.presence == null ? {} : {
      presence = {
        detail_type = "Presence changed"
        patterns = [
          local.pipes.connected.pattern,
          local.pipes.disconnected.pattern,
          { eventName = ["REMOVE"], dynamodb = { OldImage = { sk = { S = ["CONNECTION"] }, status = { S = ["CONNECTED"] } } } },
        ]
        detail     = null
        enrichment = var.presence.function_arn
      }
    },
  )
}

resource "aws_cloudwatch_event_bus" "this" {
  count = var.bus_name == null ? 1 : 0
  name  = var.name
  tags  = var.tags
}

resource "aws_iam_role" "this" {
  name_prefix = substr("${var.name}-events-", 0, 38)
  description = "Lets the ${var.name} lifecycle pipes read the connections table's stream and put events on one bus."
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "pipes.amazonaws.com" }
      Action    = "sts:AssumeRole"
      # Only this account's pipes may assume it (confused-deputy protection).
      Condition = { StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.this.account_id } }
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "this" {
  name = "read-stream-put-events"
  role = aws_iam_role.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Effect   = "Allow"
        Action   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
        Resource = [var.table_stream_arn]
      },
      {
        Effect   = "Allow"
        Action   = ["events:PutEvents"]
        Resource = [local.bus_arn]
      },
      ], var.presence == null ? [] : [
      {
        Effect   = "Allow"
        Action   = ["lambda:InvokeFunction"]
        Resource = [var.presence.function_arn]
      },
    ])
  })
}

resource "aws_pipes_pipe" "this" {
  for_each    = local.all_pipes
  name        = "${var.name}-${each.key}"
  description = "${each.value.detail_type}: the connections table's stream to ${local.bus_arn}."
  role_arn    = aws_iam_role.this.arn
  source      = var.table_stream_arn
  target      = local.bus_arn
  enrichment  = each.value.enrichment

  source_parameters {
    dynamodb_stream_parameters {
      starting_position                  = "LATEST"
      batch_size                         = 10
      maximum_batching_window_in_seconds = 1
      maximum_retry_attempts             = 10
    }
    filter_criteria {
      dynamic "filter" {
        for_each = each.value.patterns
        content {
          pattern = jsonencode(filter.value)
        }
      }
    }
  }

  target_parameters {
    input_template = each.value.detail
    eventbridge_event_bus_parameters {
      detail_type = each.value.detail_type
      source      = var.source_name
    }
  }

  tags       = var.tags
  depends_on = [aws_iam_role_policy.this]
}

# An example rule to start from: every close for a ban (add a target: a queue, a function).
resource "aws_cloudwatch_event_rule" "banned" {
  name           = "${var.name}-banned"
  description    = "Example: connections closed for a ban (closeReason banned)."
  event_bus_name = var.bus_name == null ? aws_cloudwatch_event_bus.this[0].name : var.bus_name
  event_pattern = jsonencode({
    source        = [var.source_name]
    "detail-type" = ["Connection closed"]
    detail        = { reason = ["banned"] }
  })
  tags = var.tags
}
