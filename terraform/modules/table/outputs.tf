output "name" {
  description = "Table name."
  value       = aws_dynamodb_table.this.name
}

output "arn" {
  description = "Table ARN."
  value       = aws_dynamodb_table.this.arn
}

output "index_arns" {
  description = "ARNs of GSI1 (by conversation) and GSI2 (by user)."
  value       = { for name in local.indexes : name => "${aws_dynamodb_table.this.arn}/index/${name}" }
}
