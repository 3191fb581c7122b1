variable "environment" {
  description = "dev or prod: names every resource and matches the GitHub environment."
  type        = string
  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "environment must be dev or prod."
  }
}

variable "region" {
  description = "AWS region of the stack."
  type        = string
}

variable "artifacts_dir" {
  description = "The build's dist/lambdas/ws-connection (zips and checksums.json)."
  type        = string
  default     = "../../../dist/lambdas/ws-connection"
}

variable "authorizer" {
  description = "JWT issuer settings for ConnectAuthorizer."
  type = object({
    issuer     = string
    audiences  = list(string)
    jwks_url   = optional(string)
    token_use  = optional(string)
    algorithms = optional(list(string), ["RS256", "ES256"])
  })
}

variable "edge" {
  description = "CloudFront + WAF in front of the API (needs origin_verify_secret)."
  type        = bool
  default     = false
}

variable "origin_verify_secret" {
  description = "Edge secret, from the environment's CI secret as TF_VAR_origin_verify_secret."
  type        = string
  default     = null
  sensitive   = true
}

variable "waf_rate_limit_per_5min" {
  description = "Requests per IP per 5 minutes before WAF blocks."
  type        = number
  default     = 1000
}

variable "waf_rate_limit_per_token_5min" {
  description = "Requests carrying one token per 5 minutes, from any IPs, before WAF blocks; null: no per-token rule."
  type        = number
  default     = 300
}

variable "table_billing_mode" {
  description = "PAY_PER_REQUEST (default) or PROVISIONED with table_capacity."
  type        = string
  default     = "PAY_PER_REQUEST"
}

variable "table_capacity" {
  description = "With PROVISIONED: auto scaling bounds for the table and both indexes (read_min, read_max, write_min, write_max, optional target_utilization_percent; modules/table checks them)."
  type        = map(number)
  default     = null
}

variable "client_info" {
  description = "full, anonymized or none: how much of the client's IP and user agent is stored."
  type        = string
  default     = "full"
}

variable "max_connections_per_user" {
  description = "CONNECTED connections one user may hold (429 past it); null: no limit."
  type        = number
  default     = null
}

variable "deletion_protection" {
  description = "Protect the table from deletion."
  type        = bool
  default     = false
}

variable "throttling_rate_limit" {
  description = "Route requests per second."
  type        = number
  default     = 500
}

variable "throttling_burst_limit" {
  description = "Route burst."
  type        = number
  default     = 1000
}

variable "log_retention_days" {
  description = "Days logs are kept."
  type        = number
  default     = 30
}

variable "alarm_topic_arn" {
  description = "SNS topic for alarms."
  type        = string
  default     = null
}

variable "tracing" {
  description = "X-Ray tracing."
  type        = bool
  default     = false
}
