//! The schedules the deployed stack runs, run locally: the expiry sweep (`terraform/modules/sweep`
//! invokes the responder with `{"action":"disconnect","expired":true}` every minute). Each run
//! continues with the answer's cursor until there is none, as the state machine would.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::state::App;

/// The function the sweep invokes (the manifest's direct-invoke responder).
pub const SWEEP_FUNCTION: &str = "WebSocketResponder";

/// Starts the expiry sweep every `every` until ws-local stops; nothing when the manifest has no
/// responder.
pub fn spawn_sweep(app: &Arc<App>, every: Duration) {
    if app.manifest.function(SWEEP_FUNCTION).is_none() {
        return;
    }
    let app = Arc::clone(app);
    let mut shutdown = app.shutdown_signal();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
            sweep(&app).await;
        }
    });
}

/// One sweep: invokes the responder, then again with each cursor (at most 100 times).
async fn sweep(app: &App) {
    let mut event = json!({"action": "disconnect", "expired": true});
    let mut closed = 0;
    for _ in 0..100 {
        let Some(Ok(answer)) = app.lambda.invoke(SWEEP_FUNCTION, Bytes::from(event.to_string())).await else {
            app.logs().local("expiry sweep: the responder failed; the next run tries again");
            return;
        };
        let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        closed += answer["closed"].as_u64().unwrap_or(0);
        match answer.get("cursor") {
            Some(cursor) => event["cursor"] = cursor.clone(),
            None => break,
        }
    }
    if closed > 0 {
        app.logs().local(&format!("expiry sweep: closed {closed} connection(s) whose token expired"));
    }
}
