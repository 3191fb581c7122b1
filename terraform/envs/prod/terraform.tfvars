environment = "prod"
region      = "us-east-1"
authorizer = {
  issuer    = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_PRODPOOL0"
  audiences = ["prod-client-id"]
  token_use = "access"
}
# CloudFront + WAF in front; the origin secret comes from the environment's CI secret
# (TF_VAR_origin_verify_secret).
edge                    = true
deletion_protection     = true
waf_rate_limit_per_5min = 2000
throttling_rate_limit   = 1000
throttling_burst_limit  = 2000
log_retention_days      = 90
