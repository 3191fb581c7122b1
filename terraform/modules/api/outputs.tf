output "api_id" {
  description = "The WebSocket API's id."
  value       = aws_apigatewayv2_api.this.id
}

output "execution_arn" {
  description = "arn:aws:execute-api:REGION:ACCOUNT:API_ID."
  value       = aws_apigatewayv2_api.this.execution_arn
}

output "stage_name" {
  description = "The stage."
  value       = aws_apigatewayv2_stage.this.name
}

output "websocket_url" {
  description = "wss://… URL clients connect to (without the edge)."
  value       = aws_apigatewayv2_stage.this.invoke_url
}

output "management_endpoint" {
  description = "https://… Management API endpoint (WS_ENDPOINT of the responder)."
  value       = "https://${aws_apigatewayv2_api.this.id}.execute-api.${data.aws_region.current.name}.amazonaws.com/${aws_apigatewayv2_stage.this.name}"
}

output "origin_domain" {
  description = "The API's own domain (the edge's origin)."
  value       = "${aws_apigatewayv2_api.this.id}.execute-api.${data.aws_region.current.name}.amazonaws.com"
}

output "manage_connections_arn" {
  description = "What the responder posts through: ManageConnections on POST @connections of this stage."
  value       = "${aws_apigatewayv2_api.this.execution_arn}/${aws_apigatewayv2_stage.this.name}/POST/@connections/*"
}

output "check_connections_arn" {
  description = "What the responder asks whether a connection is live through (presence): ManageConnections on GET @connections of this stage."
  value       = "${aws_apigatewayv2_api.this.execution_arn}/${aws_apigatewayv2_stage.this.name}/GET/@connections/*"
}

output "close_connections_arn" {
  description = "What the responder closes connections through: ManageConnections on DELETE @connections of this stage."
  value       = "${aws_apigatewayv2_api.this.execution_arn}/${aws_apigatewayv2_stage.this.name}/DELETE/@connections/*"
}

output "route_arns" {
  description = "Route ARNs the Lambda permissions allow, by route key without its $ (connect, disconnect, …)."
  value       = local.route_arns
}

output "permission_source_arns" {
  description = "source_arn of every Lambda permission (tests read them)."
  value = merge(
    { for k, p in aws_lambda_permission.route : k => p.source_arn },
    { for p in aws_lambda_permission.authorizer : "authorizer" => p.source_arn },
  )
}

output "throttling" {
  description = "The stage's route throttling."
  value = {
    rate_limit  = aws_apigatewayv2_stage.this.default_route_settings[0].throttling_rate_limit
    burst_limit = aws_apigatewayv2_stage.this.default_route_settings[0].throttling_burst_limit
  }
}

output "routes" {
  description = "Route keys on the API, by route key without its $."
  value       = { for k, r in aws_apigatewayv2_route.this : k => r.route_key }
}

output "two_way_routes" {
  description = "Route keys (without their $) whose function's answer goes back to the client."
  value       = sort(keys(aws_apigatewayv2_route_response.this))
}

output "mock_routes" {
  description = "Route keys API Gateway answers itself (MOCK), by route key."
  value       = { for k, r in aws_apigatewayv2_route.mock : k => r.route_key }
}

output "integrations" {
  description = "The function each route invokes (integration URI), by route key without its $."
  value       = { for k, i in aws_apigatewayv2_integration.this : k => i.integration_uri }
}

output "custom_domain" {
  description = "The custom domain, its wss:// URL and the regional target to point DNS at (null without one)."
  value = var.custom_domain == null ? null : {
    domain_name   = aws_apigatewayv2_domain_name.this[0].domain_name
    websocket_url = "wss://${aws_apigatewayv2_domain_name.this[0].domain_name}"
    target        = aws_apigatewayv2_domain_name.this[0].domain_name_configuration[0].target_domain_name
    hosted_zone   = aws_apigatewayv2_domain_name.this[0].domain_name_configuration[0].hosted_zone_id
  }
}
