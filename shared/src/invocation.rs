//! How every handler runs one invocation: its span (`requestId`, `coldStart`), its counters and
//! EMF line, and a panic turned into a generic failure ([`Invocations::run`]).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::FutureExt as _;

use tracing::Instrument as _;
use tracing::field::Empty;

use crate::clock::Clock;
use crate::metrics::{Counters, Metric, Metrics};

/// The per-process state of a handler's invocations: where its counters go and whether the
/// next invocation is the process's first.
#[derive(Debug)]
pub struct Invocations<M: Metric> {
    metrics: Metrics<M>,
    cold_start: ColdStart,
}

impl<M: Metric> Invocations<M> {
    pub fn new(metrics: Metrics<M>) -> Self {
        Self { metrics, cold_start: ColdStart::new() }
    }

    /// Where the counters go: for counters of concurrent tasks, merged into the invocation's.
    pub fn metrics(&self) -> &Metrics<M> {
        &self.metrics
    }

    /// Runs `work` as one invocation: in its span, with fresh counters that are written as one
    /// EMF line at the end whatever happened. A panic in `work` is logged with the invocation's
    /// fields, counted as [`Metric::ERRORS`], and answered with `on_panic()`.
    pub async fn run<T>(
        &self,
        request_id: &str,
        clock: &dyn Clock,
        work: impl AsyncFnOnce(&mut Counters<'_, M>) -> T,
        on_panic: impl FnOnce() -> T,
    ) -> T {
        let span = span(request_id, &self.cold_start);
        async {
            let mut counters = self.metrics.start();
            let outcome = if let Some(outcome) = guarded(work(&mut counters)).await {
                outcome
            } else {
                counters.incr(M::ERRORS);
                on_panic()
            };
            counters.emit(clock.now(), request_id);
            outcome
        }
        .instrument(span)
        .await
    }
}

/// True for the first invocation a process serves (the `coldStart` log field).
#[derive(Debug)]
pub struct ColdStart(AtomicBool);

impl ColdStart {
    pub const fn new() -> Self {
        Self(AtomicBool::new(true))
    }

    /// `true` the first time only.
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

impl Default for ColdStart {
    fn default() -> Self {
        Self::new()
    }
}

/// The span a handler runs one invocation in: `requestId` now, `coldStart` on the first one,
/// `connectionId` and `correlationId` recorded when known. Opened at ERROR level so no
/// `LOG_LEVEL` filters it out: every line of the invocation, an ERROR included, carries its
/// fields.
pub fn span(request_id: &str, cold_start: &ColdStart) -> tracing::Span {
    let span = tracing::error_span!(
        "invocation",
        requestId = request_id,
        connectionId = Empty,
        correlationId = Empty,
        coldStart = Empty,
    );
    if cold_start.take() {
        span.record("coldStart", true);
    }
    span
}

/// Runs one invocation's work; `None` when it panicked. The panic is logged at ERROR inside the
/// invocation's span (so with its `requestId`), and the process keeps serving: the handler answers
/// 500 (a Deny for the authorizer) instead of losing the instance. This needs the release profile's
/// `panic = "unwind"` (see the workspace `Cargo.toml` for why).
pub async fn guarded<T>(work: impl Future<Output = T>) -> Option<T> {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(value) => Some(value),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-text panic payload".to_owned());
            tracing::error!(panic = message, "the handler panicked; answering with a generic failure");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_becomes_none_and_the_next_invocation_is_served() {
        let panicked = guarded(async { panic!("bug: index out of range") }).await;
        assert_eq!(panicked, None::<u16>);
        assert_eq!(guarded(async { 200 }).await, Some(200));
    }

    #[test]
    fn only_the_first_invocation_is_cold() {
        let cold = ColdStart::new();
        assert!(cold.take());
        assert!(!cold.take());
        assert!(!cold.take());
    }
}
