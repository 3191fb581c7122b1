variable "aws_endpoint" {
  description = "The emulator's endpoint, e.g. http://127.0.0.1:5000 (scripts start moto on a free port)."
  type        = string
  validation {
    condition     = can(regex("^http://(127\\.0\\.0\\.1|localhost)(:[0-9]+)?$", var.aws_endpoint))
    error_message = "aws_endpoint must be an http:// URL on loopback: this root never talks to real AWS."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "ws-connection-local"
}

variable "artifacts_dir" {
  description = "The build's dist/lambdas/ws-connection."
  type        = string
  default     = "../../../dist/lambdas/ws-connection"
}

variable "authorizer" {
  description = "JWT settings (the local token issuer's); null: $connect without authorizer."
  type = object({
    issuer     = string
    audiences  = list(string)
    jwks_url   = optional(string)
    token_use  = optional(string)
    algorithms = optional(list(string), ["RS256", "ES256"])
  })
  default = null
}

variable "fanout_state_machine" {
  description = "Apply the sample fan-out state machine too (needs an emulator that implements Step Functions' ValidateStateMachineDefinition; moto 5.2.5 does not)."
  type        = bool
  default     = false
}
