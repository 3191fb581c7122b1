variable "name" {
  description = "Name of the pipes (and their role's prefix, and the bus when this module makes one), e.g. ws-connection-dev."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,48}$", var.name))
    error_message = "name must be 1-48 characters of letters, digits, '-' and '_' (a pipe's name adds a suffix within EventBridge Pipes' 64)."
  }
}

variable "table_stream_arn" {
  description = "The connections table's stream (NEW_AND_OLD_IMAGES): the pipes' source."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/[^/]+/stream/.+$", var.table_stream_arn))
    error_message = "table_stream_arn must be a DynamoDB stream ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL)."
  }
}

variable "bus_name" {
  description = "The EventBridge bus the events go to: null makes one named after name; \"default\" is the account's default bus; any other name is an existing bus of this account and region."
  type        = string
  default     = null
}

variable "presence" {
  description = "The presence pipe: function_arn is the membership function (MembershipFunction), its enrichment; null: no presence events. An object, so that whether there is one is known before the function exists."
  type = object({
    function_arn = string
  })
  default = null
  validation {
    condition     = var.presence == null || can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]+$", var.presence.function_arn))
    error_message = "presence.function_arn must be a Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)."
  }
}

variable "source_name" {
  description = "The events' source."
  type        = string
  default     = "ws-connection"
}

variable "tags" {
  description = "Tags for the bus, the pipes and their role."
  type        = map(string)
  default     = {}
}
