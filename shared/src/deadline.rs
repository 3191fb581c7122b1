//! The invocation's deadline (docs/design.md §8): every network call gets the time left *when it starts*,
//! minus a margin kept for answering, so a function answers in time whatever its dependencies do.
//!
//! Lambda hands the deadline as epoch milliseconds; it is turned into a monotonic [`Instant`]
//! once, at the start of the invocation, so later wall-clock jumps cannot stretch it.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// Time kept back from the deadline to serialise and return the answer.
pub const DEFAULT_MARGIN: Duration = Duration::from_millis(250);

/// The instant by which an answer must be on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// The invocation's deadline minus the margin.
    answer_by: Instant,
}

impl Deadline {
    /// The deadline of an invocation that ends at `deadline_ms` (epoch milliseconds, Lambda's
    /// `Context::deadline`) when it is `now`, keeping `margin` for the answer.
    pub fn from_epoch_millis(deadline_ms: u64, now: DateTime<Utc>, margin: Duration) -> Self {
        let now_ms = u64::try_from(now.timestamp_millis()).unwrap_or(0);
        let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
        Self::after(left.saturating_sub(margin))
    }

    /// A deadline `left` from now (margin already taken off).
    pub fn after(left: Duration) -> Self {
        Self { answer_by: Instant::now() + left }
    }

    /// The time a call starting now may take: what is left until the answer is due.
    pub fn budget(&self) -> Duration {
        self.answer_by.saturating_duration_since(Instant::now())
    }

    /// True when less than `need` is left.
    pub fn is_short_of(&self, need: Duration) -> bool {
        self.budget() < need
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_the_time_left_minus_the_margin_and_never_negative() {
        let now = DateTime::from_timestamp_millis(1_000_000).unwrap();
        let deadline = Deadline::from_epoch_millis(1_002_000, now, Duration::from_millis(500));
        let budget = deadline.budget();
        assert!(budget <= Duration::from_millis(1500) && budget > Duration::from_millis(1400), "{budget:?}");

        let past = Deadline::from_epoch_millis(999_000, now, DEFAULT_MARGIN);
        assert_eq!(past.budget(), Duration::ZERO);
        assert!(past.is_short_of(Duration::from_millis(1)));
    }

    #[test]
    fn the_budget_shrinks_as_time_passes() {
        let deadline = Deadline::after(Duration::from_millis(200));
        let first = deadline.budget();
        std::thread::sleep(Duration::from_millis(20));
        assert!(deadline.budget() + Duration::from_millis(15) <= first);
    }
}
