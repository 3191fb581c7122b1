variable "name" {
  description = "Dashboard name (the stack's name prefix)."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.name))
    error_message = "name must be 1-255 characters of [A-Za-z0-9_-] (CloudWatch's rule for dashboard names)."
  }
}

variable "region" {
  description = "Region of every metric on the dashboard."
  type        = string
}

variable "emf_metrics" {
  description = "Each service's EMF namespace (its METRICS_NAMESPACE) and counters, by Service dimension (from the manifest): { ws-connect = { namespace = \"ws-connection\", metrics = [\"Connected\", …] } }."
  type        = map(object({ namespace = string, metrics = list(string) }))
}

variable "api_id" {
  description = "The WebSocket API's id."
  type        = string
}

variable "stage_name" {
  description = "The API stage."
  type        = string
}

variable "functions" {
  description = "Lambda function names, by manifest name."
  type        = map(string)
}

variable "log_groups" {
  description = "The functions' log groups (for init durations from their REPORT lines)."
  type        = list(string)
}

variable "table_name" {
  description = "The connections table."
  type        = string
}

variable "tags" {
  description = "Tags for every resource (dashboards take none; kept for a uniform interface)."
  type        = map(string)
  default     = {}
}
