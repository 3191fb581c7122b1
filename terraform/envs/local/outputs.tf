output "websocket_url" {
  description = "Where clients connect."
  value       = module.stack.websocket_url
}

output "management_endpoint" {
  description = "The Management API endpoint."
  value       = module.stack.management_endpoint
}

output "responder_function_name" {
  description = "The function Step Functions invoke."
  value       = module.stack.responder_function_name
}

output "table_name" {
  description = "The connections table."
  value       = module.stack.table_name
}

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

output "dashboard_name" {
  description = "The stack's CloudWatch dashboard."
  value       = try(module.stack.dashboard.name, null)
}
