//! The one way a function runs under Lambda: its handler answers each event the runtime hands
//! over, with the invocation's request id and deadline.

use lambda_runtime::{LambdaEvent, service_fn};
use serde::Serialize;
use serde_json::Value;

/// Serves `handle` under the Lambda runtime until the runtime stops. `handle` is a handler's
/// `handle`: one event in, one answer out, never an error (every failure is an answer: a status
/// code, a Deny), before `deadline_ms` (epoch milliseconds, Lambda's `Context::deadline`).
pub async fn serve<A: Serialize>(handle: impl AsyncFn(Value, &str, u64) -> A) -> Result<(), lambda_runtime::Error> {
    let handle = &handle;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, lambda_runtime::Error>(handle(event.payload, &event.context.request_id, event.context.deadline).await)
    }))
    .await
}
