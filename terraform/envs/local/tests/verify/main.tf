# Reads back, from the emulator, what the apply test created: proof the resources exist as
# planned, not just that Terraform thinks so.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.80, < 7.0" }
  }
}

variable "aws_endpoint" {
  description = "The emulator's endpoint."
  type        = string
}

variable "table_name" {
  description = "The table to read."
  type        = string
}

variable "role_names" {
  description = "The roles to read."
  type        = list(string)
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "local"
  secret_key                  = "local"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  endpoints {
    dynamodb = var.aws_endpoint
    iam      = var.aws_endpoint
    sts      = var.aws_endpoint
  }
}

data "aws_dynamodb_table" "this" {
  name = var.table_name
}

data "aws_iam_role" "this" {
  for_each = toset(var.role_names)
  name     = each.key
}

output "gsi" {
  description = "Index name => [hash key, range key]."
  value       = { for g in data.aws_dynamodb_table.this.global_secondary_index : g.name => [g.hash_key, g.range_key] }
}

output "ttl_attribute" {
  description = "The TTL attribute."
  value       = one(data.aws_dynamodb_table.this.ttl).attribute_name
}

output "role_arns" {
  description = "Role name => ARN."
  value       = { for name, r in data.aws_iam_role.this : name => r.arn }
}
