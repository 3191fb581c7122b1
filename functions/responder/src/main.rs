//! `WebSocketResponder`'s entry point: configuration, logging and the SDK config once per
//! process; Management API clients are built per endpoint on first use and kept.

// The fan-out future (a stream of SDK calls inside the runtime loop) nests deeper than the
// default limit of 128 when the compiler computes its layout.
#![recursion_limit = "256"]

use std::sync::Arc;

use ws_responder::management::ManagementApi;
use ws_responder::{Config, Responder, SVC};
use ws_shared::dynamo::DynamoStore;
use ws_shared::log::fail_init;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = Config::from_env(&ws_shared::config::process_env).unwrap_or_else(|e| fail_init(SVC, &e));
    ws_shared::log::init(SVC, config.common.log_level);
    let sdk = ws_shared::aws::load_config(config.tls_roots).await;
    let region = ws_shared::config::table_region(&ws_shared::config::process_env);
    let store = config.table.as_ref().map(|table| DynamoStore::from_sdk(&sdk, table, region));
    let handler =
        Responder::new(ManagementApi::new(&sdk, config.tls_roots), store, &config, Arc::new(ws_shared::output::Stdout));
    ws_shared::serve::serve(async |event, request_id, deadline| handler.handle(event, request_id, deadline).await).await
}
