output "arn" {
  description = "The state machine's ARN (start an execution with the responder's event as input)."
  value       = aws_sfn_state_machine.this.arn
}

output "role_name" {
  description = "The state machine's role."
  value       = aws_iam_role.this.name
}

output "policy_json" {
  description = "The role's only policy: lambda:InvokeFunction on the responder."
  value       = aws_iam_role_policy.this.policy
}

output "definition" {
  description = "The Amazon States Language definition, as JSON."
  value       = aws_sfn_state_machine.this.definition
}
