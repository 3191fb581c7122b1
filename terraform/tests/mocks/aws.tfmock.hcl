# Shared by every module's tests: mock_provider "aws" { source = "../../tests/mocks" }.
# ARNs and ids in the shapes the provider and the assertions expect.
mock_resource "aws_dynamodb_table" {
  defaults = {
    arn        = "arn:aws:dynamodb:us-east-1:123456789012:table/ws-connection-test-connections"
    stream_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/ws-connection-test-connections/stream/2026-01-01T00:00:00.000"
  }
}

mock_resource "aws_iam_role" {
  defaults = {
    arn = "arn:aws:iam::123456789012:role/ws-connection-test"
  }
}

mock_resource "aws_cloudwatch_log_group" {
  defaults = {
    arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/ws-connection-test"
  }
}

mock_resource "aws_lambda_function" {
  defaults = {
    arn        = "arn:aws:lambda:us-east-1:123456789012:function:ws-connection-test"
    invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:ws-connection-test/invocations"
  }
}

mock_resource "aws_apigatewayv2_api" {
  defaults = {
    id            = "abc123"
    execution_arn = "arn:aws:execute-api:us-east-1:123456789012:abc123"
  }
}

mock_resource "aws_apigatewayv2_authorizer" {
  defaults = {
    id = "auth01"
  }
}

mock_resource "aws_apigatewayv2_stage" {
  defaults = {
    invoke_url = "wss://abc123.execute-api.us-east-1.amazonaws.com/prod"
  }
}

mock_resource "aws_wafv2_web_acl" {
  defaults = {
    arn = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/ws-connection-test/00000000-0000-0000-0000-000000000000"
  }
}

mock_resource "aws_cloudfront_distribution" {
  defaults = {
    domain_name = "d111111abcdef8.cloudfront.net"
  }
}

mock_data "aws_region" {
  defaults = {
    name = "us-east-1"
  }
}

mock_data "aws_partition" {
  defaults = {
    partition = "aws"
  }
}

mock_data "aws_cloudfront_cache_policy" {
  defaults = {
    id = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
  }
}

mock_data "aws_cloudfront_response_headers_policy" {
  defaults = {
    id = "67f7725c-6f97-4210-82d7-5512b31e9d03"
  }
}

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "123456789012"
  }
}

mock_resource "aws_cloudwatch_event_bus" {
  defaults = {
    arn = "arn:aws:events:us-east-1:123456789012:event-bus/ws-connection-test"
  }
}

mock_resource "aws_pipes_pipe" {
  defaults = {
    arn = "arn:aws:pipes:us-east-1:123456789012:pipe/ws-connection-test"
  }
}
