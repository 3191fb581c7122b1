//! One invocation on its way to an instance: what the pool hands over and the Runtime API serves
//! to the function. Its own module so the pool and the Runtime API each depend on it, not on each
//! other.

use bytes::Bytes;
use tokio::sync::oneshot;

use super::InvokeError;

#[derive(Debug)]
pub(super) struct Job {
    pub(super) request_id: String,
    pub(super) payload: Bytes,
    pub(super) deadline_ms: i64,
    pub(super) respond: oneshot::Sender<Result<Bytes, InvokeError>>,
}
