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
      GSI1 = ["gsi1pk", "gsi1sk", "ALL"]
      GSI2 = ["gsi2pk", "gsi2sk", "ALL"]
    })
    error_message = "GSI1 (conversation) and GSI2 (user) must be keyed as in shared/src/record.rs."
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
