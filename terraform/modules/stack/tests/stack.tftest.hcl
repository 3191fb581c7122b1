# The whole stack under a mocked AWS provider: IAM exactly as docs/design.md §1, permissions scoped to
# exact route ARNs, the edge wiring, and every validated variable refusing bad input.

mock_provider "aws" {
  source = "../../tests/mocks"
}

mock_provider "aws" {
  alias  = "us_east_1"
  source = "../../tests/mocks"
}

variables {
  name_prefix   = "ws-connection-test"
  manifest_path = "../../../lambda.manifest.json"
  artifacts_dir = "./tests/fixtures/dist"
  authorizer = {
    issuer    = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TEST"
    audiences = ["client-app"]
  }
}

run "every_role_has_exactly_its_actions_on_exact_arns" {
  command = apply

  assert {
    condition = alltrue([for name, f in output.functions : alltrue([
      for s in jsondecode(f.policy_json).Statement : alltrue([for a in s.Action : a != "*" && !endswith(a, ":*")])
    ])])
    error_message = "A policy grants a wildcard action."
  }

  assert {
    condition = alltrue([for name, f in output.functions : alltrue([
      for s in jsondecode(f.policy_json).Statement : !contains(s.Resource, "*")
    ])])
    error_message = "A policy grants on every resource (*)."
  }

  assert {
    condition = jsonencode({
      for name, f in output.functions : name => sort(distinct(flatten([
        for s in jsondecode(f.policy_json).Statement : s.Action
      ])))
      }) == jsonencode({
      ConnectAuthorizer  = ["logs:CreateLogStream", "logs:PutLogEvents"]
      ConnectFunction    = ["dynamodb:PutItem", "logs:CreateLogStream", "logs:PutLogEvents"]
      WebSocketResponder = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem", "execute-api:ManageConnections", "logs:CreateLogStream", "logs:PutLogEvents"]
      WebSocketRoutes    = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem", "execute-api:ManageConnections", "logs:CreateLogStream", "logs:PutLogEvents"]
      disconnectWS       = ["dynamodb:UpdateItem", "logs:CreateLogStream", "logs:PutLogEvents"]
    })
    error_message = "A role's action set differs from docs/design.md (Functions)."
  }

  assert {
    condition = jsonencode([for s in jsondecode(output.functions.ConnectFunction.policy_json).Statement : s.Resource if contains(s.Action, "dynamodb:PutItem")]) == jsonencode([[
      "arn:aws:dynamodb:us-east-1:123456789012:table/ws-connection-test-connections"
    ]])
    error_message = "ConnectFunction may PutItem only on the table."
  }

  assert {
    condition = jsonencode([for s in jsondecode(output.functions.WebSocketResponder.policy_json).Statement : s.Resource if contains(s.Action, "dynamodb:Query")]) == jsonencode([[
      "arn:aws:dynamodb:us-east-1:123456789012:table/ws-connection-test-connections/index/GSI1",
      "arn:aws:dynamodb:us-east-1:123456789012:table/ws-connection-test-connections/index/GSI2",
      "arn:aws:dynamodb:us-east-1:123456789012:table/ws-connection-test-connections/index/GSI3",
      "arn:aws:dynamodb:us-east-1:123456789012:table/ws-connection-test-connections/index/GSI4",
    ]])
    error_message = "The responder may Query only the four indexes (conversation, user, token expiry, live)."
  }

  assert {
    condition = jsonencode([for s in jsondecode(output.functions.WebSocketResponder.policy_json).Statement : s.Resource if contains(s.Action, "execute-api:ManageConnections")]) == jsonencode([[
      "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/@connections/*",
      "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/DELETE/@connections/*",
      "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/@connections/*",
    ]])
    error_message = "ManageConnections must be scoped to POST (post), DELETE (close) and GET (presence) @connections of this API's stage."
  }

  assert {
    condition     = output.expiry_sweep.input == jsonencode({ action = "disconnect", expired = true }) && jsondecode(output.expiry_sweep.policy_json).Statement[0].Action == ["lambda:InvokeFunction"] && jsondecode(output.expiry_sweep.policy_json).Statement[0].Resource == [output.functions.WebSocketResponder.arn]
    error_message = "The expiry sweep is on by default, and its role may only invoke the responder."
  }

  assert {
    condition = output.api.permission_source_arns == {
      connect    = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/$connect"
      disconnect = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/$disconnect"
      resume     = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/resume"
      presence   = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/presence"
      authorizer = "arn:aws:execute-api:us-east-1:123456789012:abc123/authorizers/auth01"
    }
    error_message = "Lambda permissions must name the exact route (or authorizer) ARN."
  }

  assert {
    condition     = output.api.throttling.rate_limit > 0 && output.api.throttling.burst_limit > 0
    error_message = "Throttling must never be 0."
  }

  assert {
    condition     = output.environment.WebSocketResponder.WS_ENDPOINT == "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
    error_message = "The responder's WS_ENDPOINT must be the https Management API endpoint."
  }

  assert {
    condition     = output.environment.ConnectAuthorizer.JWT_ISSUER == "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TEST" && output.environment.ConnectAuthorizer.JWT_AUDIENCE == "client-app"
    error_message = "The authorizer's JWT settings did not reach its environment."
  }

  assert {
    condition     = output.websocket_url == "wss://abc123.execute-api.us-east-1.amazonaws.com/prod"
    error_message = "Without the edge, clients connect to the API."
  }
}

run "without_fan_out_the_responder_only_posts" {
  command = apply

  variables {
    fanout    = false
    mark_gone = false
  }

  assert {
    condition     = jsonencode(sort(flatten([for s in jsondecode(output.functions.WebSocketResponder.policy_json).Statement : s.Action]))) == jsonencode(["execute-api:ManageConnections", "logs:CreateLogStream", "logs:PutLogEvents"])
    error_message = "Without fan-out the responder needs no DynamoDB access."
  }

  assert {
    condition     = !contains(keys(output.environment.WebSocketResponder), "TABLE_CONNECTIONS")
    error_message = "Without fan-out the responder gets no table."
  }

  assert {
    condition     = output.expiry_sweep == null
    error_message = "Without the table there is no expiry sweep."
  }
}

run "the_expiry_sweep_can_be_turned_off" {
  command = apply

  variables {
    expiry_sweep = false
  }

  assert {
    condition     = output.expiry_sweep == null
    error_message = "expiry_sweep = false deploys no schedule."
  }
}

run "lifecycle_events_turn_the_stream_on_and_pipe_it_to_a_bus" {
  command = apply
  variables {
    events = true
  }

  assert {
    condition     = module.table[0].stream_arn != null && output.events.bus_arn != null && toset(keys(output.events.pipe_arns)) == toset(["connected", "disconnected", "presence"])
    error_message = "events = true: the table's stream, a bus, the two lifecycle pipes and the presence pipe."
  }

  assert {
    condition = jsondecode(output.functions.MembershipFunction.policy_json).Statement[1] == {
      Effect    = "Allow"
      Action    = ["dynamodb:UpdateItem"]
      Resource  = [module.table[0].arn]
      Condition = { "ForAllValues:StringLike" = { "dynamodb:LeadingKeys" = ["MEMBERS#*"] } }
    } && length(jsondecode(output.functions.MembershipFunction.policy_json).Statement) == 2
    error_message = "The membership function may update the table's membership items only (partition keys MEMBERS#…), nothing else beyond its logs."
  }

  assert {
    condition     = module.events[0].pipe_arns["presence"] != null && output.environment.MembershipFunction.TABLE_CONNECTIONS == module.table[0].name
    error_message = "The presence pipe goes through the membership function, which has the table."
  }
}

run "no_events_by_default" {
  command = plan

  assert {
    condition     = output.events == null && length(module.events) == 0 && length(module.membership) == 0
    error_message = "Events are off unless asked for (the stream, the pipes and the membership function cost)."
  }
}

run "broadcasts_are_on_by_default_and_off_leaves_gsi4_unwritten_and_unread" {
  command = apply

  assert {
    condition     = output.environment.ConnectFunction.BROADCAST == "true" && output.environment.WebSocketResponder.BROADCAST == "true"
    error_message = "By default ConnectFunction writes GSI4 and the responder broadcasts."
  }
}

run "broadcast_off" {
  command = apply
  variables {
    broadcast = false
  }

  assert {
    condition     = output.environment.ConnectFunction.BROADCAST == "false" && output.environment.WebSocketResponder.BROADCAST == "false"
    error_message = "broadcast = false reaches both functions."
  }

  assert {
    condition     = !contains(flatten([for s in jsondecode(output.functions.WebSocketResponder.policy_json).Statement : s.Resource if contains(s.Action, "dynamodb:Query")]), "arn:aws:dynamodb:us-east-1:123456789012:table/ws-connection-test-connections/index/GSI4")
    error_message = "Without broadcasts the responder may not Query GSI4."
  }
}

run "without_an_authorizer_connect_is_open_and_no_authorizer_is_deployed" {
  command = apply

  variables {
    authorizer = null
  }

  assert {
    condition     = !contains(keys(output.functions), "ConnectAuthorizer") && !contains(keys(output.api.permission_source_arns), "authorizer")
    error_message = "No authorizer function or permission without authorizer settings."
  }
}

run "a_per_user_limit_gives_connect_query_on_gsi2_only" {
  command = apply
  variables {
    max_connections_per_user = 3
    client_info              = "anonymized"
  }

  assert {
    condition = jsonencode([for s in jsondecode(output.functions.ConnectFunction.policy_json).Statement : s.Resource if contains(s.Action, "dynamodb:Query")]) == jsonencode([[
      "arn:aws:dynamodb:us-east-1:123456789012:table/ws-connection-test-connections/index/GSI2"
    ]])
    error_message = "With a limit, ConnectFunction may Query GSI2 and nothing else."
  }

  assert {
    condition     = output.environment.ConnectFunction.MAX_CONNECTIONS_PER_USER == "3" && output.environment.ConnectFunction.CLIENT_INFO == "anonymized"
    error_message = "ConnectFunction gets MAX_CONNECTIONS_PER_USER and CLIENT_INFO."
  }
}

run "without_a_limit_connect_never_queries_and_stores_full_client_info" {
  command = apply

  assert {
    condition     = length([for s in jsondecode(output.functions.ConnectFunction.policy_json).Statement : s if contains(s.Action, "dynamodb:Query")]) == 0
    error_message = "Without a limit, ConnectFunction has no Query."
  }

  assert {
    condition     = !contains(keys(output.environment.ConnectFunction), "MAX_CONNECTIONS_PER_USER") && output.environment.ConnectFunction.CLIENT_INFO == "full"
    error_message = "No limit by default; CLIENT_INFO defaults to full."
  }
}

run "a_bad_client_info_or_connection_limit_is_refused" {
  command = plan
  variables {
    client_info              = "partial"
    max_connections_per_user = 0
  }
  expect_failures = [var.client_info, var.max_connections_per_user]
}

run "each_errors_alarm_watches_the_namespace_its_function_writes_to" {
  command = apply
  variables {
    manifest_path = "./tests/fixtures/with-a-route/lambda.manifest.json"
  }

  assert {
    condition = alltrue([for name, f in output.functions :
      f.alarms.errors.namespace == output.environment[name].METRICS_NAMESPACE && f.alarms.errors.dimensions.Service == jsondecode(file("./tests/fixtures/with-a-route/lambda.manifest.json")).functions[index([for g in jsondecode(file("./tests/fixtures/with-a-route/lambda.manifest.json")).functions : g.name], name)].svc
    ])
    error_message = "An Errors alarm on another namespace or Service than its function's never fires."
  }
}

run "the_dashboard_shows_every_counter_the_functions_emit" {
  command = apply
  # Every function of the manifest deployed (the membership function comes with the events).
  variables {
    events = true
  }

  # Each EMF line on the dashboard: [namespace, metric, "Service", svc].
  assert {
    condition = jsonencode({
      for svc, lines in {
        for line in flatten([for w in output.dashboard.body.widgets : [for m in try(w.properties.metrics, []) : { m = m }]]) : line.m[3] => line.m[1]... if line.m[0] == "ws-connection"
      } : svc => sort(lines)
      }) == jsonencode({
      for f in jsondecode(file("../../../lambda.manifest.json")).functions : f.svc => sort(f.metrics)
    })
    error_message = "The dashboard's EMF widgets must name exactly the counters each function emits (the manifest's metrics, in the functions' namespace)."
  }

  assert {
    condition = toset([for line in flatten([for w in output.dashboard.body.widgets : [for m in try(w.properties.metrics, []) : { m = m }]]) : line.m[1] if line.m[0] == "AWS/ApiGateway"]) == toset([
      "ConnectCount", "MessageCount", "IntegrationError", "ClientError", "ExecutionError"
    ])
    error_message = "API Gateway's connects, messages and errors."
  }

  assert {
    condition     = alltrue([for line in flatten([for w in output.dashboard.body.widgets : [for m in try(w.properties.metrics, []) : { m = m }]]) : line.m[3] == "abc123" && line.m[5] == "prod" if line.m[0] == "AWS/ApiGateway"])
    error_message = "API Gateway metrics are this API's stage."
  }

  assert {
    condition = toset([for line in flatten([for w in output.dashboard.body.widgets : [for m in try(w.properties.metrics, []) : { m = m }]]) : "${line.m[3]} ${line.m[4].stat}" if line.m[0] == "AWS/Lambda" && line.m[1] == "Duration"]) == toset(flatten([
      for f in values(output.functions) : ["${f.function_name} p50", "${f.function_name} p99"]
    ]))
    error_message = "Duration p50 and p99 of every function."
  }

  assert {
    condition     = toset([for line in flatten([for w in output.dashboard.body.widgets : [for m in try(w.properties.metrics, []) : { m = m }]]) : line.m[3] if line.m[0] == "AWS/Lambda" && line.m[1] == "Throttles"]) == toset([for f in values(output.functions) : f.function_name])
    error_message = "Throttles of every function."
  }

  assert {
    condition     = length([for w in output.dashboard.body.widgets : w if try(strcontains(w.properties.query, "@initDuration"), false)]) == 1
    error_message = "Init durations from the REPORT lines."
  }

  assert {
    condition     = length([for line in flatten([for w in output.dashboard.body.widgets : [for m in try(w.properties.metrics, []) : { m = m }]]) : line if line.m[0] == "AWS/DynamoDB" && contains(["ThrottledRequests", "ReadThrottleEvents", "WriteThrottleEvents"], line.m[1]) && line.m[3] == "ws-connection-test-connections"]) == 5
    error_message = "DynamoDB throttling of the table."
  }
}

# A function with a new route, added to (a copy of) the manifest and nowhere else: its route,
# integration, invoke permission, log group and environment appear, and a local-only executable
# function in it is not deployed. (The copy is the manifest plus those two:
# properties/tests/contract.rs fails when they drift apart.)
run "a_route_added_to_the_manifest_appears_with_no_other_edit" {
  command = apply
  variables {
    manifest_path = "./tests/fixtures/with-a-route/lambda.manifest.json"
  }

  assert {
    condition     = output.api.routes["sendmessage"] == "sendmessage"
    error_message = "The manifest's new route must be on the API."
  }

  assert {
    condition     = output.api.permission_source_arns["sendmessage"] == "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/sendmessage"
    error_message = "API Gateway may invoke the new function on its route only."
  }

  assert {
    condition     = output.api.integrations["sendmessage"] == output.functions.sendMessage.invoke_arn
    error_message = "The route integrates the new function."
  }

  assert {
    condition     = output.functions.sendMessage.log_group_name == "/aws/lambda/ws-connection-test-sendMessage"
    error_message = "The new function has its log group."
  }

  assert {
    condition     = output.environment.sendMessage.TABLE_CONNECTIONS == "ws-connection-test-connections" && output.environment.sendMessage.LOG_LEVEL == "INFO" && !contains(keys(output.environment.sendMessage), "CLIENT_INFO")
    error_message = "The new function gets what it declares, and nothing it does not."
  }

  assert {
    condition     = toset(keys(output.api.routes)) == toset(["connect", "disconnect", "resume", "presence", "sendmessage"])
    error_message = "The manifest's routes, no more (the executable function's route is local only)."
  }

  assert {
    condition     = jsonencode(sort(output.api.two_way_routes)) == jsonencode(["presence", "resume"]) && jsonencode(output.api.mock_routes) == jsonencode({ ping = "ping" })
    error_message = "resume and presence answer their client (a route response); ping is API Gateway's own answer (MOCK), with no function."
  }

  assert {
    condition     = !contains(keys(output.functions), "LocalOnly")
    error_message = "A function given as an executable runs in ws-local only: Terraform deploys crates."
  }
}

run "the_edge_puts_cloudfront_in_front_and_gives_connect_the_secret" {
  command = apply

  variables {
    edge                 = { rate_limit_per_5min = 500 }
    origin_verify_secret = "0123456789abcdef0123456789abcdef"
  }

  assert {
    condition     = output.websocket_url == "wss://d111111abcdef8.cloudfront.net"
    error_message = "With the edge, clients connect through CloudFront."
  }

  assert {
    condition     = !contains(keys(output.environment.ConnectFunction), "ORIGIN_VERIFY_SECRET")
    error_message = "The secret must not appear in outputs."
  }

  assert {
    condition     = output.deployed_environment.ConnectFunction.ORIGIN_VERIFY_SECRET == "0123456789abcdef0123456789abcdef"
    error_message = "The deployed ConnectFunction must have the secret CloudFront sends."
  }

  assert {
    condition     = alltrue([for name, env in output.deployed_environment : !contains(keys(env), "ORIGIN_VERIFY_SECRET") if name != "ConnectFunction"])
    error_message = "Only ConnectFunction gets the secret."
  }
}

run "the_edge_without_a_secret_is_refused" {
  command = plan

  variables {
    edge = {}
  }

  expect_failures = [terraform_data.manifest_check]
}

run "mark_gone_needs_fan_out" {
  command = plan

  variables {
    fanout    = false
    mark_gone = true
  }

  expect_failures = [var.mark_gone]
}

run "symmetric_jwt_algorithms_are_refused" {
  command = plan

  variables {
    authorizer = {
      issuer     = "https://issuer.example.com"
      audiences  = ["app"]
      algorithms = ["HS256"]
    }
  }

  expect_failures = [var.authorizer]
}

run "an_http_issuer_is_refused" {
  command = plan

  variables {
    authorizer = {
      issuer    = "http://issuer.example.com"
      audiences = ["app"]
    }
  }

  expect_failures = [var.authorizer]
}

run "a_bad_name_prefix_is_refused" {
  command = plan

  variables {
    name_prefix = "WS Connection"
  }

  expect_failures = [var.name_prefix]
}

run "a_bad_log_level_is_refused" {
  command = plan

  variables {
    log_level = "VERBOSE"
  }

  expect_failures = [var.log_level]
}

run "a_bad_alarm_topic_is_refused" {
  command = plan

  variables {
    alarm_topic_arn = "my-topic"
  }

  expect_failures = [var.alarm_topic_arn]
}

run "the_first_region_of_a_global_table_makes_the_replicas_and_may_post_through_the_other_regions_apis" {
  command = apply

  variables {
    replica_regions = ["eu-west-1"]
    peer_regions    = ["eu-west-1"]
  }

  assert {
    condition     = module.table[0].replica_regions == ["eu-west-1"]
    error_message = "The table gets a replica in the other region."
  }

  assert {
    condition = jsonencode([for s in jsondecode(output.functions.WebSocketResponder.policy_json).Statement : s.Resource if contains(s.Action, "execute-api:ManageConnections")]) == jsonencode([[
      "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/@connections/*",
      "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/DELETE/@connections/*",
      "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/@connections/*",
      "arn:aws:execute-api:eu-west-1:123456789012:*/prod/POST/@connections/*",
      "arn:aws:execute-api:eu-west-1:123456789012:*/prod/DELETE/@connections/*",
      "arn:aws:execute-api:eu-west-1:123456789012:*/prod/GET/@connections/*",
    ]])
    error_message = "The responder may post and close through this API and, in each peer region, the APIs of this stage."
  }
}

run "another_region_uses_its_replica_instead_of_making_a_table" {
  command = apply

  variables {
    use_table    = "ws-connection-test-connections"
    peer_regions = ["eu-west-1"]
  }

  assert {
    condition     = length(module.table) == 0 && output.table_name == "ws-connection-test-connections"
    error_message = "With use_table no table is made; the functions get the replica's name."
  }

  assert {
    condition = jsonencode([for s in jsondecode(output.functions.ConnectFunction.policy_json).Statement : s.Resource if contains(s.Action, "dynamodb:PutItem")]) == jsonencode([[
      "arn:aws:dynamodb:us-east-1:123456789012:table/ws-connection-test-connections"
    ]])
    error_message = "ConnectFunction writes this region's replica."
  }

  assert {
    condition     = contains(flatten([for s in jsondecode(output.functions.WebSocketResponder.policy_json).Statement : s.Resource if contains(s.Action, "dynamodb:Query")]), "arn:aws:dynamodb:us-east-1:123456789012:table/ws-connection-test-connections/index/GSI3")
    error_message = "The responder queries this region's replica's indexes."
  }
}

run "a_custom_domain_is_mapped_to_the_stage" {
  command = apply

  variables {
    custom_domain = {
      domain_name     = "ws.example.com"
      certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    }
  }

  assert {
    condition     = output.custom_domain.websocket_url == "wss://ws.example.com" && module.api.custom_domain.domain_name == "ws.example.com"
    error_message = "Clients get wss://ws.example.com."
  }

  assert {
    condition     = output.environment.WebSocketResponder.WS_ENDPOINT == output.management_endpoint && !strcontains(output.management_endpoint, "example.com")
    error_message = "The responder never posts through the custom domain (the Management API does not answer there)."
  }
}

run "a_bad_peer_region_or_table_name_is_refused" {
  command = plan
  variables {
    peer_regions = ["Europe"]
    use_table    = "x"
  }
  expect_failures = [var.peer_regions, var.use_table]
}
