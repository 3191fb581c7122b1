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

variable "billing_mode" {
  description = "PAY_PER_REQUEST (on demand: while developing, or for spiky traffic) or PROVISIONED (once traffic settles; needs capacity)."
  type        = string
  default     = "PAY_PER_REQUEST"
  validation {
    condition     = contains(["PAY_PER_REQUEST", "PROVISIONED"], var.billing_mode)
    error_message = "billing_mode must be PAY_PER_REQUEST or PROVISIONED."
  }
}

variable "capacity" {
  description = "With PROVISIONED: auto scaling bounds for the table and each index (reads and writes), and the utilization it keeps."
  type = object({
    read_min                   = number
    read_max                   = number
    write_min                  = number
    write_max                  = number
    target_utilization_percent = optional(number, 70)
  })
  default = null
  validation {
    condition = var.capacity == null || try(
      var.capacity.read_min >= 1 && var.capacity.write_min >= 1 &&
      var.capacity.read_min <= var.capacity.read_max && var.capacity.write_min <= var.capacity.write_max &&
      var.capacity.target_utilization_percent >= 20 && var.capacity.target_utilization_percent <= 90,
      false
    )
    error_message = "capacity needs 1 <= read_min <= read_max, 1 <= write_min <= write_max, and target_utilization_percent from 20 to 90."
  }
  validation {
    condition     = (var.billing_mode == "PROVISIONED") == (var.capacity != null)
    error_message = "PROVISIONED needs capacity (the auto scaling bounds); PAY_PER_REQUEST takes none."
  }
}

variable "replica_regions" {
  description = "Regions (besides this one) that get a replica: the table becomes a DynamoDB global table (version 2019.11.21) with its stream on; each region's functions use their own replica. Needs PAY_PER_REQUEST."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for r in var.replica_regions : can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", r))])
    error_message = "replica_regions must be AWS region names such as eu-west-1."
  }
  validation {
    condition     = length(var.replica_regions) == length(distinct(var.replica_regions))
    error_message = "replica_regions must not repeat a region."
  }
  validation {
    condition     = length(var.replica_regions) == 0 || var.billing_mode == "PAY_PER_REQUEST"
    error_message = "replica_regions needs billing_mode PAY_PER_REQUEST (provisioned replicas need their own auto scaling in each region)."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "stream" {
  description = "Turn the table's stream on (NEW_AND_OLD_IMAGES) for a consumer such as the lifecycle events' pipes; a global table has it on anyway."
  type        = bool
  default     = false
}
