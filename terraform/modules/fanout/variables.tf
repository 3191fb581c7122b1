variable "name" {
  description = "State machine name (and its role's name prefix), e.g. ws-connection-dev-fanout."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.name))
    error_message = "name must be 1-64 characters of letters, digits, '-' and '_' (Step Functions' rule)."
  }
}

variable "responder_arn" {
  description = "ARN of WebSocketResponder: the only function the state machine may invoke."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]+$", var.responder_arn))
    error_message = "responder_arn must be an unqualified Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)."
  }
}

variable "max_retries" {
  description = "How many times a statusCode 500 is retried (with backoff 1, 2, 4, 8, 16 s) before the execution fails."
  type        = number
  default     = 5
  validation {
    condition     = var.max_retries >= 0 && var.max_retries <= 5 && floor(var.max_retries) == var.max_retries
    error_message = "max_retries must be a whole number from 0 to 5."
  }
}

variable "segments" {
  description = "Segments a fan-out is split into when its input names none (1-100): each is one branch of a Map, all at once, each with its own cursor. docs/runbook.md has how to choose it."
  type        = number
  default     = 1
  validation {
    condition     = var.segments >= 1 && var.segments <= 100 && floor(var.segments) == var.segments
    error_message = "segments must be a whole number from 1 to 100."
  }
}

variable "tags" {
  description = "Tags for the state machine and its role."
  type        = map(string)
  default     = {}
}
