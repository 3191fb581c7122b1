output "deploy_role_arns" {
  description = "Per environment: the role its workflow jobs assume (the AWS_DEPLOY_ROLE_ARN environment variable in GitHub)."
  value       = { for env, r in aws_iam_role.deploy : env => r.arn }
}

output "region" {
  description = "The AWS_REGION repository variable in GitHub."
  value       = var.region
}

output "state_bucket" {
  description = "The bucket the environments' backend.hcl names."
  value       = aws_s3_bucket.state.bucket
}

output "environments" {
  description = "GitHub environment names with a deploy role."
  value       = var.environments
}

output "github_variables" {
  description = "What to set in GitHub, by scope: repository variables, and variables per environment. The workflows read exactly these names (scripts/tests/workflows.sh checks it)."
  value = {
    repository   = { AWS_REGION = var.region }
    environments = { for env, r in aws_iam_role.deploy : env => { AWS_DEPLOY_ROLE_ARN = r.arn } }
  }
}
