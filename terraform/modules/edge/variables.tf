variable "name" {
  description = "Name of the web ACL, distribution comment and log group suffix."
  type        = string
}

variable "origin_domain" {
  description = "The WebSocket API's domain, {api_id}.execute-api.{region}.amazonaws.com."
  type        = string
}

variable "stage_name" {
  description = "The API stage; CloudFront prefixes it to the path (clients connect to wss://{distribution}/)."
  type        = string
}

variable "origin_verify_secret" {
  description = "Secret CloudFront sends as X-Origin-Verify; ConnectFunction refuses $connect without it."
  type        = string
  sensitive   = true
  validation {
    condition     = length(coalesce(var.origin_verify_secret, "")) >= var.origin_verify_secret_min_length
    error_message = "origin_verify_secret is too short for ConnectFunction (see origin_verify_secret_min_length): use e.g. openssl rand -hex 32."
  }
}

variable "origin_verify_secret_min_length" {
  description = "The shortest secret ConnectFunction accepts: the manifest's min_length for ORIGIN_VERIFY_SECRET (the stack passes it)."
  type        = number
}

variable "rate_limit_per_5min" {
  description = "Requests one IP may make in 5 minutes before WAF blocks it."
  type        = number
  default     = 1000
  validation {
    condition     = var.rate_limit_per_5min >= 100 && var.rate_limit_per_5min <= 2000000000
    error_message = "rate_limit_per_5min must be 100-2,000,000,000 (WAF's bounds)."
  }
}

variable "rate_limit_per_token_5min" {
  description = "Requests carrying one token value (?token=, the subprotocol or Authorization) allowed in 5 minutes, from any number of IPs; null: no per-token rule."
  type        = number
  default     = null
  validation {
    condition     = var.rate_limit_per_token_5min == null || try(var.rate_limit_per_token_5min >= 10 && var.rate_limit_per_token_5min <= 2000000000, false)
    error_message = "rate_limit_per_token_5min must be null (off) or 10-2,000,000,000 (WAF's bounds)."
  }
}

variable "block_anonymous_ips" {
  description = "Block (not just count) requests from VPNs, Tor and hosting providers."
  type        = bool
  default     = false
}

variable "acm_certificate_arn" {
  description = "us-east-1 ACM certificate for aliases; null: the cloudfront.net certificate."
  type        = string
  default     = null
}

variable "aliases" {
  description = "Custom domain names (need acm_certificate_arn)."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Days WAF logs are kept."
  type        = number
  default     = 90
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
