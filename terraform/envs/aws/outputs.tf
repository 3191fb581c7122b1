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
