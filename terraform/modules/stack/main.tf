locals {
  manifest = jsondecode(file(var.manifest_path))
  # Crates only: a function given as an "executable" runs in ws-local alone.
  functions = { for f in local.manifest.functions : f.name => f if try(f.crate, null) != null }
  checksums = jsondecode(file("${var.artifacts_dir}/checksums.json"))
  tags      = merge({ service = local.manifest.service, stack = var.name_prefix }, var.tags)

  # Defaults the manifest gives, then what this stack sets.
  defaults = { for name, f in local.functions : name => {
    for k, v in f.environment : k => v.default if try(v.default, null) != null
  } }
  authorizer_env = var.authorizer == null ? {} : merge(
    {
      JWT_ISSUER   = var.authorizer.issuer
      JWT_AUDIENCE = join(",", var.authorizer.audiences)
      ALLOWED_ALGS = join(",", var.authorizer.algorithms)
    },
    var.authorizer.jwks_url == null ? {} : { JWKS_URL = var.authorizer.jwks_url },
    var.authorizer.token_use == null ? {} : { JWT_TOKEN_USE = var.authorizer.token_use },
  )
  # Route functions and the responder are kept apart: the responder's settings need the API,
  # and the API needs the route functions.
  #
  # What this stack can give a route function; each gets the ones its manifest entry declares
  # (over the manifest's defaults), so a new function's environment needs no edit here. A null
  # value (an option that is off) is left out. The origin secret is added on its own: filtering
  # on a sensitive value would mark every function's whole environment sensitive.
  route_values = merge(local.authorizer_env, {
    TABLE_CONNECTIONS        = local.table.name
    LOG_LEVEL                = var.log_level
    CLIENT_INFO              = var.client_info
    MAX_CONNECTIONS_PER_USER = var.max_connections_per_user == null ? null : tostring(var.max_connections_per_user)
    BROADCAST                = tostring(var.broadcast)
  })
  route_environment = { for name in local.route_functions : name => merge(
    local.defaults[name],
    { for k, v in local.route_values : k => v if contains(keys(local.functions[name].environment), k) && v != null },
    var.edge != null && contains(keys(local.functions[name].environment), "ORIGIN_VERIFY_SECRET") ? { ORIGIN_VERIFY_SECRET = var.origin_verify_secret } : {},
  ) }
  responder_environment = merge(local.defaults["WebSocketResponder"], {
    WS_ENDPOINT = module.api.management_endpoint
    LOG_LEVEL   = var.log_level
    BROADCAST   = tostring(var.broadcast)
    }, var.fanout ? {
    TABLE_CONNECTIONS = local.table.name
    MARK_GONE         = tostring(var.mark_gone)
  } : {})
  # The lifecycle pipe's enrichment (the manifest's "pipe" function, MembershipFunction): deployed
  # with the events, for the presence events.
  membership_name = one([for name, f in local.functions : name if f.trigger.type == "pipe"])
  membership      = var.events && local.membership_name != null
  membership_environment = local.membership ? { (local.membership_name) = merge(local.defaults[local.membership_name], {
    TABLE_CONNECTIONS = local.table.name
    LOG_LEVEL         = var.log_level
  }) } : {}
  environment = merge(local.route_environment, { WebSocketResponder = local.responder_environment }, local.membership_environment)

  # Exactly docs/design.md §1, on exact ARNs.
  route_permissions = {
    # Query on GSI2 only to count a user's connections, and only when there is a limit.
    ConnectFunction = concat(
      [{ actions = ["dynamodb:PutItem"], resources = [local.table.arn] }],
      var.max_connections_per_user == null ? [] : [{ actions = ["dynamodb:Query"], resources = [local.table.index_arns["GSI2"]] }],
    )
    disconnectWS      = [{ actions = ["dynamodb:UpdateItem"], resources = [local.table.arn] }]
    ConnectAuthorizer = []
    # resume: the connection's record and its streams' items, read (the table itself); presence:
    # its conversation's connections (GSI1), GONE marked on what API Gateway no longer has, and
    # GET @connections of this stage (any API id: the API is made after its route functions).
    WebSocketRoutes = [
      { actions = ["dynamodb:GetItem", "dynamodb:Query"], resources = [local.table.arn, local.table.index_arns["GSI1"]] },
      { actions = ["dynamodb:UpdateItem"], resources = [local.table.arn] },
      { actions = ["execute-api:ManageConnections"], resources = ["arn:${local.arn_parts[1]}:execute-api:${data.aws_region.current.name}:${local.arn_parts[4]}:*/${var.stage_name}/GET/@connections/*"] },
    ]
  }
  # POST to post, DELETE to close (revocation and the expiry sweep), GET to ask whether a
  # connection is live (presence); nothing else of the stage.
  responder_permissions = concat(
    [{ actions = ["execute-api:ManageConnections"], resources = concat([module.api.manage_connections_arn, module.api.close_connections_arn, module.api.check_connections_arn], local.peer_manage_connections) }],
    var.fanout ? [
      # GSI4 (every live connection) only where broadcasts are on.
      { actions = ["dynamodb:Query"], resources = [for name, arn in local.table.index_arns : arn if name != "GSI4" || var.broadcast] },
      # UpdateItem: GONE, close reasons, a stream's head and claims; PutItem: a stream's entries and
      # message keys (an append is one TransactWriteItems of both); GetItem: a stream's head.
      { actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], resources = [local.table.arn] },
    ] : [],
  )
  # What API Gateway invokes, from the manifest's triggers: every route function, and the
  # authorizer when there are authorizer settings.
  authorizer_name = one([for name, f in local.functions : name if f.trigger.type == "authorizer"])
  route_functions = toset([for name, f in local.functions : name if f.trigger.type == "route" || (f.trigger.type == "authorizer" && var.authorizer != null)])
}

module "table" {
  source = "../table"
  # A second region of a global table uses the replica the first region's stack made.
  count = var.use_table == null ? 1 : 0

  name                = "${var.name_prefix}-connections"
  deletion_protection = var.deletion_protection
  billing_mode        = var.table_billing_mode
  capacity            = var.table_capacity
  replica_regions     = var.replica_regions
  stream              = var.events
  tags                = local.tags
}

locals {
  # The account and partition, for ARNs of what this stack does not make.
  arn_parts = ["arn", data.aws_partition.current.partition, "", "", data.aws_caller_identity.current.account_id]
  # This region's table: the one made here, or (use_table) this region's replica of a global
  # table made by another region's stack.
  table = var.use_table == null ? {
    name       = module.table[0].name
    arn        = module.table[0].arn
    index_arns = module.table[0].index_arns
    } : {
    name = var.use_table
    arn  = "arn:${local.arn_parts[1]}:dynamodb:${data.aws_region.current.name}:${local.arn_parts[4]}:table/${var.use_table}"
    index_arns = { for index in keys(jsondecode(file("${path.module}/../table/schema.json")).indexes) :
      index => "arn:${local.arn_parts[1]}:dynamodb:${data.aws_region.current.name}:${local.arn_parts[4]}:table/${var.use_table}/index/${index}"
    }
  }
  # ManageConnections on the other regions' APIs of this stage (a connection is posted through
  # the API of its own region; their API ids are not known here, their region and stage are).
  peer_manage_connections = flatten([for region in var.peer_regions : [
    for method in ["POST", "DELETE", "GET"] :
    "arn:${local.arn_parts[1]}:execute-api:${region}:${local.arn_parts[4]}:*/${var.stage_name}/${method}/@connections/*"
  ]])
}

# The functions API Gateway invokes. The responder is separate: its environment needs the
# API's endpoint, and the API needs these functions.
module "route_function" {
  source   = "../function"
  for_each = local.route_functions

  name               = each.key
  name_prefix        = var.name_prefix
  svc                = local.functions[each.key].svc
  metrics_namespace  = local.route_environment[each.key].METRICS_NAMESPACE
  zip_path           = "${var.artifacts_dir}/${each.key}/${each.key}.zip"
  source_code_hash   = local.checksums[each.key].sha256_base64
  architecture       = local.checksums[each.key].architecture
  memory_mb          = local.functions[each.key].memory_mb
  timeout_s          = local.functions[each.key].timeout_s
  environment        = local.route_environment[each.key]
  policy_statements  = lookup(local.route_permissions, each.key, []) # a new function starts with logs only: its grants are a deliberate edit
  log_retention_days = var.log_retention_days
  tracing            = var.tracing
  alarm_topic_arn    = var.alarm_topic_arn
  tags               = local.tags
}

module "api" {
  source = "../api"

  name                       = var.name_prefix
  stage_name                 = var.stage_name
  route_selection_expression = try(local.manifest.route_selection_expression, "$request.body.action")
  # Every route the manifest names (a function's `route`, or each of its `routes`), to its function.
  routes = merge([for name, f in local.functions : { for route in try(f.trigger.routes, [f.trigger.route]) : route => {
    name       = module.route_function[name].function_name
    invoke_arn = module.route_function[name].invoke_arn
    two_way    = try(f.trigger.route_response, false)
  } } if f.trigger.type == "route"]...)
  mock_routes = try(local.manifest.mock_routes, {})
  authorizer_function = var.authorizer == null ? null : {
    name       = module.route_function[local.authorizer_name].function_name
    invoke_arn = module.route_function[local.authorizer_name].invoke_arn
  }
  authorizer_identity_sources = try(local.functions[local.authorizer_name].trigger.identity_sources, [])
  throttling_rate_limit       = var.throttling_rate_limit
  throttling_burst_limit      = var.throttling_burst_limit
  log_retention_days          = var.log_retention_days
  custom_domain               = var.custom_domain
  tags                        = local.tags
}

module "responder" {
  source = "../function"

  name               = "WebSocketResponder"
  name_prefix        = var.name_prefix
  svc                = local.functions["WebSocketResponder"].svc
  metrics_namespace  = local.responder_environment.METRICS_NAMESPACE
  zip_path           = "${var.artifacts_dir}/WebSocketResponder/WebSocketResponder.zip"
  source_code_hash   = local.checksums["WebSocketResponder"].sha256_base64
  architecture       = local.checksums["WebSocketResponder"].architecture
  memory_mb          = local.functions["WebSocketResponder"].memory_mb
  timeout_s          = local.functions["WebSocketResponder"].timeout_s
  environment        = local.responder_environment
  policy_statements  = local.responder_permissions
  log_retention_days = var.log_retention_days
  tracing            = var.tracing
  alarm_topic_arn    = var.alarm_topic_arn
  tags               = local.tags
}

data "aws_region" "current" {}

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

locals {
  deployed = merge(
    { for k, f in module.route_function : k => f },
    { WebSocketResponder = module.responder },
    { for f in module.membership : local.membership_name => f },
  )
}

module "dashboard" {
  source = "../dashboard"
  count  = var.dashboard ? 1 : 0

  name   = var.name_prefix
  region = data.aws_region.current.name
  emf_metrics = { for name in keys(local.deployed) : local.functions[name].svc => {
    namespace = local.environment[name].METRICS_NAMESPACE, metrics = local.functions[name].metrics
  } }
  api_id     = module.api.api_id
  stage_name = module.api.stage_name
  functions  = { for name, f in local.deployed : name => f.function_name }
  log_groups = [for name in sort(keys(local.deployed)) : local.deployed[name].log_group_name]
  table_name = local.table.name
  tags       = local.tags
}

# Lifecycle events (docs/design.md §12): the table's stream through EventBridge Pipes to a bus.
module "events" {
  source = "../events"
  count  = var.events ? 1 : 0

  name             = var.name_prefix
  table_stream_arn = module.table[0].stream_arn
  bus_name         = var.events_bus_name
  presence         = local.membership ? { function_arn = module.membership[0].arn } : null
  tags             = local.tags
}

# Keeps who of each conversation is there, for the presence pipe (docs/design.md §12): UpdateItem
# on the table's membership items only (their partition keys start MEMBERS#).
module "membership" {
  source = "../function"
  count  = local.membership ? 1 : 0

  name              = local.membership_name
  name_prefix       = var.name_prefix
  svc               = local.functions[local.membership_name].svc
  metrics_namespace = local.membership_environment[local.membership_name].METRICS_NAMESPACE
  zip_path          = "${var.artifacts_dir}/${local.membership_name}/${local.membership_name}.zip"
  source_code_hash  = local.checksums[local.membership_name].sha256_base64
  architecture      = local.checksums[local.membership_name].architecture
  memory_mb         = local.functions[local.membership_name].memory_mb
  timeout_s         = local.functions[local.membership_name].timeout_s
  environment       = local.membership_environment[local.membership_name]
  policy_statements = [{
    actions    = ["dynamodb:UpdateItem"]
    resources  = [local.table.arn]
    conditions = { "ForAllValues:StringLike" = { "dynamodb:LeadingKeys" = ["MEMBERS#*"] } }
  }]
  log_retention_days = var.log_retention_days
  tracing            = var.tracing
  alarm_topic_arn    = var.alarm_topic_arn
  tags               = local.tags
}

module "fanout_state_machine" {
  source = "../fanout"
  count  = var.fanout_state_machine ? 1 : 0

  name          = "${var.name_prefix}-fanout"
  responder_arn = module.responder.arn
  segments      = var.fanout_segments
  tags          = local.tags
}

# Closes connections whose token has expired, every minute (needs the table: fanout).
module "expiry_sweep" {
  source = "../sweep"
  count  = var.fanout && var.expiry_sweep ? 1 : 0

  name          = "${var.name_prefix}-expiry-sweep"
  responder_arn = module.responder.arn
  every_minutes = var.expiry_sweep_every_minutes
  tags          = local.tags
}

module "edge" {
  source = "../edge"
  # Without the secret the edge is not built and the precondition below says why.
  count = var.edge == null || var.origin_verify_secret == null ? 0 : 1
  providers = {
    aws           = aws
    aws.us_east_1 = aws.us_east_1
  }

  name                 = var.name_prefix
  origin_domain        = module.api.origin_domain
  stage_name           = var.stage_name
  origin_verify_secret = var.origin_verify_secret
  # One minimum, the manifest's, which ConnectFunction's own check equals (properties/tests/contract.rs).
  origin_verify_secret_min_length = local.functions["ConnectFunction"].environment.ORIGIN_VERIFY_SECRET.min_length
  rate_limit_per_5min             = var.edge.rate_limit_per_5min
  rate_limit_per_token_5min       = var.edge.rate_limit_per_token_5min
  acm_certificate_arn             = var.edge.acm_certificate_arn
  aliases                         = var.edge.aliases
  tags                            = local.tags
}

# Every function the manifest lists gets every variable it marks required, and a zip.
resource "terraform_data" "manifest_check" {
  input = keys(local.functions)
  lifecycle {
    precondition {
      condition     = var.edge == null || var.origin_verify_secret != null
      error_message = "edge needs origin_verify_secret (at least 32 random characters, e.g. openssl rand -hex 32)."
    }
    precondition {
      condition = alltrue([for name, f in local.functions : alltrue([
        for k, v in f.environment : contains(keys(local.environment[name]), k) if try(v.required, false)
      ]) if contains(keys(local.environment), name)])
      error_message = "A function lacks an environment variable lambda.manifest.json marks required."
    }
    precondition {
      condition     = alltrue([for name in keys(local.functions) : contains(keys(local.checksums), name)])
      error_message = "checksums.json lacks a function of the manifest: run scripts/build-lambda.sh --service . --mode bundle."
    }
  }
}
