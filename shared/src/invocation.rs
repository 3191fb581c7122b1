//! Per-process invocation facts.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing::field::Empty;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_invocation_is_cold() {
        let cold = ColdStart::new();
        assert!(cold.take());
        assert!(!cold.take());
        assert!(!cold.take());
    }
}
