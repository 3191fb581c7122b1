environment = "dev"
region      = "us-east-1"
authorizer = {
  issuer    = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_DEVPOOL00"
  audiences = ["dev-client-id"]
  token_use = "access"
}
log_retention_days = 14
