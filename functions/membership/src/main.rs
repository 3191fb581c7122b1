//! `MembershipFunction`'s entry point: configuration, logging and clients once per process, then
//! the runtime loop. A failed batch is the invocation's error: the pipe reads it again.

use ws_membership::{Config, Membership, SVC};
use ws_shared::dynamo::DynamoStore;
use ws_shared::log::fail_init;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = Config::from_env(&ws_shared::config::process_env).unwrap_or_else(|e| fail_init(SVC, &e));
    ws_shared::log::init(SVC, config.common.log_level);
    let sdk = ws_shared::aws::load_config(ws_shared::aws::Roots::Amazon).await;
    let region = ws_shared::config::table_region(&ws_shared::config::process_env);
    let store = DynamoStore::from_sdk(&sdk, config.table.clone(), region);
    let handler = Membership::new(store, &config, std::sync::Arc::new(ws_shared::output::Stdout));
    ws_shared::serve::serve_or_fail(async |event, request_id, deadline| {
        handler.handle(event, request_id, deadline).await
    })
    .await
}
