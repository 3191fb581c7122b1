variable "name_prefix" {
  description = "Prefix of every resource name, e.g. ws-connection-dev."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,40}$", var.name_prefix))
    error_message = "name_prefix must be 3-41 characters of [a-z0-9-], starting with a letter."
  }
}

variable "manifest_path" {
  description = "Path of lambda.manifest.json, the list of functions."
  type        = string
}

variable "artifacts_dir" {
  description = "The build's output for the service: <dir>/<Function>/<Function>.zip and <dir>/checksums.json."
  type        = string
}

variable "stage_name" {
  description = "API stage."
  type        = string
  default     = "prod"
}

variable "authorizer" {
  description = "JWT settings for ConnectAuthorizer; null: $connect has no authorizer (development only)."
  type = object({
    issuer     = string
    audiences  = list(string)
    jwks_url   = optional(string)
    token_use  = optional(string)
    algorithms = optional(list(string), ["RS256", "ES256"])
  })
  default = null
  validation {
    condition     = var.authorizer == null || (startswith(try(var.authorizer.issuer, ""), "https://") && length(try(var.authorizer.audiences, [])) > 0)
    error_message = "authorizer.issuer must be an https:// URL and authorizer.audiences must name at least one client id."
  }
  validation {
    condition     = var.authorizer == null || alltrue([for a in try(var.authorizer.algorithms, []) : contains(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"], a)])
    error_message = "authorizer.algorithms must be asymmetric (RS*, PS*, ES256, ES384); HS* and none are never accepted."
  }
}

variable "fanout" {
  description = "Let WebSocketResponder fan out to conversations/users (gives it the table, Query on the indexes and UpdateItem)."
  type        = bool
  default     = true
}

variable "events" {
  description = "Lifecycle events: turn the table's stream on and pipe each connection's opening and closing to an EventBridge bus, and users joining and leaving conversations through the membership function (modules/events; docs/design.md §12). Needs this stack's own table (not use_table)."
  type        = bool
  default     = false
  validation {
    condition     = !var.events || var.use_table == null
    error_message = "events needs the table this stack makes: set it on the stack of the region that makes the global table."
  }
}

variable "events_bus_name" {
  description = "The bus for the lifecycle events: null makes one named after name_prefix; \"default\" is the account's default bus; else an existing bus's name."
  type        = string
  default     = null
}

variable "broadcast" {
  description = "true: ConnectFunction writes each live connection's entry in GSI4 (one index write per connect and per close) and WebSocketResponder answers {\"all\": true} (broadcast). false: neither; a broadcast is a 400 (docs/design.md §13)."
  type        = bool
  default     = true
}

variable "fanout_segments" {
  description = "Segments the sample state machine splits a fan-out into when its input names none (1-100); see docs/runbook.md."
  type        = number
  default     = 1
}

variable "fanout_state_machine" {
  description = "Also deploy the sample Step Functions state machine (modules/fanout) that invokes WebSocketResponder and continues each fan-out with its cursor until done."
  type        = bool
  default     = false
  validation {
    condition     = !var.fanout_state_machine || var.fanout
    error_message = "fanout_state_machine needs fanout = true: without it the responder cannot fan out."
  }
}

variable "replica_regions" {
  description = "Make the table a global table with a replica in each of these regions (deploy this stack there too, with use_table). Needs table_billing_mode PAY_PER_REQUEST."
  type        = list(string)
  default     = []
}

variable "use_table" {
  description = "Do not make a table: use this region's replica of the global table another region's stack made (its name). Null: this stack makes its table."
  type        = string
  default     = null
  validation {
    condition     = var.use_table == null || can(regex("^[A-Za-z0-9_.-]{3,255}$", var.use_table))
    error_message = "use_table must be a DynamoDB table name (3-255 characters of [A-Za-z0-9_.-])."
  }
}

variable "peer_regions" {
  description = "The other regions whose WebSocket APIs (same stage name) hold connections of the same table: the responder may ManageConnections on their APIs, and posts each connection through its own region's API."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for r in var.peer_regions : can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", r))])
    error_message = "peer_regions must be AWS region names such as eu-west-1."
  }
}

variable "custom_domain" {
  description = "Optional custom domain for clients (modules/api): domain_name and a regional ACM certificate_arn. Posts still go through the API's own endpoint."
  type = object({
    domain_name     = string
    certificate_arn = string
  })
  default = null
}

variable "expiry_sweep" {
  description = "Close every connection whose token has expired, on a schedule (modules/sweep: EventBridge Scheduler invokes WebSocketResponder with {\"action\":\"disconnect\",\"expired\":true}). Needs fanout (the responder reads the table)."
  type        = bool
  default     = true
}

variable "expiry_sweep_every_minutes" {
  description = "The sweep's period in minutes: how long a connection may outlive its token, at most."
  type        = number
  default     = 1
}

variable "mark_gone" {
  description = "WebSocketResponder marks a single target's record GONE on 410 (needs fanout, which grants UpdateItem)."
  type        = bool
  default     = true
  validation {
    condition     = !var.mark_gone || var.fanout
    error_message = "mark_gone needs fanout = true (the responder gets the table and UpdateItem with it)."
  }
}

variable "table_billing_mode" {
  description = "The table's billing: PAY_PER_REQUEST (while developing, or spiky traffic) or PROVISIONED (once traffic settles; needs table_capacity)."
  type        = string
  default     = "PAY_PER_REQUEST"
}

variable "table_capacity" {
  description = "With PROVISIONED: auto scaling bounds for the table and both indexes (read_min, read_max, write_min, write_max, optional target_utilization_percent; modules/table checks them)."
  type        = map(number)
  default     = null
}

variable "dashboard" {
  description = "A CloudWatch dashboard for the stack (EMF counters, API Gateway, Lambda, DynamoDB)."
  type        = bool
  default     = true
}

variable "client_info" {
  description = "How much of the client's IP and user agent ConnectFunction stores: full, anonymized (IPv4 /24, IPv6 /48, user agent as product names) or none."
  type        = string
  default     = "full"
  validation {
    condition     = contains(["full", "anonymized", "none"], var.client_info)
    error_message = "client_info must be full, anonymized or none."
  }
}

variable "max_connections_per_user" {
  description = "CONNECTED connections one user may hold; past it $connect is a 429. null: no limit (and no dynamodb:Query for ConnectFunction)."
  type        = number
  default     = null
  validation {
    condition     = var.max_connections_per_user == null || try(var.max_connections_per_user >= 1 && var.max_connections_per_user <= 10000 && floor(var.max_connections_per_user) == var.max_connections_per_user, false)
    error_message = "max_connections_per_user must be null (no limit) or a whole number from 1 to 10000."
  }
}

variable "edge" {
  description = "CloudFront + WAF in front of the API (needs origin_verify_secret); null: clients connect to the API directly."
  type = object({
    rate_limit_per_5min       = optional(number, 1000)
    rate_limit_per_token_5min = optional(number)
    acm_certificate_arn       = optional(string)
    aliases                   = optional(list(string), [])
  })
  default = null
}

variable "origin_verify_secret" {
  description = "Secret CloudFront adds as X-Origin-Verify and ConnectFunction checks; required with edge."
  type        = string
  default     = null
  sensitive   = true
}

variable "throttling_rate_limit" {
  description = "Steady-state requests per second for the API's routes."
  type        = number
  default     = 500
}

variable "throttling_burst_limit" {
  description = "Burst requests for the API's routes."
  type        = number
  default     = 1000
}

variable "log_retention_days" {
  description = "Days function and access logs are kept."
  type        = number
  default     = 30
}

variable "log_level" {
  description = "LOG_LEVEL of every function."
  type        = string
  default     = "INFO"
  validation {
    condition     = contains(["DEBUG", "INFO", "WARN", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARN or ERROR."
  }
}

variable "tracing" {
  description = "X-Ray active tracing on every function."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Protect the table from deletion (prod)."
  type        = bool
  default     = false
}

variable "alarm_topic_arn" {
  description = "SNS topic ARN for the alarms; null: alarms without actions."
  type        = string
  default     = null
  validation {
    condition     = var.alarm_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.alarm_topic_arn))
    error_message = "alarm_topic_arn must be an SNS topic ARN."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
