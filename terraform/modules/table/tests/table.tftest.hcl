mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  name = "ws-connection-test-connections"
}

run "the_schema_is_design_section_2" {
  command = plan

  assert {
    condition     = aws_dynamodb_table.this.hash_key == "pk" && aws_dynamodb_table.this.range_key == "sk" && aws_dynamodb_table.this.billing_mode == "PAY_PER_REQUEST"
    error_message = "Keys must be pk/sk, billing PAY_PER_REQUEST."
  }

  assert {
    condition = jsonencode({ for g in aws_dynamodb_table.this.global_secondary_index : g.name => [g.hash_key, g.range_key, g.projection_type] }) == jsonencode({
      GSI1 = ["gsi1pk", "gsi1sk", "INCLUDE"]
      GSI2 = ["gsi2pk", "gsi2sk", "INCLUDE"]
      GSI3 = ["gsi3pk", "gsi3sk", "INCLUDE"]
      GSI4 = ["gsi4pk", "gsi4sk", "INCLUDE"]
    })
    error_message = "GSI1 (conversation), GSI2 (user), GSI3 (token expiry) and GSI4 (live, for a broadcast) must be keyed as in shared/src/record.rs."
  }

  assert {
    condition     = alltrue([for g in aws_dynamodb_table.this.global_secondary_index : toset(g.non_key_attributes) == toset(["connectionId", "status", "apiId", "stage", "region", "userId", "connectedAt"])])
    error_message = "Each index projects only what the fan-out and presence read: connectionId, status, where the connection lives (apiId, stage, region), whose it is and since when (userId, connectedAt)."
  }

  assert {
    condition     = length(aws_appautoscaling_target.this) == 0
    error_message = "On demand has no auto scaling."
  }

  assert {
    condition     = one(aws_dynamodb_table.this.ttl).attribute_name == "ttl" && one(aws_dynamodb_table.this.ttl).enabled
    error_message = "TTL must be on the ttl attribute."
  }

  assert {
    condition     = one(aws_dynamodb_table.this.point_in_time_recovery).enabled && one(aws_dynamodb_table.this.server_side_encryption).enabled
    error_message = "Point-in-time recovery and server-side encryption must be on."
  }

  assert {
    condition     = !aws_dynamodb_table.this.deletion_protection_enabled
    error_message = "Deletion protection is off unless asked for."
  }
}

run "prod_protects_the_table" {
  command = plan

  variables {
    deletion_protection = true
  }

  assert {
    condition     = aws_dynamodb_table.this.deletion_protection_enabled
    error_message = "deletion_protection must reach the table."
  }
}

run "a_bad_table_name_is_refused" {
  command = plan

  variables {
    name = "my table"
  }

  expect_failures = [var.name]
}

run "provisioned_scales_the_table_and_every_index" {
  command = plan

  variables {
    billing_mode = "PROVISIONED"
    capacity     = { read_min = 5, read_max = 100, write_min = 5, write_max = 50 }
  }

  assert {
    condition     = aws_dynamodb_table.this.billing_mode == "PROVISIONED" && aws_dynamodb_table.this.read_capacity == 5 && aws_dynamodb_table.this.write_capacity == 5
    error_message = "The table starts at the minimum capacity."
  }

  assert {
    condition     = alltrue([for g in aws_dynamodb_table.this.global_secondary_index : g.read_capacity == 5 && g.write_capacity == 5])
    error_message = "Each index starts at the minimum capacity."
  }

  assert {
    condition = toset([for t in aws_appautoscaling_target.this : "${t.resource_id} ${t.scalable_dimension} ${t.min_capacity}-${t.max_capacity}"]) == toset([
      "table/ws-connection-test-connections dynamodb:table:ReadCapacityUnits 5-100",
      "table/ws-connection-test-connections dynamodb:table:WriteCapacityUnits 5-50",
      "table/ws-connection-test-connections/index/GSI1 dynamodb:index:ReadCapacityUnits 5-100",
      "table/ws-connection-test-connections/index/GSI1 dynamodb:index:WriteCapacityUnits 5-50",
      "table/ws-connection-test-connections/index/GSI2 dynamodb:index:ReadCapacityUnits 5-100",
      "table/ws-connection-test-connections/index/GSI2 dynamodb:index:WriteCapacityUnits 5-50",
      "table/ws-connection-test-connections/index/GSI3 dynamodb:index:ReadCapacityUnits 5-100",
      "table/ws-connection-test-connections/index/GSI3 dynamodb:index:WriteCapacityUnits 5-50",
      "table/ws-connection-test-connections/index/GSI4 dynamodb:index:ReadCapacityUnits 5-100",
      "table/ws-connection-test-connections/index/GSI4 dynamodb:index:WriteCapacityUnits 5-50",
    ])
    error_message = "Reads and writes of the table and every index scale within the bounds."
  }

  assert {
    condition     = alltrue([for p in aws_appautoscaling_policy.this : p.policy_type == "TargetTrackingScaling" && one(p.target_tracking_scaling_policy_configuration).target_value == 70])
    error_message = "Target tracking at 70 % utilization by default."
  }

  assert {
    condition     = toset([for k, p in aws_appautoscaling_policy.this : one(one(p.target_tracking_scaling_policy_configuration).predefined_metric_specification).predefined_metric_type]) == toset(["DynamoDBReadCapacityUtilization", "DynamoDBWriteCapacityUtilization"])
    error_message = "Reads track read utilization, writes write utilization."
  }
}

run "provisioned_without_capacity_is_refused" {
  command = plan
  variables {
    billing_mode = "PROVISIONED"
  }
  expect_failures = [var.capacity]
}

run "inverted_or_zero_capacity_is_refused" {
  command = plan
  variables {
    billing_mode = "PROVISIONED"
    capacity     = { read_min = 10, read_max = 5, write_min = 0, write_max = 5 }
  }
  expect_failures = [var.capacity]
}

run "an_unknown_billing_mode_is_refused" {
  command = plan
  variables {
    billing_mode = "ON_DEMAND"
  }
  expect_failures = [var.billing_mode]
}

run "replica_regions_make_a_global_table_with_its_stream_and_pitr_per_replica" {
  command = plan
  variables {
    replica_regions = ["eu-west-1", "ap-southeast-2"]
  }

  assert {
    condition     = aws_dynamodb_table.this.stream_enabled == true && aws_dynamodb_table.this.stream_view_type == "NEW_AND_OLD_IMAGES"
    error_message = "A global table replicates through the table's stream (NEW_AND_OLD_IMAGES)."
  }

  assert {
    condition     = toset([for r in aws_dynamodb_table.this.replica : r.region_name]) == toset(["eu-west-1", "ap-southeast-2"]) && alltrue([for r in aws_dynamodb_table.this.replica : r.point_in_time_recovery])
    error_message = "One replica per region, each with point-in-time recovery."
  }

  assert {
    condition     = aws_dynamodb_table.this.server_side_encryption[0].enabled
    error_message = "Encrypted at rest (the replicas inherit it)."
  }
}

run "a_single_region_table_has_no_stream" {
  command = plan

  assert {
    condition     = length(aws_dynamodb_table.this.replica) == 0 && aws_dynamodb_table.this.stream_enabled != true
    error_message = "Without replicas there is no stream to pay for."
  }
}

run "replicas_need_on_demand_billing_and_real_regions" {
  command = plan
  variables {
    replica_regions = ["Mars-1"]
    billing_mode    = "PROVISIONED"
    capacity        = { read_min = 5, read_max = 10, write_min = 5, write_max = 10 }
  }
  expect_failures = [var.replica_regions]
}

run "stream_on_for_the_lifecycle_events" {
  command = plan
  variables {
    stream = true
  }

  assert {
    condition     = aws_dynamodb_table.this.stream_enabled == true && aws_dynamodb_table.this.stream_view_type == "NEW_AND_OLD_IMAGES" && length(aws_dynamodb_table.this.replica) == 0
    error_message = "stream = true turns the stream on with both images (the pipes filter on the old and the new status), without replicas."
  }
}
