variable "environment" {
  description = "Environment name, part of every resource name."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9-]{1,16}$", var.environment))
    error_message = "environment must be 1-16 characters of a-z, 0-9 and -."
  }
}

variable "primary_region" {
  description = "The region that makes the global table (and runs the expiry sweep)."
  type        = string
  default     = "us-east-1"
}

variable "secondary_region" {
  description = "The region with a replica and its own API and functions."
  type        = string
  default     = "eu-west-1"
  validation {
    condition     = var.secondary_region != var.primary_region
    error_message = "secondary_region must differ from primary_region."
  }
}

variable "artifacts_dir" {
  description = "The build's output (scripts/build-lambda.sh --mode bundle): dist/lambdas/ws-connection."
  type        = string
  default     = "../../../dist/lambdas/ws-connection"
}

variable "authorizer" {
  description = "The JWT authorizer's settings (as in modules/stack), the same in both regions."
  type = object({
    issuer     = string
    audiences  = list(string)
    algorithms = optional(list(string), ["RS256", "ES256"])
    jwks_url   = optional(string)
    token_use  = optional(string)
  })
  default = null
}

variable "primary_domain" {
  description = "Optional custom domain for the primary region's API (domain_name, regional certificate_arn)."
  type = object({
    domain_name     = string
    certificate_arn = string
  })
  default = null
}

variable "secondary_domain" {
  description = "Optional custom domain for the secondary region's API."
  type = object({
    domain_name     = string
    certificate_arn = string
  })
  default = null
}

variable "deletion_protection" {
  description = "Refuse to delete the table."
  type        = bool
  default     = true
}
