mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }
  mock_resource "aws_iam_openid_connect_provider" {
    defaults = {
      arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    }
  }
  mock_resource "aws_s3_bucket" {
    defaults = {
      arn = "arn:aws:s3:::ws-connection-tfstate-123456789012"
    }
  }
}

variables {
  github_repository = "acme/ws-connection"
}

run "each_environment_role_trusts_only_its_github_environment" {
  command = apply

  assert {
    condition = alltrue([for env in ["dev", "prod"] :
      jsondecode(aws_iam_role.deploy[env].assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == "repo:acme/ws-connection:environment:${env}"
    ])
    error_message = "A deploy role must pin repo:<owner>/<repo>:environment:<env>."
  }

  assert {
    condition     = jsondecode(aws_iam_role.deploy["prod"].assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    error_message = "The token audience must be sts.amazonaws.com."
  }

  assert {
    condition = alltrue(flatten([for env in ["dev", "prod"] : [
      for s in jsondecode(aws_iam_role_policy.deploy[env].policy).Statement : [for a in s.Action : a != "*" && !endswith(a, ":*")]
    ]]))
    error_message = "Deploy roles name their actions."
  }

  assert {
    condition     = output.deploy_role_arns == { dev = aws_iam_role.deploy["dev"].arn, prod = aws_iam_role.deploy["prod"].arn } && output.state_bucket == "ws-connection-tfstate-123456789012"
    error_message = "Outputs name each environment's role and the state bucket."
  }

  assert {
    condition     = output.github_variables.repository.AWS_REGION == "us-east-1" && output.github_variables.environments.prod.AWS_DEPLOY_ROLE_ARN == aws_iam_role.deploy["prod"].arn
    error_message = "github_variables names what each GitHub scope needs."
  }

  assert {
    condition     = aws_s3_bucket_versioning.state.versioning_configuration[0].status == "Enabled" && aws_s3_bucket_public_access_block.state.restrict_public_buckets
    error_message = "State is versioned and private."
  }
}

run "a_bad_repository_is_refused" {
  command = plan
  variables {
    github_repository = "not a repo"
  }
  expect_failures = [var.github_repository]
}
