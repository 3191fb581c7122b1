# What only the local root exposes (its apply test and ws-local read them); the outputs every
# environment has are outputs.tf, shared with envs/aws.

output "functions" {
  description = "Per function: Lambda name, role, policy."
  value       = module.stack.functions
}

output "environment" {
  description = "Each function's environment."
  value       = module.stack.environment
}

output "fanout_state_machine_arn" {
  description = "The sample fan-out state machine: start an execution with the responder's event."
  value       = module.stack.fanout_state_machine_arn
}

output "fanout_state_machine_policy_json" {
  description = "The state machine role's only policy."
  value       = module.stack.fanout_state_machine_policy_json
}

output "expiry_sweep" {
  description = "The expiry sweep's schedule, its event and its role's policy."
  value       = module.stack.expiry_sweep
}

output "dashboard_name" {
  description = "The stack's CloudWatch dashboard."
  value       = try(module.stack.dashboard.name, null)
}

output "events" {
  description = "The lifecycle events' bus and pipes (null when events = false)."
  value       = module.stack.events
}
