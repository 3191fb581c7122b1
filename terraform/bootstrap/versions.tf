terraform {
  required_version = ">= 1.11"
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.80, < 7.0" }
  }
  # Applied once, by a person with admin rights, with local state (then keep the state file
  # safe, or migrate it into the bucket this creates).
}

provider "aws" {
  region = var.region
}
