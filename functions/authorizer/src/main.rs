//! `ConnectAuthorizer`'s entry point: configuration, logging and the JWKS client once per
//! process; keys are fetched on the first invocation and cached.

use std::sync::Arc;

use ws_authorizer::jwks::HttpJwks;
use ws_authorizer::{Authorizer, Config, SVC};
use ws_shared::log::fail_init;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = Config::from_env(&ws_shared::config::process_env).unwrap_or_else(|e| fail_init(SVC, &e));
    ws_shared::log::init(SVC, config.common.log_level);
    let jwks = HttpJwks::new(config.jwks_url.clone()).unwrap_or_else(|e| fail_init(SVC, &e));
    let handler = Authorizer::new(config, jwks, Arc::new(ws_shared::output::Stdout));
    ws_shared::serve::serve(async |event, request_id, deadline| handler.handle(event, request_id, deadline).await).await
}
