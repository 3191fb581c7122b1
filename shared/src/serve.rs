//! The one way a function runs under Lambda: its handler answers each event the runtime hands
//! over, with the invocation's request id and deadline.

use lambda_runtime::{LambdaEvent, service_fn};
use serde::Serialize;
use serde_json::Value;

/// Serves `handle` under the Lambda runtime until the runtime stops. `handle` is a handler's
/// `handle`: one event in, one answer out, never an error (every failure is an answer: a status
/// code, a Deny), before `deadline_ms` (epoch milliseconds, Lambda's `Context::deadline`).
pub async fn serve<A: Serialize>(handle: impl AsyncFn(Value, &str, u64) -> A) -> Result<(), lambda_runtime::Error> {
    serve_or_fail(async |event, request_id, deadline| {
        Ok::<_, std::convert::Infallible>(handle(event, request_id, deadline).await)
    })
    .await
}

/// Serves `handle` as [`serve`] does, for a function whose caller retries a failure (a pipe's
/// enrichment: the batch is read again): an `Err` is the invocation's error, with its message.
pub async fn serve_or_fail<A: Serialize, E: std::fmt::Display>(
    handle: impl AsyncFn(Value, &str, u64) -> Result<A, E>,
) -> Result<(), lambda_runtime::Error> {
    let handle = &handle;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(event.payload, &event.context.request_id, event.context.deadline)
            .await
            .map_err(|err| lambda_runtime::Error::from(err.to_string()))
    }))
    .await
}
