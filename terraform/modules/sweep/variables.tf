variable "name" {
  description = "Schedule name (and its role's name prefix), e.g. ws-connection-dev-expiry-sweep."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,64}$", var.name))
    error_message = "name must be 1-64 characters of letters, digits, '.', '-' and '_' (EventBridge Scheduler's rule)."
  }
}

variable "responder_arn" {
  description = "ARN of WebSocketResponder: the only function the schedule may invoke."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]+$", var.responder_arn))
    error_message = "responder_arn must be an unqualified Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)."
  }
}

variable "every_minutes" {
  description = "How often the sweep runs: a connection outlives its token by at most this long (plus the sweep's own run)."
  type        = number
  default     = 1
  validation {
    condition     = var.every_minutes >= 1 && var.every_minutes <= 60 && floor(var.every_minutes) == var.every_minutes
    error_message = "every_minutes must be a whole number from 1 to 60."
  }
}

variable "enabled" {
  description = "ENABLED runs the schedule; false keeps it, DISABLED (no sweep, connections live until they drop)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for the role (EventBridge Scheduler schedules take no tags)."
  type        = map(string)
  default     = {}
}
