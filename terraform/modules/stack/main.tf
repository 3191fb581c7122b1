locals {
  manifest  = jsondecode(file(var.manifest_path))
  functions = { for f in local.manifest.functions : f.name => f }
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
  route_environment = {
    ConnectFunction = merge(local.defaults["ConnectFunction"], {
      TABLE_CONNECTIONS = module.table.name
      LOG_LEVEL         = var.log_level
      CLIENT_INFO       = var.client_info
      }, var.max_connections_per_user == null ? {} : {
      MAX_CONNECTIONS_PER_USER = tostring(var.max_connections_per_user)
      }, var.edge == null ? {} : {
      ORIGIN_VERIFY_SECRET = var.origin_verify_secret
    })
    disconnectWS = merge(local.defaults["disconnectWS"], {
      TABLE_CONNECTIONS = module.table.name
      LOG_LEVEL         = var.log_level
    })
    ConnectAuthorizer = merge(local.defaults["ConnectAuthorizer"], local.authorizer_env, { LOG_LEVEL = var.log_level })
  }
  responder_environment = merge(local.defaults["WebSocketResponder"], {
    WS_ENDPOINT = module.api.management_endpoint
    LOG_LEVEL   = var.log_level
    }, var.fanout ? {
    TABLE_CONNECTIONS = module.table.name
    MARK_GONE         = tostring(var.mark_gone)
  } : {})
  environment = merge(local.route_environment, { WebSocketResponder = local.responder_environment })

  # Exactly DESIGN §1, on exact ARNs.
  route_permissions = {
    # Query on GSI2 only to count a user's connections, and only when there is a limit.
    ConnectFunction = concat(
      [{ actions = ["dynamodb:PutItem"], resources = [module.table.arn] }],
      var.max_connections_per_user == null ? [] : [{ actions = ["dynamodb:Query"], resources = [module.table.index_arns["GSI2"]] }],
    )
    disconnectWS      = [{ actions = ["dynamodb:UpdateItem"], resources = [module.table.arn] }]
    ConnectAuthorizer = []
  }
  responder_permissions = concat(
    [{ actions = ["execute-api:ManageConnections"], resources = [module.api.manage_connections_arn] }],
    var.fanout ? [
      { actions = ["dynamodb:Query"], resources = values(module.table.index_arns) },
      { actions = ["dynamodb:UpdateItem"], resources = [module.table.arn] },
    ] : [],
  )
  route_functions = setsubtract(keys(local.functions), ["WebSocketResponder", var.authorizer == null ? "ConnectAuthorizer" : ""])
}

module "table" {
  source = "../table"

  name                = "${var.name_prefix}-connections"
  deletion_protection = var.deletion_protection
  billing_mode        = var.table_billing_mode
  capacity            = var.table_capacity
  tags                = local.tags
}

# The functions API Gateway invokes. The responder is separate: its environment needs the
# API's endpoint, and the API needs these functions.
module "route_function" {
  source   = "../function"
  for_each = local.route_functions

  name               = each.key
  name_prefix        = var.name_prefix
  svc                = local.functions[each.key].svc
  zip_path           = "${var.artifacts_dir}/${each.key}/${each.key}.zip"
  source_code_hash   = local.checksums[each.key].sha256_base64
  architecture       = local.checksums[each.key].architecture
  memory_mb          = local.functions[each.key].memory_mb
  timeout_s          = local.functions[each.key].timeout_s
  environment        = local.route_environment[each.key]
  policy_statements  = local.route_permissions[each.key]
  log_retention_days = var.log_retention_days
  tracing            = var.tracing
  alarm_topic_arn    = var.alarm_topic_arn
  tags               = local.tags
}

module "api" {
  source = "../api"

  name                   = var.name_prefix
  stage_name             = var.stage_name
  connect_function       = { name = module.route_function["ConnectFunction"].function_name, invoke_arn = module.route_function["ConnectFunction"].invoke_arn }
  disconnect_function    = { name = module.route_function["disconnectWS"].function_name, invoke_arn = module.route_function["disconnectWS"].invoke_arn }
  authorizer_function    = var.authorizer == null ? null : { name = module.route_function["ConnectAuthorizer"].function_name, invoke_arn = module.route_function["ConnectAuthorizer"].invoke_arn }
  throttling_rate_limit  = var.throttling_rate_limit
  throttling_burst_limit = var.throttling_burst_limit
  log_retention_days     = var.log_retention_days
  tags                   = local.tags
}

module "responder" {
  source = "../function"

  name               = "WebSocketResponder"
  name_prefix        = var.name_prefix
  svc                = local.functions["WebSocketResponder"].svc
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

locals {
  deployed = merge({ for k, f in module.route_function : k => f }, { WebSocketResponder = module.responder })
}

module "dashboard" {
  source = "../dashboard"
  count  = var.dashboard ? 1 : 0

  name              = var.name_prefix
  region            = data.aws_region.current.name
  metrics_namespace = local.environment["ConnectFunction"].METRICS_NAMESPACE
  emf_metrics       = { for name in keys(local.deployed) : local.functions[name].svc => local.functions[name].metrics }
  api_id            = module.api.api_id
  stage_name        = module.api.stage_name
  functions         = { for name, f in local.deployed : name => f.function_name }
  log_groups        = [for name in sort(keys(local.deployed)) : local.deployed[name].log_group_name]
  table_name        = module.table.name
  tags              = local.tags
}

module "fanout_state_machine" {
  source = "../fanout"
  count  = var.fanout_state_machine ? 1 : 0

  name          = "${var.name_prefix}-fanout"
  responder_arn = module.responder.arn
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
      ]) if name != "ConnectAuthorizer" || var.authorizer != null])
      error_message = "A function lacks an environment variable lambda.manifest.json marks required."
    }
    precondition {
      condition     = alltrue([for name in keys(local.functions) : contains(keys(local.checksums), name)])
      error_message = "checksums.json lacks a function of the manifest: run scripts/build-lambda.sh --service . --mode bundle."
    }
  }
}
