variable "github_repository" {
  description = "owner/name of the GitHub repository whose workflows deploy."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}

variable "environments" {
  description = "GitHub environments, one deploy role each. They must match the workflow's environment names."
  type        = list(string)
  default     = ["dev", "prod"]
  validation {
    condition     = length(var.environments) > 0 && alltrue([for e in var.environments : can(regex("^[a-z][a-z0-9-]{0,20}$", e))])
    error_message = "environments must be short lowercase names, e.g. dev, prod."
  }
}

variable "region" {
  description = "Region of the stacks and the state bucket."
  type        = string
  default     = "us-east-1"
}

variable "service" {
  description = "The service's name; every resource a deploy may touch starts with <service>-<environment>."
  type        = string
  default     = "ws-connection"
}

variable "create_oidc_provider" {
  description = "Create GitHub's OIDC provider (false when the account already has one)."
  type        = bool
  default     = true
}
