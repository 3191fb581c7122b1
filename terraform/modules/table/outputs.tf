output "name" {
  description = "Table name."
  value       = aws_dynamodb_table.this.name
}

output "arn" {
  description = "Table ARN."
  value       = aws_dynamodb_table.this.arn
}

output "index_arns" {
  description = "ARNs of GSI1 (by conversation), GSI2 (by user) and GSI3 (live connections by token expiry)."
  value       = { for name in local.indexes : name => "${aws_dynamodb_table.this.arn}/index/${name}" }
}
