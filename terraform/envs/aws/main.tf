terraform {
  required_version = ">= 1.11"
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.80, < 7.0" }
  }
  # Partial configuration: terraform init -backend-config=backend.hcl
  backend "s3" {}
}

provider "aws" {
  region = var.region
}

# CloudFront-scoped WAF lives in us-east-1.
provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"
}

module "stack" {
  source = "../../modules/stack"
  providers = {
    aws           = aws
    aws.us_east_1 = aws.us_east_1
  }

  name_prefix   = "ws-connection-${var.environment}"
  manifest_path = "${path.root}/../../../lambda.manifest.json"
  artifacts_dir = var.artifacts_dir
  authorizer    = var.authorizer
  edge = var.edge ? {
    rate_limit_per_5min       = var.waf_rate_limit_per_5min
    rate_limit_per_token_5min = var.waf_rate_limit_per_token_5min
  } : null
  origin_verify_secret     = var.origin_verify_secret
  deletion_protection      = var.deletion_protection
  table_billing_mode       = var.table_billing_mode
  table_capacity           = var.table_capacity
  client_info              = var.client_info
  max_connections_per_user = var.max_connections_per_user
  throttling_rate_limit    = var.throttling_rate_limit
  throttling_burst_limit   = var.throttling_burst_limit
  log_retention_days       = var.log_retention_days
  alarm_topic_arn          = var.alarm_topic_arn
  tracing                  = var.tracing
  tags                     = { environment = var.environment }
}
