//! How fast a fan-out posts (docs/design.md §9): the Management API's request rate is a quota per account
//! and region, shared by every API and every concurrent fan-out, and a refused post
//! (`429 LimitExceededException`) was not delivered. So the number of posts in flight adapts the
//! way TCP's congestion window does: it doubles while posts succeed and no throttle has been met
//! (slow start), then grows by one per window of successes (additive increase), and shrinks on a
//! throttle, at most once per window (the throttles of posts already in flight when it shrank say
//! nothing new). It never exceeds `FANOUT_CONCURRENCY`, and `FANOUT_MAX_RATE` (posts/s, optional)
//! caps the rate with a token bucket.
//!
//! The quota is a token bucket too, and its burst lets slow start run far past what the quota
//! takes before the first refusal; at a window of a few posts one more is a large step over it.
//! So a throttle shrinks the window by [`DECREASE`] ([`SLOW_START_EXIT`] when it ends slow start),
//! and to no more than the posts that went through within the last smoothed latency — the rate
//! the quota let through times a post's latency, which is the window the quota can take; and near
//! the window at which the quota last refused, the window grows [`PROBE`] times as fast. That
//! count can be short — posts that ended while the fan-out was busy, whose endings it has not seen
//! yet, or a rate still doubling — so when it cuts deeper than the decrease would, the window
//! slow-starts back towards the decrease, and a throttle on the way ends that (the count was
//! right; measured at 5,000 posts/s with a fan-out stalled ~75 ms every 1,000 posts, it had cut
//! to 3 posts, then taken seconds of additive increase: 0.56× the quota).
//! (Measured against the quota stand-in, 2,000 connections at 500 posts/s: 1.4–2.3 % of requests
//! refused; 6.3–7.5 % without this cap, the halving, the slower probe and the blame rule below.)
//!
//! Segments of one fan-out running at once (docs/design.md §13) each pace themselves this way
//! against the one quota, without the slower probe ([`Pacer::shared`]): the window a segment was
//! refused at is its share at that moment, and growing at the full rate near it is what lets the
//! shares even out (each throttle cuts the larger windows by more).
//!
//! Throttling confined to one connection (its buffer is full: API Gateway answers that with 429
//! too) cannot be told from the quota's by one refusal, so a connection's first throttle is taken
//! for the quota's and shrinks the window like any other. Its retry tells: throttled again while
//! the posts that ended just before mostly went through, the throttle is the connection's own — a
//! strike against it (given up after [`MAX_STRIKES`]), backed off alone ([`retry_delay`]), and
//! when its first throttle was what last shrank the window, that shrink is undone (as TCP undoes a
//! decrease that a spurious timeout caused), so one client that is not reading does not slow the
//! others. (Blaming a first throttle on its connection whenever the others went through would let
//! every quota refusal at the top of the window pass for a full client's until a tenth of the
//! recent posts were refused.)

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Posts in flight when a fan-out starts.
pub const INITIAL_WINDOW: f64 = 4.0;
/// What the window is multiplied by on a throttle.
pub const DECREASE: f64 = 0.7;
/// What the window is multiplied by on the throttle that ends slow start (the window may have
/// doubled past what the quota takes in the last round trip).
pub const SLOW_START_EXIT: f64 = 0.5;
/// The additive increase near the window at which the quota last refused, per window of posts.
pub const PROBE: f64 = 0.25;
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
    /// The smoothed latency of the posts that went through (`None` before the first).
    latency: Option<Duration>,
    /// What the last shrink changed, to undo it if its throttle proves one connection's own.
    undo: Option<Undo>,
    /// When the posts that went through within about the last latency ended.
    through_at: VecDeque<Instant>,
    /// The window when the quota last refused a post: near it, the window grows slower.
    ceiling: Option<f64>,
    /// After a cut deeper than the decrease, slow start again up to this (see [`Pacer::ended`]).
    recover_to: Option<f64>,
    /// Other segments of the same fan-out share the quota (see [`Pacer::shared`]).
    shared: bool,
}

/// The window, slow start and ceiling before a shrink, and the post whose throttle made it.
#[derive(Debug, Clone, Copy)]
struct Undo {
    ticket: u64,
    window: f64,
    slow_start: bool,
    ceiling: Option<f64>,
    recover_to: Option<f64>,
}

/// Whether the connection of a post was throttled before, as far as pacing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Earlier {
    /// Never: a throttle now is taken for the quota's.
    Never,
    /// In an earlier invocation of the fan-out (its start number means nothing here).
    Elsewhere,
    /// In this invocation, as the post with this start number.
    Post(u64),
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
            latency: None,
            undo: None,
            through_at: VecDeque::new(),
            ceiling: None,
            recover_to: None,
            shared: false,
        }
    }

    /// A pacer for one of several segments that run at once against one quota.
    #[must_use]
    pub fn shared(mut self) -> Self {
        self.shared = true;
        self
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

    /// Records how the post with start number `ticket` ended (`now`, `took` after it started), and
    /// whether its connection was throttled before. Returns true when a throttle was this connection's own
    /// (throttled before, and the posts that ended just before it mostly went through): the window
    /// is left as it is — and the shrink its first throttle made is undone — so one client that is
    /// not reading does not slow the others.
    pub fn ended(&mut self, ticket: u64, signal: Signal, took: Duration, earlier: Earlier, now: Instant) -> bool {
        let latency = self.latency.unwrap_or_default();
        while self.through_at.front().is_some_and(|at| now.saturating_duration_since(*at) > latency) {
            self.through_at.pop_front();
        }
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
                self.through_at.push_back(now);
                // An exponentially weighted mean, as TCP smooths its round-trip time (gain 1/8).
                self.latency = Some(self.latency.map_or(took, |mean| mean.mul_f64(0.875) + took.mul_f64(0.125)));
                // Near where the quota last refused, probe a quarter as fast: at a window of a few
                // posts one more is a large step over the quota.
                let probing = !self.shared && self.ceiling.is_some_and(|ceiling| self.window >= ceiling - 1.0);
                self.window += match (self.slow_start, probing) {
                    (true, _) => 1.0,
                    (false, false) => 1.0 / self.window,
                    (false, true) => PROBE / self.window,
                };
                self.window = self.window.min(self.max);
                if self.recover_to.is_some_and(|to| self.window >= to) {
                    self.slow_start = false;
                    self.recover_to = None;
                }
                false
            }
            Signal::Throttled if others_through && earlier != Earlier::Never => {
                if let Some(undo) = self.undo.filter(|undo| Earlier::Post(undo.ticket) == earlier) {
                    self.window = self.window.max(undo.window);
                    self.slow_start = undo.slow_start;
                    self.recover_to = undo.recover_to;
                    // A full client's refusal says nothing of where the quota is.
                    self.ceiling = undo.ceiling;
                    self.undo = None;
                }
                true
            }
            Signal::Throttled => {
                if ticket > self.shrink_from {
                    self.undo = Some(Undo {
                        ticket,
                        window: self.window,
                        slow_start: self.slow_start,
                        ceiling: self.ceiling,
                        recover_to: self.recover_to,
                    });
                    self.ceiling = Some(self.window);
                    // No more than went through in the last latency: what the quota lets through.
                    #[allow(clippy::cast_precision_loss)] // a count of posts
                    let delivered = self.through_at.len() as f64;
                    let cap = if self.latency.is_some() { delivered } else { f64::MAX };
                    // Leaving slow start the window may have doubled past the quota: halve it.
                    let decrease = if self.slow_start { SLOW_START_EXIT } else { DECREASE };
                    let decreased = (self.window * decrease).max(1.0);
                    let cut = decreased.min(cap).max(1.0);
                    // The count that capped it may be short (posts whose endings the fan-out has
                    // not seen yet: it was busy, or the rate was still doubling), so a cut deeper
                    // than the decrease slow-starts back towards it; a throttle on the way says
                    // the cap was right, and ends that without another.
                    let recovering = self.recover_to.is_some();
                    self.recover_to = (cut < decreased && !recovering).then_some(decreased);
                    self.slow_start = self.recover_to.is_some();
                    self.window = cut;
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

    const MS: Duration = Duration::from_millis(1);

    /// Starts `n` posts at `at` and ends each as `signal` at `at`, each connection's first try;
    /// returns the last ending's answer.
    fn round(pacer: &mut Pacer, n: usize, signal: Signal, at: Instant) -> bool {
        let tickets: Vec<u64> = (0..n).map(|_| pacer.start(at)).collect();
        tickets.iter().fold(false, |_, t| pacer.ended(*t, signal, MS, Earlier::Never, at))
    }

    #[test]
    fn the_window_doubles_in_slow_start_halves_when_it_ends_then_shrinks_once_per_window() {
        let now = Instant::now();
        let mut pacer = Pacer::new(100, None, now);
        assert_eq!(pacer.window(), 4);
        round(&mut pacer, 4, Signal::Through, now);
        assert_eq!(pacer.window(), 8, "one window of successes doubles it");
        round(&mut pacer, 8, Signal::Through, now);
        assert_eq!(pacer.window(), 16);
        let tickets: Vec<u64> = (0..16).map(|_| pacer.start(now)).collect();
        assert!(!pacer.ended(tickets[0], Signal::Throttled, MS, Earlier::Never, now));
        assert_eq!(pacer.window(), 8, "the throttle that ends slow start halves it");
        for t in &tickets[1..] {
            pacer.ended(*t, Signal::Throttled, MS, Earlier::Never, now);
        }
        assert_eq!(pacer.window(), 8, "throttles of posts already in flight do not shrink it again");
        round(&mut pacer, 1, Signal::Throttled, now);
        assert_eq!(pacer.window(), 5, "later, 8 × 0.7");
    }

    /// A window grown to 64 by posts of 30 ms, then a quota that lets 5 through per 30 ms and
    /// refuses one: returns the pacer and when the refusal ended.
    fn cut_by_a_quota_of_five_per_latency() -> (Pacer, Instant) {
        let start = Instant::now();
        let mut pacer = Pacer::new(1000, None, start);
        let latency = Duration::from_millis(30);
        let mut at = start;
        for n in [4, 8, 16, 32] {
            at += latency;
            let tickets: Vec<u64> = (0..n).map(|_| pacer.start(at)).collect();
            for t in tickets {
                pacer.ended(t, Signal::Through, latency, Earlier::Never, at + latency);
            }
        }
        assert_eq!(pacer.window(), 64);
        at += latency * 4;
        round(&mut pacer, 5, Signal::Through, at);
        round(&mut pacer, 1, Signal::Throttled, at + MS);
        (pacer, at + MS)
    }

    #[test]
    fn a_throttle_shrinks_the_window_to_what_went_through_in_the_last_latency() {
        let (pacer, _) = cut_by_a_quota_of_five_per_latency();
        assert_eq!(pacer.window(), 5, "what went through within a latency, not half of 64+5");
    }

    #[test]
    fn a_cut_deeper_than_the_decrease_slow_starts_back_to_it_and_a_throttle_on_the_way_ends_that() {
        // GIVEN a window cut to 5 where halving would have left 34 (the count may have been short),
        // whose first window of posts went through: slow start doubled it
        let recovering = || {
            let (mut pacer, at) = cut_by_a_quota_of_five_per_latency();
            round(&mut pacer, 5, Signal::Through, at);
            assert_eq!(pacer.window(), 10);
            (pacer, at)
        };
        // WHEN its posts go on going through, THEN it doubles up to 34, then grows by one
        let (mut pacer, at) = recovering();
        round(&mut pacer, 10, Signal::Through, at);
        round(&mut pacer, 20, Signal::Through, at);
        assert!((35.0..35.5).contains(&pacer.window), "34.5 reached, then additive: {}", pacer.window);
        assert!(!pacer.slow_start);

        let (mut pacer, at) = recovering();
        // WHEN the quota refuses on the way back (nothing went through within the last latency),
        // THEN that cut stands: the window grows by one per window of posts, not doubling again
        let later = at + Duration::from_millis(100);
        round(&mut pacer, 1, Signal::Throttled, later);
        assert_eq!(pacer.window(), 1);
        round(&mut pacer, 1, Signal::Through, later);
        round(&mut pacer, 2, Signal::Through, later);
        assert!((2.8..3.0).contains(&pacer.window), "1, 2, about 3, not 1, 2, 4: {}", pacer.window);
        assert!(!pacer.slow_start);
    }

    #[test]
    fn near_the_window_the_quota_refused_at_the_window_grows_a_quarter_as_fast() {
        let now = Instant::now();
        let mut pacer = Pacer::new(100, None, now);
        round(&mut pacer, 12, Signal::Through, now);
        assert_eq!(pacer.window(), 16);
        round(&mut pacer, 1, Signal::Throttled, now);
        assert_eq!(pacer.window(), 8, "halved: slow start ended at 16");
        // Far from 16 the window grows by one per window of posts…
        let before = pacer.window;
        round(&mut pacer, 8, Signal::Through, now);
        assert!((pacer.window - before - 1.0).abs() < 0.1, "{} → {}", before, pacer.window);
        pacer.window = 15.0;
        // …and within one of it by a quarter of that.
        round(&mut pacer, 15, Signal::Through, now);
        assert!((pacer.window - 15.0 - PROBE).abs() < 0.02, "{}", pacer.window);
    }

    /// A segment shares the quota with the others of its fan-out: the window it was refused at is
    /// its share then, not the quota's, so it grows on at the full additive rate (a slower probe
    /// near it locked the segments' first, uneven shares in: measured side by side, 4 segments
    /// of 8,000 connections on a quota of 1,000/s, the last finished 1.3–1.8× later than the
    /// first, at 0.95× the quota, with it; 1.2–1.3× and 1.0× without it, for 8–11 % of requests
    /// refused instead of 5–7 %).
    #[test]
    fn a_segment_grows_past_the_window_it_was_refused_at_at_the_full_rate() {
        let now = Instant::now();
        let mut pacer = Pacer::new(100, None, now).shared();
        round(&mut pacer, 12, Signal::Through, now);
        round(&mut pacer, 1, Signal::Throttled, now);
        pacer.window = 15.0;
        round(&mut pacer, 15, Signal::Through, now);
        assert!((pacer.window - 16.0).abs() < 0.05, "{}", pacer.window);
    }

    #[test]
    fn a_first_throttle_is_the_quotas_and_a_repeat_while_the_others_go_through_is_the_connections() {
        let now = Instant::now();
        let mut pacer = Pacer::new(100, None, now);
        round(&mut pacer, 20, Signal::Through, now);
        let window = pacer.window();
        let first = pacer.start(now);
        assert!(!pacer.ended(first, Signal::Throttled, MS, Earlier::Never, now), "one refusal cannot tell");
        assert!(pacer.window() < window, "so it shrinks the window like the quota's");
        round(&mut pacer, 20, Signal::Through, now);
        let retry = pacer.start(now);
        assert!(
            pacer.ended(retry, Signal::Throttled, MS, Earlier::Post(first), now),
            "throttled again while everyone else went through: it is this connection"
        );
        assert!(pacer.window() >= window, "and the shrink its first throttle made is undone");
        assert!(pacer.slow_start, "slow start too");
        assert_eq!(pacer.ceiling, None, "and the ceiling: a full client's refusal says nothing of the quota");
        let elsewhere = pacer.start(now);
        assert!(pacer.ended(elsewhere, Signal::Throttled, MS, Earlier::Elsewhere, now), "a retry from a cursor too");
        round(&mut pacer, 10, Signal::Throttled, now);
        let t = pacer.start(now);
        assert!(!pacer.ended(t, Signal::Throttled, MS, Earlier::Elsewhere, now), "the quota: nobody's fault");
    }

    #[test]
    fn a_repeat_throttle_undoes_only_the_shrink_its_own_first_throttle_made() {
        let now = Instant::now();
        let mut pacer = Pacer::new(100, None, now);
        round(&mut pacer, 20, Signal::Through, now);
        let first = pacer.start(now);
        pacer.ended(first, Signal::Throttled, MS, Earlier::Never, now);
        round(&mut pacer, 30, Signal::Through, now);
        let other = pacer.start(now);
        pacer.ended(other, Signal::Throttled, MS, Earlier::Never, now);
        let shrunk = pacer.window();
        round(&mut pacer, 30, Signal::Through, now);
        let grown = pacer.window();
        let retry = pacer.start(now);
        assert!(pacer.ended(retry, Signal::Throttled, MS, Earlier::Post(first), now));
        assert_eq!(pacer.window(), grown, "the last shrink was another connection's: it stands ({shrunk} then)");
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
                pacer.ended(t, if through { Signal::Through } else { Signal::Throttled }, MS, Earlier::Never, now);
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
