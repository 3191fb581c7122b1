output "name" {
  description = "Table name."
  value       = aws_dynamodb_table.this.name
}

output "arn" {
  description = "Table ARN."
  value       = aws_dynamodb_table.this.arn
}

output "index_arns" {
  description = "ARNs of GSI1 (by conversation), GSI2 (by user), GSI3 (live connections by token expiry) and GSI4 (every live connection, for a broadcast)."
  value       = { for name in local.indexes : name => "${aws_dynamodb_table.this.arn}/index/${name}" }
}

output "replica_regions" {
  description = "The regions with a replica (empty: a single-region table)."
  value       = [for r in aws_dynamodb_table.this.replica : r.region_name]
}

output "stream_arn" {
  description = "The table's stream (on for a global table; replication uses it)."
  value       = aws_dynamodb_table.this.stream_arn
}
