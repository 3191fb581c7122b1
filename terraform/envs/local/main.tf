# The whole stack against an AWS API emulator (moto's server) on loopback: used by the Terraform
# apply test and by the local stack. No edge (CloudFront/WAF are AWS-only concerns).
terraform {
  required_version = ">= 1.11"
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.80, < 7.0" }
  }
}

locals {
  services = ["apigateway", "apigatewayv2", "applicationautoscaling", "cloudfront", "cloudwatch", "dynamodb", "events", "iam", "lambda", "logs", "pipes", "scheduler", "sfn", "sns", "sts", "wafv2"]
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "local"
  secret_key                  = "local"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true

  endpoints {
    apigateway     = var.aws_endpoint
    apigatewayv2   = var.aws_endpoint
    appautoscaling = coalesce(var.shim_endpoint, var.aws_endpoint)
    cloudfront     = var.aws_endpoint
    cloudwatch     = var.aws_endpoint
    dynamodb       = var.aws_endpoint
    events         = var.aws_endpoint
    iam            = var.aws_endpoint
    lambda         = var.aws_endpoint
    logs           = var.aws_endpoint
    pipes          = var.aws_endpoint
    scheduler      = var.aws_endpoint
    sfn            = coalesce(var.shim_endpoint, var.aws_endpoint)
    sns            = var.aws_endpoint
    sts            = var.aws_endpoint
    wafv2          = var.aws_endpoint
  }
}

provider "aws" {
  alias                       = "us_east_1"
  region                      = "us-east-1"
  access_key                  = "local"
  secret_key                  = "local"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  endpoints {
    cloudwatch = var.aws_endpoint
    logs       = var.aws_endpoint
    sts        = var.aws_endpoint
    wafv2      = var.aws_endpoint
  }
}

module "stack" {
  source = "../../modules/stack"
  providers = {
    aws           = aws
    aws.us_east_1 = aws.us_east_1
  }

  name_prefix        = var.name_prefix
  manifest_path      = "${path.root}/../../../lambda.manifest.json"
  artifacts_dir      = var.artifacts_dir
  authorizer         = var.authorizer
  log_retention_days = 1
  log_level          = "DEBUG"
  # The sample fan-out state machine (modules/fanout): on in the apply test, through
  # scripts/moto_shim.py (see variables.tf for why).
  fanout_state_machine = var.fanout_state_machine

  client_info              = var.client_info
  max_connections_per_user = var.max_connections_per_user
  table_billing_mode       = var.table_billing_mode
  table_capacity           = var.table_capacity
  events                   = var.events
}
