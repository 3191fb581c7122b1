output "name" {
  description = "Dashboard name."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "body" {
  description = "The dashboard body as an object (tests read the widgets from it)."
  value       = jsondecode(aws_cloudwatch_dashboard.this.dashboard_body)
}
