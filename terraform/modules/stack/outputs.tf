output "table_name" {
  description = "The connections table."
  value       = local.table.name
}

output "table_arn" {
  description = "The connections table's ARN."
  value       = local.table.arn
}

output "websocket_url" {
  description = "Where clients connect: the edge when there is one, else the API."
  value       = length(module.edge) == 0 ? module.api.websocket_url : module.edge[0].websocket_url
}

output "management_endpoint" {
  description = "The Management API endpoint (the responder's WS_ENDPOINT)."
  value       = module.api.management_endpoint
}

output "responder_function_name" {
  description = "What Step Functions and other Lambdas invoke."
  value       = module.responder.function_name
}

output "functions" {
  description = "Per function: Lambda name, role, inline policy JSON, log group, alarms."
  value = { for name, m in local.deployed : name => {
    function_name  = m.function_name, role_name = m.role_name, policy_json = m.policy_json,
    log_group_name = m.log_group_name, alarm_names = m.alarm_names, arn = m.arn, invoke_arn = m.invoke_arn,
    alarms         = m.alarms
  } }
}

output "environment" {
  description = "Each function's environment (without the origin secret)."
  value = { for name, env in local.environment : name => {
    for k, v in env : k => v if k != "ORIGIN_VERIFY_SECRET"
  } if contains(keys(local.deployed), name) }
}

output "api" {
  description = "API facts tests and operators need."
  value = {
    api_id                 = module.api.api_id
    stage_name             = module.api.stage_name
    manage_connections_arn = module.api.manage_connections_arn
    permission_source_arns = module.api.permission_source_arns
    route_arns             = module.api.route_arns
    routes                 = module.api.routes
    two_way_routes         = module.api.two_way_routes
    mock_routes            = module.api.mock_routes
    integrations           = module.api.integrations
    throttling             = module.api.throttling
  }
}

output "fanout_state_machine_arn" {
  description = "The sample fan-out state machine (null unless fanout_state_machine)."
  value       = length(module.fanout_state_machine) == 0 ? null : module.fanout_state_machine[0].arn
}

output "fanout_state_machine_policy_json" {
  description = "The state machine role's only policy (null unless fanout_state_machine)."
  value       = length(module.fanout_state_machine) == 0 ? null : module.fanout_state_machine[0].policy_json
}

output "dashboard" {
  description = "The dashboard's name and body (null without one)."
  value       = var.dashboard ? { name = module.dashboard[0].name, body = module.dashboard[0].body } : null
}

output "deployed_environment" {
  description = "Each function's environment as deployed, secrets included (sensitive; for tests and audits)."
  value       = { for name, f in local.deployed : name => f.environment }
  sensitive   = true
}

output "expiry_sweep" {
  description = "The expiry sweep's schedule ARN, the event it sends and its role's only policy; null when off."
  value = one([for sweep in module.expiry_sweep : {
    schedule_arn = sweep.schedule_arn
    input        = sweep.input
    policy_json  = sweep.policy_json
  }])
}

output "custom_domain" {
  description = "The custom domain for clients, its URL and DNS target (null without one)."
  value       = module.api.custom_domain
}

output "events" {
  description = "The lifecycle events' bus and pipes (null when events = false)."
  value       = var.events ? { bus_arn = module.events[0].bus_arn, pipe_arns = module.events[0].pipe_arns } : null
}
