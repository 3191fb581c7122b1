mock_provider "aws" {
  source = "../../tests/mocks"

  mock_resource "aws_cloudwatch_log_group" {
    defaults = {
      arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/ws-connection-test-ConnectFunction"
    }
  }
}

variables {
  name              = "ConnectFunction"
  name_prefix       = "ws-connection-test"
  svc               = "ws-connect"
  metrics_namespace = "ws-connection"
  zip_path          = "ConnectFunction.zip"
  source_code_hash  = "zQSYfwYTYASnt09z8RGyayYBz+ts3hGJDza7YcAMhRQ="
  memory_mb         = 128
  timeout_s         = 10
  policy_statements = [{ actions = ["dynamodb:PutItem"], resources = ["arn:aws:dynamodb:us-east-1:123456789012:table/t"] }]
}

run "a_function_as_design_section_1_wants_it" {
  command = apply

  assert {
    condition     = aws_lambda_function.this.runtime == "provided.al2023" && aws_lambda_function.this.handler == "bootstrap" && aws_lambda_function.this.architectures == tolist(["arm64"])
    error_message = "provided.al2023, bootstrap, arm64 by default."
  }

  assert {
    condition     = aws_cloudwatch_log_group.this.name == "/aws/lambda/ws-connection-test-ConnectFunction" && aws_cloudwatch_log_group.this.retention_in_days == 30
    error_message = "Its own log group, with retention."
  }

  assert {
    condition     = jsondecode(aws_iam_role_policy.this.policy).Statement[0].Resource == ["arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/ws-connection-test-ConnectFunction:*"]
    error_message = "It may write only to its own log group."
  }

  assert {
    condition     = toset(keys(aws_cloudwatch_metric_alarm.this)) == toset(["errors", "lambda-errors", "throttles"]) && aws_cloudwatch_metric_alarm.this["errors"].dimensions.Service == "ws-connect"
    error_message = "Alarms on EMF Errors (by Service) and Lambda Errors and Throttles."
  }

  assert {
    condition     = length(aws_iam_role_policy_attachment.xray) == 0 && aws_lambda_function.this.tracing_config[0].mode == "PassThrough"
    error_message = "X-Ray is off unless asked for."
  }
}

run "a_wildcard_action_is_refused" {
  command = plan
  variables {
    policy_statements = [{ actions = ["dynamodb:*"], resources = ["arn:aws:dynamodb:us-east-1:123456789012:table/t"] }]
  }
  expect_failures = [var.policy_statements]
}

run "a_star_action_is_refused" {
  command = plan
  variables {
    policy_statements = [{ actions = ["*"], resources = ["arn:aws:dynamodb:us-east-1:123456789012:table/t"] }]
  }
  expect_failures = [var.policy_statements]
}

run "a_star_resource_is_refused" {
  command = plan
  variables {
    policy_statements = [{ actions = ["dynamodb:PutItem"], resources = ["*"] }]
  }
  expect_failures = [var.policy_statements]
}

run "bad_sizes_and_settings_are_refused" {
  command = plan
  variables {
    memory_mb          = 64
    timeout_s          = 0
    architecture       = "riscv64"
    log_retention_days = 2
    source_code_hash   = "not-a-hash"
    name               = "Connect Function"
  }
  expect_failures = [var.memory_mb, var.timeout_s, var.architecture, var.log_retention_days, var.source_code_hash, var.name]
}

run "a_grant_may_be_narrowed_by_a_condition" {
  command = apply
  variables {
    policy_statements = [
      { actions = ["dynamodb:PutItem"], resources = ["arn:aws:dynamodb:us-east-1:123456789012:table/t"] },
      {
        actions    = ["dynamodb:UpdateItem"]
        resources  = ["arn:aws:dynamodb:us-east-1:123456789012:table/t"]
        conditions = { "ForAllValues:StringLike" = { "dynamodb:LeadingKeys" = ["MEMBERS#*"] } }
      },
    ]
  }

  assert {
    condition     = !contains(keys(jsondecode(aws_iam_role_policy.this.policy).Statement[1]), "Condition")
    error_message = "A grant without conditions has no Condition."
  }

  assert {
    condition     = jsondecode(aws_iam_role_policy.this.policy).Statement[2].Condition == { "ForAllValues:StringLike" = { "dynamodb:LeadingKeys" = ["MEMBERS#*"] } }
    error_message = "A grant's conditions become its Condition."
  }
}
