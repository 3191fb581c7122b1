//! `ConnectAuthorizer`'s entry point: configuration, logging and the JWKS client once per
//! process; keys are fetched on the first invocation and cached.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use ws_authorizer::jwks::HttpJwks;
use ws_authorizer::{Authorizer, Config, SVC};
use ws_shared::config::process_env;
use ws_shared::log::fail_init;
use ws_shared::output::Stdout;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = Config::from_env(&process_env).unwrap_or_else(|e| fail_init(SVC, &e));
    ws_shared::log::init(SVC, config.common.log_level);
    let jwks = HttpJwks::new(config.jwks_url.clone()).unwrap_or_else(|e| fail_init(SVC, &e));
    let handler = Authorizer::new(config, jwks, Arc::new(Stdout));
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, lambda_runtime::Error>(
            handler.handle(event.payload, &event.context.request_id, event.context.deadline).await,
        )
    }))
    .await
}
