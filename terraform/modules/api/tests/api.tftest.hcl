mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  name = "ws-connection-test"
  routes = {
    "$connect"    = { name = "connect", invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:connect/invocations" }
    "$disconnect" = { name = "disconnect", invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:disconnect/invocations" }
  }
}

run "routes_stage_and_logs" {
  command = apply

  assert {
    condition     = aws_apigatewayv2_api.this.protocol_type == "WEBSOCKET" && aws_apigatewayv2_api.this.route_selection_expression == "$request.body.action"
    error_message = "A WebSocket API with a route selection expression."
  }

  assert {
    condition     = toset([for r in aws_apigatewayv2_route.this : r.route_key]) == toset(["$connect", "$disconnect"])
    error_message = "Routes $connect and $disconnect."
  }

  assert {
    condition     = aws_apigatewayv2_route.this["connect"].authorization_type == "NONE"
    error_message = "Without an authorizer function, $connect is open."
  }

  assert {
    condition = alltrue([for key in ["requestId", "connectionId", "routeKey", "eventType", "status", "errorMessage", "integrationError", "authorizerError"] :
    contains(keys(jsondecode(one(aws_apigatewayv2_stage.this.access_log_settings).format)), key)])
    error_message = "Access logs must carry the fields operators need."
  }

  assert {
    condition     = output.manage_connections_arn == "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/@connections/*"
    error_message = "ManageConnections scope."
  }
}

run "an_authorizer_guards_connect" {
  command = apply

  variables {
    authorizer_function = { name = "authorizer", invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:authorizer/invocations" }
  }

  assert {
    condition     = aws_apigatewayv2_route.this["connect"].authorization_type == "CUSTOM" && aws_apigatewayv2_route.this["disconnect"].authorization_type == "NONE"
    error_message = "Only $connect takes an authorizer (API Gateway allows none elsewhere)."
  }

  assert {
    condition     = aws_apigatewayv2_authorizer.this[0].authorizer_type == "REQUEST"
    error_message = "WebSocket APIs take REQUEST authorizers."
  }
}

run "zero_throttling_is_refused" {
  command = plan

  variables {
    throttling_rate_limit  = 0
    throttling_burst_limit = 0
  }

  expect_failures = [var.throttling_rate_limit, var.throttling_burst_limit]
}

run "null_throttling_is_refused" {
  command = plan

  variables {
    throttling_rate_limit = null
  }

  expect_failures = [var.throttling_rate_limit]
}

run "throttling_over_the_account_limit_is_refused" {
  command = plan

  variables {
    throttling_rate_limit = 20000
  }

  expect_failures = [var.throttling_rate_limit]
}

run "a_bad_stage_name_is_refused" {
  command = plan

  variables {
    stage_name = "prod/v1"
  }

  expect_failures = [var.stage_name]
}

run "the_route_selection_expression_is_the_manifests" {
  command = plan
  variables {
    route_selection_expression = "$request.body.meta.kind"
  }

  assert {
    condition     = aws_apigatewayv2_api.this.route_selection_expression == "$request.body.meta.kind"
    error_message = "The API selects routes where the manifest says."
  }
}

run "a_route_selection_expression_outside_the_body_is_refused" {
  command = plan
  variables {
    route_selection_expression = "$request.header.x"
  }
  expect_failures = [var.route_selection_expression]
}
