# The stack in two regions behind one DynamoDB global table: the primary region makes the table
# with a replica in the secondary region; each region has its own WebSocket API, functions and
# Management API quota, and its functions use their own replica. A connection is posted (and
# closed) through the API of the region it connected to (each record keeps its API id, stage and
# region), so either region's responder reaches every client. Only the primary runs the expiry
# sweep: the index is global, one sweep closes every region's expired connections.
#
#   terraform init -backend-config=backend.hcl && terraform apply -var environment=prod
terraform {
  required_version = ">= 1.11"
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.80, < 7.0" }
  }
  backend "s3" {}
}

provider "aws" {
  alias  = "primary"
  region = var.primary_region
}

provider "aws" {
  alias  = "secondary"
  region = var.secondary_region
}

# CloudFront-scoped WAF lives in us-east-1.
provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"
}

locals {
  manifest_path = "${path.root}/../../../lambda.manifest.json"
  tags          = { environment = var.environment, topology = "multi-region" }
}

module "primary" {
  source = "../../modules/stack"
  providers = {
    aws           = aws.primary
    aws.us_east_1 = aws.us_east_1
  }

  name_prefix         = "ws-connection-${var.environment}"
  manifest_path       = local.manifest_path
  artifacts_dir       = var.artifacts_dir
  authorizer          = var.authorizer
  replica_regions     = [var.secondary_region]
  peer_regions        = [var.secondary_region]
  custom_domain       = var.primary_domain
  deletion_protection = var.deletion_protection
  tags                = local.tags
}

module "secondary" {
  source = "../../modules/stack"
  providers = {
    aws           = aws.secondary
    aws.us_east_1 = aws.us_east_1
  }

  name_prefix         = "ws-connection-${var.environment}"
  manifest_path       = local.manifest_path
  artifacts_dir       = var.artifacts_dir
  authorizer          = var.authorizer
  use_table           = module.primary.table_name
  peer_regions        = [var.primary_region]
  custom_domain       = var.secondary_domain
  expiry_sweep        = false
  deletion_protection = var.deletion_protection
  tags                = local.tags
}
