//! `WebSocketRoutes`' entry point: configuration, logging and the table's client once per process,
//! then the runtime loop.

use std::sync::Arc;

use ws_routes::{Config, Routes, SVC};
use ws_shared::dynamo::DynamoStore;
use ws_shared::log::fail_init;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = Config::from_env(&ws_shared::config::process_env).unwrap_or_else(|e| fail_init(SVC, &e));
    ws_shared::log::init(SVC, config.common.log_level);
    let sdk = ws_shared::aws::load_config(ws_shared::aws::Roots::Amazon).await;
    let region = ws_shared::config::table_region(&ws_shared::config::process_env);
    let store = DynamoStore::from_sdk(&sdk, config.table.clone(), region);
    let poster = ws_responder::management::ManagementApi::new(&sdk, ws_shared::aws::Roots::Amazon);
    let handler = Routes::new(store, &config, Arc::new(ws_shared::output::Stdout)).with_poster(poster);
    ws_shared::serve::serve(async |event, request_id, deadline| handler.handle(event, request_id, deadline).await).await
}
