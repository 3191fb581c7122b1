# The connections table (docs/design.md §2), built from schema.json: the one statement of its keys,
# indexes and TTL, which the Rust tests create their tables from and check record.rs against.

locals {
  schema      = jsondecode(file("${path.module}/schema.json"))
  provisioned = var.billing_mode == "PROVISIONED"
  # What the fan-out (and the per-user count) read from an index: the id it posts to, the API,
  # stage and region it posts through, and the status it filters on. Keys are always projected. Projecting ALL wrote the whole item
  # (IP, user agent, close reason, …) three times on every connect and disconnect.
  index_attributes = local.schema.index_projection
  indexes          = sort(keys(local.schema.indexes))
  key_attributes = distinct(concat([local.schema.hash_key, local.schema.range_key], flatten([
    for i in local.indexes : [local.schema.indexes[i].hash_key, local.schema.indexes[i].range_key]
  ])))
  # Auto scaling targets: the table and each index, for reads and for writes.
  scaled = local.provisioned ? merge([
    for resource in concat(["table/${var.name}"], [for i in local.indexes : "table/${var.name}/index/${i}"]) : {
      for unit in ["Read", "Write"] : "${resource}:${unit}" => {
        resource_id = resource
        dimension   = "dynamodb:${strcontains(resource, "/index/") ? "index" : "table"}:${unit}CapacityUnits"
        metric      = "DynamoDB${unit}CapacityUtilization"
        min         = unit == "Read" ? var.capacity.read_min : var.capacity.write_min
        max         = unit == "Read" ? var.capacity.read_max : var.capacity.write_max
      }
    }
  ]...) : {}
}

resource "aws_dynamodb_table" "this" {
  name                        = var.name
  billing_mode                = var.billing_mode
  read_capacity               = local.provisioned ? var.capacity.read_min : null
  write_capacity              = local.provisioned ? var.capacity.write_min : null
  hash_key                    = local.schema.hash_key
  range_key                   = local.schema.range_key
  deletion_protection_enabled = var.deletion_protection

  dynamic "attribute" {
    for_each = local.key_attributes
    content {
      name = attribute.value
      type = "S"
    }
  }

  dynamic "global_secondary_index" {
    for_each = local.schema.indexes
    content {
      name               = global_secondary_index.key
      hash_key           = global_secondary_index.value.hash_key
      range_key          = global_secondary_index.value.range_key
      projection_type    = "INCLUDE"
      non_key_attributes = local.index_attributes
      read_capacity      = local.provisioned ? var.capacity.read_min : null
      write_capacity     = local.provisioned ? var.capacity.write_min : null
    }
  }

  ttl {
    attribute_name = local.schema.ttl_attribute
    enabled        = true
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }

  server_side_encryption {
    enabled = true
  }

  # A global table (version 2019.11.21): a replica per region, each region's functions using
  # their own. Replication rides on the table's stream, and so do the lifecycle events (stream).
  stream_enabled   = length(var.replica_regions) > 0 || var.stream ? true : null
  stream_view_type = length(var.replica_regions) > 0 || var.stream ? "NEW_AND_OLD_IMAGES" : null

  dynamic "replica" {
    for_each = var.replica_regions
    content {
      region_name            = replica.value
      point_in_time_recovery = var.point_in_time_recovery
      propagate_tags         = true
      # Encrypted at rest like the table (the AWS owned key unless a key is given).
      kms_key_arn = null
    }
  }

  tags = var.tags

  # Auto scaling moves the table's capacity; a plan must not pull it back to the minimum. (An
  # index's capacity sits inside global_secondary_index, which cannot be ignored without also
  # hiding key or projection changes: an apply resets it to the minimum and auto scaling raises
  # it again within minutes.)
  lifecycle {
    ignore_changes = [read_capacity, write_capacity]
  }
}

resource "aws_appautoscaling_target" "this" {
  for_each = local.scaled

  service_namespace  = "dynamodb"
  resource_id        = each.value.resource_id
  scalable_dimension = each.value.dimension
  min_capacity       = each.value.min
  max_capacity       = each.value.max

  depends_on = [aws_dynamodb_table.this]
}

resource "aws_appautoscaling_policy" "this" {
  for_each = local.scaled

  name               = "${var.name}-${replace(each.key, "/[^A-Za-z0-9-]/", "-")}"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.this[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.this[each.key].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value = var.capacity.target_utilization_percent
    predefined_metric_specification {
      predefined_metric_type = each.value.metric
    }
  }
}
