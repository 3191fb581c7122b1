//! Per-process invocation facts.

use std::sync::atomic::{AtomicBool, Ordering};

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
