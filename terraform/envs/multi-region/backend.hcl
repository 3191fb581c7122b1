# terraform init -backend-config=backend.hcl (bucket from terraform/bootstrap's outputs)
bucket       = "ws-connection-tfstate-123456789012"
key          = "ws-connection/multi-region/terraform.tfstate"
region       = "us-east-1"
encrypt      = true
use_lockfile = true
