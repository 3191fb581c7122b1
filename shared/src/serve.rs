//! The one way a function runs under Lambda: its handler answers each event the runtime hands
//! over, with the invocation's request id and deadline.

use std::future::Future;

use lambda_runtime::{LambdaEvent, service_fn};
use serde::Serialize;
use serde_json::Value;

/// A function's handler: one event in, one answer out, never an error (every failure is an
/// answer: a status code, a Deny), before `deadline_ms` (epoch milliseconds, Lambda's
/// `Context::deadline`).
pub trait Handler {
    type Answer: Serialize;

    fn handle(&self, event: Value, request_id: &str, deadline_ms: u64) -> impl Future<Output = Self::Answer>;
}

/// Serves `handler` under the Lambda runtime until the runtime stops.
pub async fn serve(handler: impl Handler) -> Result<(), lambda_runtime::Error> {
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, lambda_runtime::Error>(
            handler.handle(event.payload, &event.context.request_id, event.context.deadline).await,
        )
    }))
    .await
}
