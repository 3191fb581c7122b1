# Applies the whole stack to moto's server (scripts/tests/terraform.sh starts it and sets
# TF_VAR_aws_endpoint), reads it back, and destroys it at the end.

run "apply_the_whole_stack" {
  command = apply

  # Everything optional on: the state machine, a per-user limit, anonymized client data,
  # provisioned capacity with auto scaling, the lifecycle and presence events, and (by default)
  # the dashboard.
  variables {
    events                   = true
    fanout_state_machine     = true
    client_info              = "anonymized"
    max_connections_per_user = 5
    table_billing_mode       = "PROVISIONED"
    table_capacity           = { read_min = 5, read_max = 50, write_min = 5, write_max = 20 }
  }

  assert {
    condition     = output.dashboard_name == "ws-connection-local"
    error_message = "The dashboard is applied with the stack."
  }

  assert {
    condition     = length([for s in jsondecode(output.functions.ConnectFunction.policy_json).Statement : s if contains(s.Action, "dynamodb:Query")]) == 1
    error_message = "With a limit, ConnectFunction may Query (GSI2)."
  }

  assert {
    condition     = startswith(output.fanout_state_machine_arn, "arn:aws:states:us-east-1:") && endswith(output.fanout_state_machine_arn, ":stateMachine:ws-connection-local-fanout")
    error_message = "The sample fan-out state machine is applied with the stack."
  }

  assert {
    condition     = jsondecode(output.fanout_state_machine_policy_json).Statement[0].Resource == [output.functions.WebSocketResponder.arn]
    error_message = "The state machine may invoke the responder only."
  }

  assert {
    condition     = startswith(output.expiry_sweep.schedule_arn, "arn:aws:scheduler:us-east-1:") && jsondecode(output.expiry_sweep.policy_json).Statement[0].Resource == [output.functions.WebSocketResponder.arn]
    error_message = "The expiry sweep's schedule is applied with the stack, its role invoking the responder only."
  }

  assert {
    condition     = output.table_name == "ws-connection-local-connections"
    error_message = "The table is named after the stack."
  }

  assert {
    condition     = toset(keys(output.functions)) == toset(["ConnectFunction", "disconnectWS", "WebSocketResponder", "WebSocketRoutes", "MembershipFunction"])
    error_message = "Without authorizer settings, four functions, and the membership function with the events."
  }

  assert {
    condition = (
      toset(keys(output.events.pipe_arns)) == toset(["connected", "disconnected", "presence"])
      && alltrue([for arn in values(output.events.pipe_arns) : startswith(arn, "arn:aws:pipes:us-east-1:")])
      && startswith(output.events.bus_arn, "arn:aws:events:us-east-1:") && endswith(output.events.bus_arn, ":event-bus/ws-connection-local")
    )
    error_message = "The events apply: the bus and the three pipes exist in the emulator."
  }

  assert {
    condition     = startswith(output.management_endpoint, "https://") && endswith(output.management_endpoint, "/prod")
    error_message = "The responder's endpoint is the https Management API one."
  }
}

run "the_table_and_roles_exist_in_the_emulator" {
  module {
    source = "./tests/verify"
  }

  variables {
    table_name = run.apply_the_whole_stack.table_name
    role_names = [for f in values(run.apply_the_whole_stack.functions) : f.role_name]
  }

  assert {
    condition     = jsonencode(output.gsi) == jsonencode({ GSI1 = ["gsi1pk", "gsi1sk"], GSI2 = ["gsi2pk", "gsi2sk"], GSI3 = ["gsi3pk", "gsi3sk"], GSI4 = ["gsi4pk", "gsi4sk"] })
    error_message = "The table in the emulator has its four GSIs."
  }

  assert {
    condition     = output.ttl_attribute == "ttl"
    error_message = "The table in the emulator has TTL on ttl."
  }

  assert {
    condition     = length(output.role_arns) == 5 && alltrue([for arn in values(output.role_arns) : startswith(arn, "arn:aws:iam::")])
    error_message = "One role per function exists in the emulator."
  }
}
