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
  description = "Apply the sample fan-out state machine too. The AWS provider validates its definition with Step Functions' ValidateStateMachineDefinition, which moto 5.2.5 lacks: set shim_endpoint to scripts/moto_shim.py in front of moto (the apply test does)."
  type        = bool
  default     = false
}

variable "shim_endpoint" {
  description = "Endpoint for Step Functions and Application Auto Scaling; null: aws_endpoint. The apply test points it at scripts/moto_shim.py, which answers the actions moto lacks."
  type        = string
  default     = null
  validation {
    condition     = var.shim_endpoint == null || can(regex("^http://(127\\.0\\.0\\.1|localhost)(:[0-9]+)?$", var.shim_endpoint))
    error_message = "shim_endpoint must be an http:// URL on loopback: this root never talks to real AWS."
  }
}

variable "client_info" {
  description = "full, anonymized or none (see modules/stack)."
  type        = string
  default     = "full"
}

variable "max_connections_per_user" {
  description = "Per-user connection limit; null: none (see modules/stack)."
  type        = number
  default     = null
}

variable "table_billing_mode" {
  description = "PAY_PER_REQUEST or PROVISIONED (see modules/table)."
  type        = string
  default     = "PAY_PER_REQUEST"
}

variable "table_capacity" {
  description = "Auto scaling bounds with PROVISIONED (see modules/table) (read_min, read_max, write_min, write_max, optional target_utilization_percent; modules/table checks them)."
  type        = map(number)
  default     = null
}

variable "events" {
  description = "Lifecycle and presence events (see modules/stack): the table's stream, the pipes, the bus and MembershipFunction; on in the apply test (moto keeps pipes, it does not run them)."
  type        = bool
  default     = false
}
