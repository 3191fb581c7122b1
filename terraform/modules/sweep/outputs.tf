output "schedule_arn" {
  description = "The schedule's ARN."
  value       = aws_scheduler_schedule.this.arn
}

output "role_name" {
  description = "The schedule's role."
  value       = aws_iam_role.this.name
}

output "policy_json" {
  description = "The role's only policy: lambda:InvokeFunction on the responder."
  value       = aws_iam_role_policy.this.policy
}

output "input" {
  description = "The event the responder is invoked with."
  value       = local.input
}
