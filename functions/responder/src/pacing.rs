//! How fast a fan-out posts (DESIGN §9): the Management API's request rate is a quota per account
//! and region, shared by every API and every concurrent fan-out, and a refused post
//! (`429 LimitExceededException`) was not delivered. So the number of posts in flight adapts the
//! way TCP's congestion window does: it doubles while posts succeed and no throttle has been met
//! (slow start), then grows by one per window of successes (additive increase), and shrinks by
//! [`DECREASE`] on a throttle, at most once per window (multiplicative decrease: the throttles of
//! posts already in flight when it shrank say nothing new). It never exceeds `FANOUT_CONCURRENCY`,
//! and `FANOUT_MAX_RATE` (posts/s, optional) caps the rate with a token bucket.
//!
//! Throttling confined to one connection (its buffer is full: API Gateway answers that with 429
//! too) is told apart from the quota by the others: a throttle counts against the connection only
//! when the posts that ended just before it mostly went through. Such a connection is backed off
//! alone ([`retry_delay`]) and given up after [`MAX_STRIKES`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Posts in flight when a fan-out starts.
pub const INITIAL_WINDOW: f64 = 4.0;
/// What the window is multiplied by on a throttle.
pub const DECREASE: f64 = 0.7;
/// Throttles that count against one connection before it is given up (`failed`).
pub const MAX_STRIKES: u8 = 4;
/// Tries of one connection, throttled or not, across a fan-out's invocations, before it is given
/// up: a quota that never lets a post through must not loop a state machine for ever.
pub const MAX_TRIES: u8 = 12;
/// Outcomes remembered to tell a connection's own throttling from the quota's.
const RECENT: usize = 32;
/// A throttle counts against its connection when at least this share of the recent outcomes
/// (other than this one) went through.
const OTHERS_THROUGH: f64 = 0.9;
/// The first backoff of a throttled connection; doubles per try up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What the Management API said to one post, as far as pacing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Delivered, or an answer that says nothing about the rate (410, another error).
    Through,
    /// `429 LimitExceededException`.
    Throttled,
}

/// The adaptive window of posts in flight, and the optional rate cap.
#[derive(Debug, Clone)]
pub struct Pacer {
    window: f64,
    max: f64,
    slow_start: bool,
    /// Posts started so far; a post is known by its start number.
    started: u64,
    /// A throttle of a post started before this one does not shrink the window again.
    shrink_from: u64,
    recent: VecDeque<Signal>,
    rate: Option<Bucket>,
}

/// A token bucket of `rate` posts/s, holding at most a tenth of a second's worth (at least one).
#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
    }
}

impl Pacer {
    /// A pacer for at most `max` posts in flight and, when given, `max_rate` posts/s.
    pub fn new(max: u32, max_rate: Option<u32>, now: Instant) -> Self {
        let max = f64::from(max.max(1));
        Self {
            window: INITIAL_WINDOW.min(max),
            max,
            slow_start: true,
            started: 0,
            shrink_from: 0,
            recent: VecDeque::with_capacity(RECENT),
            rate: max_rate.map(|rate| {
                let rate = f64::from(rate.max(1));
                let burst = (rate / 10.0).max(1.0);
                Bucket { rate, burst, tokens: burst, at: now }
            }),
        }
    }

    /// Posts allowed in flight now.
    pub fn window(&self) -> usize {
        // The window is between 1 and `max` (at most 1000): the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let window = self.window.floor() as usize;
        window.max(1)
    }

    /// How long until the rate cap lets one more post start (`None`: now).
    pub fn wait(&mut self, now: Instant) -> Option<Duration> {
        let bucket = self.rate.as_mut()?;
        bucket.refill(now);
        (bucket.tokens < 1.0).then(|| Duration::from_secs_f64((1.0 - bucket.tokens) / bucket.rate))
    }

    /// Records a post started now; returns its start number for [`Pacer::ended`].
    pub fn start(&mut self, now: Instant) -> u64 {
        if let Some(bucket) = self.rate.as_mut() {
            bucket.refill(now);
            bucket.tokens -= 1.0;
        }
        self.started += 1;
        self.started
    }

    /// Records how the post with start number `ticket` ended. Returns true when a throttle was this
    /// connection's alone (the posts that ended just before it mostly went through): it then
    /// leaves the window as it is, so one client that is not reading does not slow the others.
    pub fn ended(&mut self, ticket: u64, signal: Signal) -> bool {
        let through = self.recent.iter().filter(|s| **s == Signal::Through).count();
        #[allow(clippy::cast_precision_loss)] // at most RECENT
        let others_through =
            self.recent.len() >= RECENT / 2 && through as f64 >= OTHERS_THROUGH * self.recent.len() as f64;
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(signal);
        match signal {
            Signal::Through => {
                self.window += if self.slow_start { 1.0 } else { 1.0 / self.window };
                self.window = self.window.min(self.max);
                false
            }
            Signal::Throttled if others_through => true,
            Signal::Throttled => {
                if ticket > self.shrink_from {
                    self.window = (self.window * DECREASE).max(1.0);
                    self.slow_start = false;
                    self.shrink_from = self.started;
                }
                false
            }
        }
    }
}

/// How long a connection throttled `tries` times waits before its next try: exponential from
/// [`FIRST_BACKOFF`], capped at [`MAX_BACKOFF`], with full jitter from `jitter` (0..1).
pub fn retry_delay(tries: u8, jitter: f64) -> Duration {
    let exp = FIRST_BACKOFF.saturating_mul(1 << u32::from(tries.saturating_sub(1).min(10)));
    exp.min(MAX_BACKOFF).mul_f64(jitter.clamp(0.0, 1.0)).max(Duration::from_millis(5))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_window_doubles_in_slow_start_then_shrinks_once_per_window_on_throttles() {
        let now = Instant::now();
        let mut pacer = Pacer::new(100, None, now);
        assert_eq!(pacer.window(), 4);
        let tickets: Vec<u64> = (0..4).map(|_| pacer.start(now)).collect();
        for t in &tickets {
            pacer.ended(*t, Signal::Through);
        }
        assert_eq!(pacer.window(), 8, "one window of successes doubles it");
        let tickets: Vec<u64> = (0..8).map(|_| pacer.start(now)).collect();
        assert!(!pacer.ended(tickets[0], Signal::Throttled), "too few outcomes to blame one connection");
        assert_eq!(pacer.window(), 5, "8 × 0.7");
        for t in &tickets[1..] {
            pacer.ended(*t, Signal::Throttled);
        }
        assert_eq!(pacer.window(), 5, "throttles of posts already in flight do not shrink it again");
        let next = pacer.start(now);
        pacer.ended(next, Signal::Throttled);
        assert_eq!(pacer.window(), 3);
    }

    #[test]
    fn a_throttle_counts_against_its_connection_only_when_the_others_went_through() {
        let now = Instant::now();
        let mut pacer = Pacer::new(100, None, now);
        for _ in 0..20 {
            let t = pacer.start(now);
            pacer.ended(t, Signal::Through);
        }
        let window = pacer.window();
        let t = pacer.start(now);
        assert!(pacer.ended(t, Signal::Throttled), "everyone else went through: it is this connection");
        assert_eq!(pacer.window(), window, "one connection's throttle does not slow the others");
        for _ in 0..10 {
            let t = pacer.start(now);
            pacer.ended(t, Signal::Throttled);
        }
        let t = pacer.start(now);
        assert!(!pacer.ended(t, Signal::Throttled), "the quota: nobody's fault");
    }

    #[test]
    fn the_rate_cap_spaces_posts() {
        let now = Instant::now();
        let mut pacer = Pacer::new(100, Some(100), now);
        assert_eq!(pacer.wait(now), None);
        for _ in 0..10 {
            pacer.start(now);
        }
        let wait = pacer.wait(now).expect("the burst of a tenth of a second is spent");
        assert!(wait <= Duration::from_millis(10) && wait > Duration::ZERO, "{wait:?}");
        assert_eq!(pacer.wait(now + Duration::from_millis(10)), None);
    }

    proptest! {
        /// Whatever the API answers, the window stays between 1 and the configured maximum.
        #[test]
        fn the_window_stays_within_one_and_the_maximum(max in 1u32..1000, answers in proptest::collection::vec(any::<bool>(), 0..500)) {
            let now = Instant::now();
            let mut pacer = Pacer::new(max, None, now);
            for through in answers {
                let t = pacer.start(now);
                pacer.ended(t, if through { Signal::Through } else { Signal::Throttled });
                prop_assert!(pacer.window() >= 1 && pacer.window() <= max as usize);
            }
        }

        #[test]
        fn a_backoff_is_positive_and_at_most_two_seconds(tries in 0u8..=255, jitter in 0.0f64..=1.0) {
            let delay = retry_delay(tries, jitter);
            prop_assert!(delay > Duration::ZERO && delay <= MAX_BACKOFF);
        }
    }
}
