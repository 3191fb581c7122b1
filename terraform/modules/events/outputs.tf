output "bus_arn" {
  description = "The bus the lifecycle events go to."
  value       = local.bus_arn
}

output "pipe_arns" {
  description = "The pipes, by the event each one makes (connected, disconnected, and presence when it is on)."
  value       = { for kind, pipe in aws_pipes_pipe.this : kind => pipe.arn }
}

output "policy_json" {
  description = "What the pipes' role may do (for tests and reviews)."
  value       = aws_iam_role_policy.this.policy
}

output "example_rule_arn" {
  description = "The example rule: closes for a ban (no target: add yours)."
  value       = aws_cloudwatch_event_rule.banned.arn
}
