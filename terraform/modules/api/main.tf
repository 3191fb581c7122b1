resource "aws_apigatewayv2_api" "this" {
  name                       = var.name
  protocol_type              = "WEBSOCKET"
  route_selection_expression = var.route_selection_expression
  tags                       = var.tags
}

resource "aws_apigatewayv2_authorizer" "this" {
  count = var.authorizer_function == null ? 0 : 1

  api_id           = aws_apigatewayv2_api.this.id
  name             = "${var.name}-connect"
  authorizer_type  = "REQUEST"
  authorizer_uri   = var.authorizer_function.invoke_arn
  identity_sources = var.authorizer_identity_sources
}

locals {
  # Keyed by the route key without its `$` (statement ids and outputs cannot start with one).
  routes = { for key, function in var.routes : trimprefix(key, "$") => { key = key, function = function } }
  # arn:aws:execute-api:REGION:ACCOUNT:API_ID/STAGE/ROUTE: the only thing each permission allows.
  route_arns = { for k, r in local.routes : k => "${aws_apigatewayv2_api.this.execution_arn}/${var.stage_name}/${r.key}" }
}

resource "aws_apigatewayv2_integration" "this" {
  for_each = local.routes

  api_id                    = aws_apigatewayv2_api.this.id
  integration_type          = "AWS_PROXY"
  integration_method        = "POST"
  integration_uri           = each.value.function.invoke_arn
  content_handling_strategy = "CONVERT_TO_TEXT"
}

resource "aws_apigatewayv2_route" "this" {
  for_each = local.routes

  api_id    = aws_apigatewayv2_api.this.id
  route_key = each.value.key
  target    = "integrations/${aws_apigatewayv2_integration.this[each.key].id}"
  # API Gateway runs an authorizer on $connect only.
  authorization_type = each.value.key == "$connect" && var.authorizer_function != null ? "CUSTOM" : "NONE"
  authorizer_id      = each.value.key == "$connect" && var.authorizer_function != null ? aws_apigatewayv2_authorizer.this[0].id : null
  # A two-way route: the function's answer goes back to the client on the same socket.
  route_response_selection_expression = each.value.function.two_way ? "$default" : null
}

resource "aws_apigatewayv2_route_response" "this" {
  for_each = { for k, r in local.routes : k => r if r.function.two_way }

  api_id             = aws_apigatewayv2_api.this.id
  route_id           = aws_apigatewayv2_route.this[each.key].id
  route_response_key = "$default"
}

# Routes API Gateway answers itself (the client's heartbeat): a MOCK integration whose response
# template is the answer. No function runs, nothing is billed but the message.
resource "aws_apigatewayv2_integration" "mock" {
  for_each = var.mock_routes

  api_id                        = aws_apigatewayv2_api.this.id
  integration_type              = "MOCK"
  template_selection_expression = "\\$default"
  request_templates             = { "$default" = jsonencode({ statusCode = 200 }) }
}

resource "aws_apigatewayv2_integration_response" "mock" {
  for_each = var.mock_routes

  api_id                        = aws_apigatewayv2_api.this.id
  integration_id                = aws_apigatewayv2_integration.mock[each.key].id
  integration_response_key      = "$default"
  template_selection_expression = "\\$default"
  response_templates            = { "$default" = each.value }
}

resource "aws_apigatewayv2_route" "mock" {
  for_each = var.mock_routes

  api_id                              = aws_apigatewayv2_api.this.id
  route_key                           = each.key
  target                              = "integrations/${aws_apigatewayv2_integration.mock[each.key].id}"
  route_response_selection_expression = "$default"
}

resource "aws_apigatewayv2_route_response" "mock" {
  for_each = var.mock_routes

  api_id             = aws_apigatewayv2_api.this.id
  route_id           = aws_apigatewayv2_route.mock[each.key].id
  route_response_key = "$default"
}

resource "aws_lambda_permission" "route" {
  for_each = local.routes

  statement_id  = "AllowApiGateway-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = each.value.function.name
  principal     = "apigateway.amazonaws.com"
  source_arn    = local.route_arns[each.key]
}

resource "aws_lambda_permission" "authorizer" {
  count = var.authorizer_function == null ? 0 : 1

  statement_id  = "AllowApiGatewayAuthorizer"
  action        = "lambda:InvokeFunction"
  function_name = var.authorizer_function.name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/authorizers/${aws_apigatewayv2_authorizer.this[0].id}"
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${var.name}/${var.stage_name}/access"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_apigatewayv2_stage" "this" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = var.stage_name
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      connectionId       = "$context.connectionId"
      routeKey           = "$context.routeKey"
      eventType          = "$context.eventType"
      status             = "$context.status"
      requestTime        = "$context.requestTimeEpoch"
      errorMessage       = "$context.error.message"
      integrationError   = "$context.integration.error"
      integrationStatus  = "$context.integration.status"
      authorizerError    = "$context.authorizer.error"
      authorizerStatus   = "$context.authorizer.status"
      integrationLatency = "$context.integration.latency"
    })
  }

  tags       = var.tags
  depends_on = [aws_apigatewayv2_route.this, aws_apigatewayv2_route.mock]
}

data "aws_region" "current" {}

# An optional custom domain (wss://ws.example.com) for clients. The Management API never answers
# on a custom domain: the responder keeps posting through the API's own execute-api endpoint (each
# record keeps its API id, stage and region), so only clients use this name.
resource "aws_apigatewayv2_domain_name" "this" {
  count       = var.custom_domain == null ? 0 : 1
  domain_name = var.custom_domain.domain_name

  domain_name_configuration {
    certificate_arn = var.custom_domain.certificate_arn
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }

  tags = var.tags
}

resource "aws_apigatewayv2_api_mapping" "this" {
  count       = var.custom_domain == null ? 0 : 1
  api_id      = aws_apigatewayv2_api.this.id
  domain_name = aws_apigatewayv2_domain_name.this[0].id
  stage       = aws_apigatewayv2_stage.this.id
}
