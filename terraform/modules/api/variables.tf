variable "name" {
  description = "API name, e.g. ws-connection-dev."
  type        = string
}

variable "stage_name" {
  description = "Stage name; part of the endpoint and of every route ARN."
  type        = string
  default     = "prod"
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,128}$", var.stage_name))
    error_message = "stage_name must be 1-128 characters of [A-Za-z0-9_-]."
  }
}

variable "route_selection_expression" {
  description = "Where a message's route key is, e.g. $request.body.action (the stack passes the manifest's)."
  type        = string
  default     = "$request.body.action"
  validation {
    condition     = can(regex("^\\$request\\.body\\.[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$", var.route_selection_expression))
    error_message = "route_selection_expression must be $request.body.<field>[.<field>…]."
  }
}

variable "routes" {
  description = "Each route key ($connect, $disconnect, $default or an action) and the function it invokes: name, invoke ARN, and two_way when the function's answer goes back to the client (the stack builds it from the manifest's route triggers)."
  type        = map(object({ name = string, invoke_arn = string, two_way = optional(bool, false) }))
  validation {
    condition     = contains(keys(var.routes), "$connect") && alltrue([for k in keys(var.routes) : can(regex("^(\\$connect|\\$disconnect|\\$default|[A-Za-z0-9_.-]{1,128})$", k))])
    error_message = "routes needs $connect, and every key must be $connect, $disconnect, $default or an action name of [A-Za-z0-9_.-]."
  }
}

variable "authorizer_function" {
  description = "The $connect REQUEST authorizer (name and invoke ARN); null: $connect is open."
  type        = object({ name = string, invoke_arn = string })
  default     = null
}

variable "authorizer_identity_sources" {
  description = "Identity sources of the authorizer; empty: every request reaches it (no caching)."
  type        = list(string)
  default     = []
}

variable "throttling_rate_limit" {
  description = "Steady-state requests per second for the stage's routes."
  type        = number
  default     = 500
  validation {
    condition     = coalesce(var.throttling_rate_limit, 0) > 0 && coalesce(var.throttling_rate_limit, 0) <= 10000
    error_message = "throttling_rate_limit must be above 0 (0 blocks every request) and at most the account's 10,000 rps."
  }
}

variable "throttling_burst_limit" {
  description = "Burst requests for the stage's routes."
  type        = number
  default     = 1000
  validation {
    condition     = coalesce(var.throttling_burst_limit, 0) > 0 && coalesce(var.throttling_burst_limit, 0) <= 5000
    error_message = "throttling_burst_limit must be above 0 and at most the account's 5,000 burst."
  }
}

variable "log_retention_days" {
  description = "Days the access logs are kept."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "custom_domain" {
  description = "Optional custom domain for clients (wss://DOMAIN): its name and a regional ACM certificate ARN in this API's region. Point DNS at the custom_domain output's target (the edge, when enabled, uses it as its origin)."
  type = object({
    domain_name     = string
    certificate_arn = string
  })
  default = null
  validation {
    condition     = var.custom_domain == null || try(can(regex("^([a-z0-9-]+\\.)+[a-z]{2,}$", var.custom_domain.domain_name)) && can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/", var.custom_domain.certificate_arn)), false)
    error_message = "custom_domain needs a lower-case domain name and an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)."
  }
}

variable "mock_routes" {
  description = "Routes API Gateway answers itself, with no function: route key => the answer's response template (e.g. the heartbeat's ping => {\"type\":\"pong\",\"at\":$context.requestTimeEpoch}). The manifest's mock_routes."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for k in keys(var.mock_routes) : can(regex("^[A-Za-z0-9_.-]{1,128}$", k))])
    error_message = "Every mock route key must be an action name of [A-Za-z0-9_.-] (not $connect, $disconnect or $default)."
  }
}
