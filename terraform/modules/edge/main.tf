# AWS WAF cannot be associated with an API Gateway WebSocket stage, so the protection sits in
# front: CloudFront with a WAF web ACL, forwarding the WebSocket handshake to the API, and adding
# a secret header the API's $connect checks, so the API cannot be reached around the WAF.

resource "aws_wafv2_web_acl" "this" {
  provider = aws.us_east_1

  name  = var.name
  scope = "CLOUDFRONT"

  default_action {
    allow {}
  }

  rule {
    name     = "rate-per-ip"
    priority = 1
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = var.rate_limit_per_5min
        aggregate_key_type = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-rate-per-ip"
      sampled_requests_enabled   = true
    }
  }

  # One stolen token must not open connections at line rate from many IPs: with
  # rate_limit_per_token_5min set, each place a token can travel in is counted per token value.
  # WAF skips a request that lacks the key, so each rule counts only requests that carry one.
  dynamic "rule" {
    for_each = var.rate_limit_per_token_5min == null ? {} : local.token_keys
    content {
      name     = rule.key
      priority = rule.value.priority
      action {
        block {}
      }
      statement {
        rate_based_statement {
          limit              = var.rate_limit_per_token_5min
          aggregate_key_type = "CUSTOM_KEYS"
          custom_key {
            dynamic "query_argument" {
              for_each = rule.value.query_argument == null ? [] : [rule.value.query_argument]
              content {
                name = query_argument.value
                text_transformation {
                  priority = 0
                  type     = "NONE"
                }
              }
            }
            dynamic "header" {
              for_each = rule.value.header == null ? [] : [rule.value.header]
              content {
                name = header.value
                text_transformation {
                  priority = 0
                  type     = "NONE"
                }
              }
            }
          }
        }
      }
      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${var.name}-${rule.key}"
        sampled_requests_enabled   = true
      }
    }
  }

  rule {
    name     = "common"
    priority = 10
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "known-bad"
    priority = 20
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-known-bad"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "ip-reputation"
    priority = 30
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAmazonIpReputationList"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-ip-reputation"
      sampled_requests_enabled   = true
    }
  }

  # Anonymizers (VPNs, Tor, hosting providers): counted by default, so operators see them
  # without locking out users behind corporate VPNs; block_anonymous_ips turns on blocking.
  rule {
    name     = "anonymous-ip"
    priority = 40
    override_action {
      dynamic "none" {
        for_each = var.block_anonymous_ips ? [1] : []
        content {}
      }
      dynamic "count" {
        for_each = var.block_anonymous_ips ? [] : [1]
        content {}
      }
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAnonymousIpList"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-anonymous-ip"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = var.name
    sampled_requests_enabled   = true
  }

  tags = var.tags
}

# WAF requires log groups named aws-waf-logs-*, in the ACL's region.
resource "aws_cloudwatch_log_group" "waf" {
  provider = aws.us_east_1

  name              = "aws-waf-logs-${var.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

# Clients send their JWT as ?token= or a bearer.<jwt> subprotocol (and may send Authorization or
# a cookie): none of it may reach the log, where anyone who reads the log group could replay it.
# WAF redacts a whole query string, never one argument, so the query string goes (correlationId
# with it); the credential headers go by name.
locals {
  # Where a client's token travels, each counted by its own per-token rate rule.
  token_keys = {
    "rate-per-token-query"         = { priority = 2, query_argument = "token", header = null }
    "rate-per-token-subprotocol"   = { priority = 3, query_argument = null, header = "sec-websocket-protocol" }
    "rate-per-token-authorization" = { priority = 4, query_argument = null, header = "authorization" }
  }
  redacted_headers = ["authorization", "sec-websocket-protocol", "cookie", "proxy-authorization", "x-api-key"]
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  provider = aws.us_east_1

  resource_arn            = aws_wafv2_web_acl.this.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]

  redacted_fields {
    query_string {}
  }

  dynamic "redacted_fields" {
    for_each = local.redacted_headers
    content {
      single_header {
        name = redacted_fields.value
      }
    }
  }
}

# The handshake headers API Gateway needs, and every query parameter (token, correlationId).
# Authorization cannot be forwarded with caching disabled; through the edge, send the token
# as ?token= or a bearer.<jwt> subprotocol.
resource "aws_cloudfront_origin_request_policy" "websocket" {
  name    = "${var.name}-websocket"
  comment = "WebSocket handshake to API Gateway"

  headers_config {
    header_behavior = "whitelist"
    headers {
      items = ["Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions", "Origin"]
    }
  }
  query_strings_config {
    query_string_behavior = "all"
  }
  cookies_config {
    cookie_behavior = "none"
  }
}

data "aws_cloudfront_cache_policy" "disabled" {
  name = "Managed-CachingDisabled"
}

data "aws_cloudfront_response_headers_policy" "security" {
  name = "Managed-SecurityHeadersPolicy"
}

resource "aws_cloudfront_distribution" "this" {
  enabled         = true
  comment         = "${var.name}: WebSocket API behind WAF"
  aliases         = var.aliases
  web_acl_id      = aws_wafv2_web_acl.this.arn
  http_version    = "http1.1" # the WebSocket upgrade is HTTP/1.1
  is_ipv6_enabled = true
  price_class     = "PriceClass_100"

  origin {
    origin_id   = "api"
    domain_name = var.origin_domain
    origin_path = "/${var.stage_name}"

    custom_header {
      name  = "X-Origin-Verify"
      value = var.origin_verify_secret
    }

    custom_origin_config {
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
    }
  }

  default_cache_behavior {
    target_origin_id           = "api"
    viewer_protocol_policy     = "https-only"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    cache_policy_id            = data.aws_cloudfront_cache_policy.disabled.id
    origin_request_policy_id   = aws_cloudfront_origin_request_policy.websocket.id
    response_headers_policy_id = data.aws_cloudfront_response_headers_policy.security.id
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = var.acm_certificate_arn == null
    acm_certificate_arn            = var.acm_certificate_arn
    ssl_support_method             = var.acm_certificate_arn == null ? null : "sni-only"
    minimum_protocol_version       = var.acm_certificate_arn == null ? "TLSv1" : "TLSv1.2_2021"
  }

  tags = var.tags
}
