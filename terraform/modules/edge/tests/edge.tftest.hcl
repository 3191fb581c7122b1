mock_provider "aws" {
  source = "../../tests/mocks"
}

mock_provider "aws" {
  alias  = "us_east_1"
  source = "../../tests/mocks"
}

variables {
  name                 = "ws-connection-test"
  origin_domain        = "abc123.execute-api.us-east-1.amazonaws.com"
  stage_name           = "prod"
  origin_verify_secret = "0123456789abcdef0123456789abcdef"
}

run "waf_in_front_with_managed_rules_rate_limit_and_logging" {
  command = apply

  assert {
    condition     = aws_wafv2_web_acl.this.scope == "CLOUDFRONT"
    error_message = "A CloudFront-scoped web ACL."
  }

  assert {
    condition     = toset([for r in aws_wafv2_web_acl.this.rule : r.name]) == toset(["rate-per-ip", "common", "known-bad", "ip-reputation", "anonymous-ip"])
    error_message = "A per-IP rate rule and the common, known-bad-inputs and IP-reputation groups."
  }

  assert {
    condition     = one([for r in aws_wafv2_web_acl.this.rule : r.statement[0].rate_based_statement[0].aggregate_key_type if r.name == "rate-per-ip"]) == "IP"
    error_message = "The rate rule counts per IP."
  }

  assert {
    condition     = startswith(aws_cloudwatch_log_group.waf.name, "aws-waf-logs-")
    error_message = "WAF logs to a log group it accepts."
  }

  assert {
    condition     = toset(one(one(aws_cloudfront_origin_request_policy.websocket.headers_config).headers).items) == toset(["Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions", "Origin"])
    error_message = "CloudFront must forward the WebSocket handshake headers."
  }

  assert {
    condition     = one([for o in aws_cloudfront_distribution.this.origin : [for h in o.custom_header : h.name]])[0] == "X-Origin-Verify"
    error_message = "CloudFront must add the origin secret header."
  }

  assert {
    condition     = aws_cloudfront_distribution.this.web_acl_id == aws_wafv2_web_acl.this.arn
    error_message = "The distribution must be behind the web ACL."
  }
}

run "a_short_secret_and_a_tiny_rate_limit_are_refused" {
  command = plan
  variables {
    origin_verify_secret = "short"
    rate_limit_per_5min  = 10
  }
  expect_failures = [var.origin_verify_secret, var.rate_limit_per_5min]
}
