data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  oidc_host = "token.actions.githubusercontent.com"
  oidc_arn  = var.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : "arn:${local.partition}:iam::${local.account}:oidc-provider/${local.oidc_host}"
  bucket    = "${var.service}-tfstate-${local.account}"
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 1 : 0

  url            = "https://${local.oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
  # AWS validates GitHub's certificate itself; the provider API still wants a thumbprint.
  thumbprint_list = ["6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"]
}

# --- State: versioned, encrypted, private; locking with S3's lock files (use_lockfile). ---

resource "aws_s3_bucket" "state" {
  bucket = local.bucket
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket                  = aws_s3_bucket.state.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_policy" "state" {
  bucket = aws_s3_bucket.state.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TLSOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.state.arn, "${aws_s3_bucket.state.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    id     = "old-state-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 90
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

# --- One deploy role per environment, assumable only by that environment's workflow jobs. ---

resource "aws_iam_role" "deploy" {
  for_each = toset(var.environments)

  name                 = "${var.service}-${each.key}-deploy"
  max_session_duration = 3600
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRoleWithWebIdentity"
      Principal = { Federated = local.oidc_arn }
      Condition = {
        StringEquals = {
          "${local.oidc_host}:aud" = "sts.amazonaws.com"
          "${local.oidc_host}:sub" = "repo:${var.github_repository}:environment:${each.key}"
        }
      }
    }]
  })
}

locals {
  # What `terraform apply` of envs/<env> needs, on that environment's resources only (names
  # start with <service>-<env>). API Gateway, CloudFront and WAF name resources by generated
  # ids, so those are scoped to their resource types.
  deploy_statements = { for env in var.environments : env => [
    {
      Sid      = "State"
      Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
      Resource = ["${aws_s3_bucket.state.arn}/${var.service}/${env}/*"]
    },
    {
      Sid       = "StateList"
      Action    = ["s3:ListBucket"]
      Resource  = [aws_s3_bucket.state.arn]
      Condition = { StringLike = { "s3:prefix" = ["${var.service}/${env}/*"] } }
    },
    {
      Sid = "Table"
      Action = ["dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:DescribeTable", "dynamodb:UpdateTable",
        "dynamodb:DescribeTimeToLive", "dynamodb:UpdateTimeToLive", "dynamodb:DescribeContinuousBackups",
      "dynamodb:UpdateContinuousBackups", "dynamodb:ListTagsOfResource", "dynamodb:TagResource", "dynamodb:UntagResource"]
      Resource = ["arn:${local.partition}:dynamodb:${var.region}:${local.account}:table/${var.service}-${env}-*"]
    },
    {
      Sid = "Functions"
      Action = ["lambda:CreateFunction", "lambda:DeleteFunction", "lambda:GetFunction", "lambda:GetFunctionCodeSigningConfig",
        "lambda:ListVersionsByFunction", "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
        "lambda:AddPermission", "lambda:RemovePermission", "lambda:GetPolicy", "lambda:TagResource", "lambda:UntagResource",
      "lambda:ListTags"]
      Resource = ["arn:${local.partition}:lambda:${var.region}:${local.account}:function:${var.service}-${env}-*"]
    },
    {
      Sid = "Roles"
      Action = ["iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:TagRole", "iam:UntagRole", "iam:PutRolePolicy",
        "iam:GetRolePolicy", "iam:DeleteRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
      "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:ListInstanceProfilesForRole", "iam:PassRole"]
      Resource = ["arn:${local.partition}:iam::${local.account}:role/${var.service}-${env}-*"]
    },
    {
      Sid = "Logs"
      Action = ["logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:TagResource",
      "logs:UntagResource", "logs:ListTagsForResource", "logs:DescribeLogGroups"]
      Resource = [
        "arn:${local.partition}:logs:*:${local.account}:log-group:/aws/lambda/${var.service}-${env}-*",
        "arn:${local.partition}:logs:*:${local.account}:log-group:/aws/apigateway/${var.service}-${env}/*",
        "arn:${local.partition}:logs:*:${local.account}:log-group:aws-waf-logs-${var.service}-${env}*",
      ]
    },
    {
      Sid = "Alarms"
      Action = ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms",
      "cloudwatch:ListTagsForResource", "cloudwatch:TagResource", "cloudwatch:UntagResource"]
      Resource = ["arn:${local.partition}:cloudwatch:${var.region}:${local.account}:alarm:${var.service}-${env}-*"]
    },
    {
      Sid      = "WebSocketApi"
      Action   = ["apigateway:GET", "apigateway:POST", "apigateway:PATCH", "apigateway:DELETE", "apigateway:PUT"]
      Resource = ["arn:${local.partition}:apigateway:${var.region}::/apis", "arn:${local.partition}:apigateway:${var.region}::/apis/*", "arn:${local.partition}:apigateway:${var.region}::/tags/*"]
    },
    {
      Sid = "Edge"
      Action = ["cloudfront:CreateDistribution", "cloudfront:UpdateDistribution", "cloudfront:DeleteDistribution",
        "cloudfront:GetDistribution", "cloudfront:TagResource", "cloudfront:ListTagsForResource",
        "cloudfront:CreateOriginRequestPolicy", "cloudfront:UpdateOriginRequestPolicy", "cloudfront:DeleteOriginRequestPolicy",
      "cloudfront:GetOriginRequestPolicy", "cloudfront:ListCachePolicies", "cloudfront:GetCachePolicy"]
      Resource = [
        "arn:${local.partition}:cloudfront::${local.account}:distribution/*",
        "arn:${local.partition}:cloudfront::${local.account}:origin-request-policy/*",
        "arn:${local.partition}:cloudfront::${local.account}:cache-policy/*",
      ]
    },
    {
      Sid = "Waf"
      Action = ["wafv2:CreateWebACL", "wafv2:UpdateWebACL", "wafv2:DeleteWebACL", "wafv2:GetWebACL",
        "wafv2:PutLoggingConfiguration", "wafv2:GetLoggingConfiguration", "wafv2:DeleteLoggingConfiguration",
      "wafv2:TagResource", "wafv2:ListTagsForResource", "wafv2:AssociateWebACL"]
      Resource = [
        "arn:${local.partition}:wafv2:us-east-1:${local.account}:global/webacl/${var.service}-${env}/*",
        "arn:${local.partition}:wafv2:us-east-1:${local.account}:global/managedruleset/*/*",
      ]
    },
  ] }
}

resource "aws_iam_role_policy" "deploy" {
  for_each = toset(var.environments)

  name = "deploy"
  role = aws_iam_role.deploy[each.key].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [for s in local.deploy_statements[each.key] : merge({ Effect = "Allow" }, s)]
  })
}
