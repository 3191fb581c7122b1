output "function_name" {
  description = "The Lambda function's name."
  value       = aws_lambda_function.this.function_name
}

output "arn" {
  description = "The Lambda function's ARN."
  value       = aws_lambda_function.this.arn
}

output "invoke_arn" {
  description = "ARN API Gateway integrations invoke."
  value       = aws_lambda_function.this.invoke_arn
}

output "role_name" {
  description = "The function's own role."
  value       = aws_iam_role.this.name
}

output "policy_json" {
  description = "The role's inline policy (tests decode it)."
  value       = local.policy
}

output "log_group_name" {
  description = "The function's log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "alarms" {
  description = "Each alarm's namespace and metric, by kind (errors, lambda-errors, throttles)."
  value       = { for k, a in aws_cloudwatch_metric_alarm.this : k => { namespace = a.namespace, metric = a.metric_name, dimensions = a.dimensions } }
}

output "alarm_names" {
  description = "Alarm names by kind (errors, lambda-errors, throttles)."
  value       = { for k, a in aws_cloudwatch_metric_alarm.this : k => a.alarm_name }
}

output "environment" {
  description = "The environment the deployed function has (sensitive: it may hold a secret)."
  value       = aws_lambda_function.this.environment[0].variables
  sensitive   = true
}
