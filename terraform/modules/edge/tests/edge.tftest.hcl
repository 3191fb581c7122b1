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
  # ConnectFunction's minimum (the manifest's min_length; the stack passes it).
  origin_verify_secret_min_length = 32
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
    condition     = one([for o in aws_cloudfront_distribution.this.origin : [for h in o.custom_header : h.value]])[0] == var.origin_verify_secret
    error_message = "The header CloudFront adds must carry the secret."
  }

  assert {
    condition     = aws_cloudfront_distribution.this.web_acl_id == aws_wafv2_web_acl.this.arn
    error_message = "The distribution must be behind the web ACL."
  }
}

run "the_waf_log_never_holds_a_token" {
  command = apply

  assert {
    condition     = length([for f in aws_wafv2_web_acl_logging_configuration.this.redacted_fields : f if length(f.query_string) == 1]) == 1
    error_message = "The query string (?token=) must be redacted from the WAF log."
  }

  assert {
    condition     = contains([for f in aws_wafv2_web_acl_logging_configuration.this.redacted_fields : one(f.single_header).name if length(f.single_header) == 1], "authorization")
    error_message = "The Authorization header must be redacted from the WAF log."
  }

  assert {
    condition     = contains([for f in aws_wafv2_web_acl_logging_configuration.this.redacted_fields : one(f.single_header).name if length(f.single_header) == 1], "sec-websocket-protocol")
    error_message = "The Sec-WebSocket-Protocol header (bearer.<jwt>) must be redacted from the WAF log."
  }

  assert {
    condition     = contains([for f in aws_wafv2_web_acl_logging_configuration.this.redacted_fields : one(f.single_header).name if length(f.single_header) == 1], "cookie")
    error_message = "The Cookie header must be redacted from the WAF log."
  }

  assert {
    condition     = alltrue([for f in aws_wafv2_web_acl_logging_configuration.this.redacted_fields : f.single_header[0].name == lower(f.single_header[0].name) if length(f.single_header) == 1])
    error_message = "WAF matches redacted header names in lower case."
  }
}

run "no_per_token_rule_unless_asked" {
  command = plan

  assert {
    condition     = length([for r in aws_wafv2_web_acl.this.rule : r if startswith(r.name, "rate-per-token")]) == 0
    error_message = "The per-token rate rules are off by default."
  }
}

run "a_per_token_limit_counts_each_place_a_token_travels" {
  command = apply
  variables {
    rate_limit_per_token_5min = 300
  }

  assert {
    condition     = toset([for r in aws_wafv2_web_acl.this.rule : r.name if startswith(r.name, "rate-per-token")]) == toset(["rate-per-token-query", "rate-per-token-subprotocol", "rate-per-token-authorization"])
    error_message = "One per-token rule for ?token=, the subprotocol and Authorization."
  }

  assert {
    condition     = alltrue([for r in aws_wafv2_web_acl.this.rule : r.statement[0].rate_based_statement[0].aggregate_key_type == "CUSTOM_KEYS" && r.statement[0].rate_based_statement[0].limit == 300 && length(r.action[0].block) == 1 if startswith(r.name, "rate-per-token")])
    error_message = "Each per-token rule blocks past the limit, aggregated on a custom key."
  }

  assert {
    condition     = one([for r in aws_wafv2_web_acl.this.rule : r.statement[0].rate_based_statement[0].custom_key[0].query_argument[0].name if r.name == "rate-per-token-query"]) == "token"
    error_message = "The query rule counts per value of the token argument."
  }

  assert {
    condition     = toset([for r in aws_wafv2_web_acl.this.rule : r.statement[0].rate_based_statement[0].custom_key[0].header[0].name if contains(["rate-per-token-subprotocol", "rate-per-token-authorization"], r.name)]) == toset(["sec-websocket-protocol", "authorization"])
    error_message = "The header rules count per value of the subprotocol and Authorization headers."
  }

  assert {
    condition     = length(distinct([for r in aws_wafv2_web_acl.this.rule : r.priority])) == length(aws_wafv2_web_acl.this.rule)
    error_message = "Rule priorities must be unique."
  }
}

run "a_per_token_limit_under_wafs_minimum_is_refused" {
  command = plan
  variables {
    rate_limit_per_token_5min = 5
  }
  expect_failures = [var.rate_limit_per_token_5min]
}

run "a_short_secret_and_a_tiny_rate_limit_are_refused" {
  command = plan
  variables {
    origin_verify_secret = "short"
    rate_limit_per_5min  = 10
  }
  expect_failures = [var.origin_verify_secret, var.rate_limit_per_5min]
}
