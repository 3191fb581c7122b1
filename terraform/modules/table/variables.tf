variable "name" {
  description = "Table name."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{3,255}$", var.name))
    error_message = "name must be 3-255 characters of [A-Za-z0-9_.-] (DynamoDB's rule)."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the table (on in prod)."
  type        = bool
  default     = false
}

variable "point_in_time_recovery" {
  description = "Continuous backups for 35 days."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
