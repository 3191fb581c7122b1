output "websocket_urls" {
  description = "Each region's WebSocket URL (a latency- or geo-routed DNS name in front of both is the usual next step)."
  value = {
    (var.primary_region)   = module.primary.websocket_url
    (var.secondary_region) = module.secondary.websocket_url
  }
}

output "table_name" {
  description = "The global table (one name in every region)."
  value       = module.primary.table_name
}

output "responders" {
  description = "Each region's WebSocketResponder: invoke either one, a fan-out reaches both regions' clients."
  value = {
    (var.primary_region)   = module.primary.responder_function_name
    (var.secondary_region) = module.secondary.responder_function_name
  }
}
