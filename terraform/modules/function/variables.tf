variable "name" {
  description = "Lambda function name (from lambda.manifest.json), e.g. ConnectFunction."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.name))
    error_message = "name must be 1-64 characters of [A-Za-z0-9_-]."
  }
}

variable "name_prefix" {
  description = "Prefix of the function's, role's and log group's names, e.g. ws-connection-dev."
  type        = string
}

variable "svc" {
  description = "The function's `svc` (its EMF Service dimension), e.g. ws-connect."
  type        = string
}

variable "zip_path" {
  description = "Path of the function's zip (one `bootstrap`)."
  type        = string
}

variable "source_code_hash" {
  description = "Base64 SHA-256 of the zip, from the build's checksums.json."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9+/]{43}=$", var.source_code_hash))
    error_message = "source_code_hash must be a base64 SHA-256 (44 characters), as checksums.json gives it."
  }
}

variable "architecture" {
  description = "arm64 or x86_64."
  type        = string
  default     = "arm64"
  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_mb" {
  description = "Memory in MB."
  type        = number
  validation {
    condition     = var.memory_mb >= 128 && var.memory_mb <= 10240
    error_message = "memory_mb must be 128-10240."
  }
}

variable "timeout_s" {
  description = "Timeout in seconds."
  type        = number
  validation {
    condition     = var.timeout_s >= 1 && var.timeout_s <= 900
    error_message = "timeout_s must be 1-900."
  }
}

variable "environment" {
  description = "Environment variables."
  type        = map(string)
  default     = {}
}

variable "policy_statements" {
  description = "The function's permissions beyond its own logs: exact actions on exact resources, each optionally narrowed by IAM conditions ({operator = {key = [values]}}, e.g. dynamodb:LeadingKeys)."
  type = list(object({
    actions    = list(string)
    resources  = list(string)
    conditions = optional(map(map(list(string))))
  }))
  default = []
  validation {
    condition = alltrue([for s in var.policy_statements : !contains(s.resources, "*") && alltrue([
      for a in s.actions : a != "*" && !endswith(a, ":*")
    ])])
    error_message = "policy_statements must name exact actions (no *, no service:*) on exact resources (no *)."
  }
}

variable "log_retention_days" {
  description = "Days the function's logs are kept."
  type        = number
  default     = 30
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, …)."
  }
}

variable "tracing" {
  description = "Turn on X-Ray active tracing."
  type        = bool
  default     = false
}

variable "metrics_namespace" {
  description = "Namespace of the function's EMF metrics: the METRICS_NAMESPACE it runs with (the stack passes it), so the Errors alarm watches where the function writes."
  type        = string
}

variable "alarm_topic_arn" {
  description = "SNS topic for alarms; null: alarms without actions."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
