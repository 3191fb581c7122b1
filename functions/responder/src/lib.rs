//! `WebSocketResponder`: posts one message to one connection, or fans it out to every
//! `CONNECTED` connection of a conversation or user. Invoked directly (Step Functions, other
//! Lambdas); it *returns* its result so a state machine can branch on `statusCode`.
//!
//! # Layout
//! - [`event`]: the input, validated into a target and the wire envelope.
//! - [`endpoint`]: which Management API endpoint to post through.
//! - [`cursor`]: where a fan-out that ran out of time continues.
//! - [`management`]: the notifier port ([`management::Poster`]) and its SDK adapter, one client
//!   per endpoint.
//! - [`Config`], [`Responder`], [`Outcome`]: configuration, the handler, and what it returns.
//!
//! Results: `200` posted; `410` gone (the record becomes `GONE` when `MARK_GONE=true`); `413`
//! message over 128 KB, refused before any call; `400` a bad event, with `error` saying what;
//! `500` anything else after the SDK's retries. Fan-out returns per-outcome counts, and a
//! `cursor` when it had to stop before its deadline with connections left (DESIGN §8).
//!
//! # Deadlines
//! Every network call gets the time left when it starts ([`Deadline`]): each index page, each
//! post, each `GONE` update. A fan-out reads the index page by page and posts while reading, up to
//! `FANOUT_CONCURRENCY` posts in flight; it starts a new post (or page) only while the time left
//! covers the slowest post seen so far, so it stops in time and answers with where it stopped.
//! Connections are taken in index order and each is attempted once, so the position of the last
//! one taken is the whole state a continuation needs: a cursor never repeats a post.

pub mod cursor;
pub mod endpoint;
pub mod event;
pub mod management;

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tracing::{debug, error, info, warn};
use ws_shared::aws::Roots;
use ws_shared::clock::{Clock, SystemClock};
use ws_shared::config::{self, Common, ConfigError, Env};
use ws_shared::deadline::{DEFAULT_MARGIN, Deadline};
use ws_shared::id::ConnectionId;
use ws_shared::invocation::Invocations;
use ws_shared::log::error_chain;
use ws_shared::metrics::{Counters, Metrics};
use ws_shared::output::LineSink;
use ws_shared::store::{Audience, ConnectionStore, GoneOutcome, StoreError};

use crate::endpoint::Endpoint;
use crate::event::{MAX_MESSAGE_BYTES, Request, Target};
use crate::management::{PostError, Poster};

/// The `svc` of every log line and the `Service` metric dimension.
pub const SVC: &str = "ws-responder";
ws_shared::metrics! {
    /// The EMF counters this function emits (a fan-out adds up its posts).
    pub enum Metric { Posted = "Posted", Gone = "Gone", Errors = "Errors" }
}

pub const WS_ENDPOINT: &str = "WS_ENDPOINT";
pub const MARK_GONE: &str = "MARK_GONE";
pub const FANOUT_CONCURRENCY: &str = "FANOUT_CONCURRENCY";
pub const FANOUT_PAGE_SIZE: &str = "FANOUT_PAGE_SIZE";
pub const TLS_ROOTS: &str = "TLS_ROOTS";

/// The least time a new post (or index page) needs before it is started; raised to the slowest
/// post seen in the invocation.
const MIN_CALL: Duration = Duration::from_millis(50);

/// What `WebSocketResponder` reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `WS_ENDPOINT`, when set.
    pub ws_endpoint: Option<Endpoint>,
    /// `TABLE_CONNECTIONS`: needed for fan-out and for `MARK_GONE`.
    pub table: Option<String>,
    /// `MARK_GONE`: mark a single target's record `GONE` on 410 (fan-out always does).
    pub mark_gone: bool,
    /// `FANOUT_CONCURRENCY`: posts in flight at once during a fan-out (1-1000, default 32).
    pub fanout_concurrency: NonZeroU32,
    /// `FANOUT_PAGE_SIZE`: index entries read per page (1-1000, default 1000): enough to keep the
    /// posts busy with few round trips, bounded so memory does not grow with the audience.
    pub fanout_page_size: NonZeroU32,
    /// `TLS_ROOTS`: whose certificates the HTTPS client trusts, `amazon` (default: every AWS
    /// endpoint and ACM-issued certificate) or `system` (a `WS_ENDPOINT` custom domain whose
    /// certificate was imported into ACM from another authority). See `ws_shared::aws`.
    pub tls_roots: Roots,
    pub common: Common,
}

impl Config {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let ws_endpoint = env
            .var(WS_ENDPOINT)
            .map(|raw| {
                Endpoint::parse(&raw, WS_ENDPOINT).map_err(|_| ConfigError::Invalid {
                    name: WS_ENDPOINT,
                    value: raw,
                    hint: "use the Management API's https:// endpoint, e.g. \
                           https://abc123.execute-api.us-east-1.amazonaws.com/prod (http:// only on loopback)",
                })
            })
            .transpose()?;
        let table = env.var(config::TABLE_CONNECTIONS).is_some().then(|| config::table_name(env)).transpose()?;
        let mark_gone = config::flag(env, MARK_GONE, false)?;
        if mark_gone && table.is_none() {
            return Err(ConfigError::Missing {
                name: config::TABLE_CONNECTIONS,
                hint: "MARK_GONE=true needs the connections table: set TABLE_CONNECTIONS (or MARK_GONE=false)",
            });
        }
        Ok(Self {
            ws_endpoint,
            table,
            mark_gone,
            fanout_concurrency: config::count(env, FANOUT_CONCURRENCY, 32, 1000, "use a whole number from 1 to 1000")?,
            fanout_page_size: config::count(env, FANOUT_PAGE_SIZE, 1000, 1000, "use a whole number from 1 to 1000")?,
            tls_roots: config::choice(
                env,
                TLS_ROOTS,
                Roots::Amazon,
                &[("amazon", Roots::Amazon), ("system", Roots::System)],
                "use amazon (AWS endpoints and ACM-issued certificates) or system (the system's certificate store)",
            )?,
            common: Common::from_env(env)?,
        })
    }
}

/// What an invocation returns (never thrown, so Step Functions can branch on it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub status_code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub counts: Option<FanOutCounts>,
    /// Present when a fan-out stopped with connections left: the same event plus this value
    /// continues it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// Per-outcome counts of a fan-out's invocation: `targets` connections were attempted, each
/// ending `posted`, `gone` (410) or `failed` (an error, or an outcome unknown at the deadline).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FanOutCounts {
    pub targets: usize,
    pub posted: usize,
    pub gone: usize,
    pub failed: usize,
}

impl Outcome {
    fn status(status_code: u16) -> Self {
        Self { status_code, error: None, counts: None, cursor: None }
    }

    fn refused(status_code: u16, error: impl std::fmt::Display) -> Self {
        Self { status_code, error: Some(error.to_string()), counts: None, cursor: None }
    }

    /// A fan-out that could not read the index: a 500 with what it did and where to retry from.
    fn index_failed(error: &str, counts: FanOutCounts, cursor: Option<String>) -> Self {
        Self { status_code: 500, error: Some(error.to_owned()), counts: Some(counts), cursor }
    }
}

/// The handler, built once per process.
pub struct Responder<P, S> {
    poster: P,
    store: Option<S>,
    ws_endpoint: Option<Endpoint>,
    mark_gone: bool,
    concurrency: usize,
    page_size: u32,
    clock: Arc<dyn Clock>,
    invocations: Invocations<Metric>,
}

impl<P, S> std::fmt::Debug for Responder<P, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("ws_endpoint", &self.ws_endpoint)
            .field("mark_gone", &self.mark_gone)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// How one post ended.
enum Delivery {
    Posted,
    Gone,
    Failed,
}

impl<P: Poster, S: ConnectionStore> Responder<P, S> {
    /// `store` is `Some` when `TABLE_CONNECTIONS` is set.
    pub fn new(poster: P, store: Option<S>, config: &Config, metrics_sink: Arc<dyn LineSink>) -> Self {
        Self {
            poster,
            store,
            ws_endpoint: config.ws_endpoint.clone(),
            mark_gone: config.mark_gone,
            concurrency: config.fanout_concurrency.get() as usize,
            page_size: config.fanout_page_size.get(),
            clock: Arc::new(SystemClock),
            invocations: Invocations::new(Metrics::new(config.common.metrics_namespace.clone(), SVC, metrics_sink)),
        }
    }

    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn poster(&self) -> &P {
        &self.poster
    }

    /// Handles one invocation. `deadline_ms` is the invocation's deadline (epoch milliseconds,
    /// Lambda's `Context::deadline`); every call stops in time to return a result.
    pub async fn handle(&self, event: Value, request_id: &str, deadline_ms: u64) -> Outcome {
        let deadline = Deadline::from_epoch_millis(deadline_ms, self.clock.now(), DEFAULT_MARGIN);
        let respond = async |counters: &mut Counters<'_, Metric>| {
            let outcome = self.respond(event, &deadline, counters).await;
            if outcome.status_code == 400 || outcome.status_code == 413 {
                warn!(status = outcome.status_code, reason = outcome.error.as_deref(), "request refused");
            }
            outcome
        };
        let failed = || Outcome::refused(500, "the responder failed; see the function's logs");
        self.invocations.run(request_id, self.clock.as_ref(), respond, failed).await
    }

    async fn respond(&self, event: Value, deadline: &Deadline, counters: &mut Counters<'_, Metric>) -> Outcome {
        let request = match Request::parse(event) {
            Ok(request) => request,
            Err(err) => return Outcome::refused(400, err),
        };
        let span = tracing::Span::current();
        if let Target::One(id) = &request.target {
            span.record("connectionId", id.as_str());
        }
        if let Some(correlation) = &request.envelope.correlation_id {
            span.record("correlationId", correlation.as_str());
        }
        let context = request.context.as_ref().map(|(domain, stage)| (domain.as_str(), stage.as_str()));
        let endpoint = match endpoint::resolve(request.ws_endpoint.as_deref(), self.ws_endpoint.as_ref(), context) {
            Ok(endpoint) => endpoint,
            Err(err) => return Outcome::refused(400, err),
        };
        let body = serde_json::to_vec(&request.envelope).expect("an envelope of JSON values always serializes");
        if body.len() > MAX_MESSAGE_BYTES {
            return Outcome::refused(
                413,
                format!("the message is {} bytes; API Gateway's limit is {MAX_MESSAGE_BYTES}", body.len()),
            );
        }
        let bytes = body.len();
        let message_type = request.envelope.message_type.as_str();
        let sequence = request.envelope.sequence;

        match &request.target {
            Target::One(id) => {
                let delivery = self.deliver(&endpoint, id, body, deadline, self.mark_gone, counters).await;
                match delivery {
                    Delivery::Posted => {
                        info!(bytes, messageType = message_type, sequence, "message posted");
                        Outcome::status(200)
                    }
                    Delivery::Gone => {
                        info!(messageType = message_type, "connection gone");
                        Outcome::status(410)
                    }
                    Delivery::Failed => Outcome::refused(500, "the post failed; see the function's logs"),
                }
            }
            Target::FanOut(audience) => {
                self.fan_out(audience, request.cursor.as_deref(), &endpoint, &body, deadline, counters).await
            }
        }
    }

    async fn fan_out(
        &self,
        audience: &Audience,
        cursor: Option<&str>,
        endpoint: &Endpoint,
        body: &[u8],
        deadline: &Deadline,
        counters: &mut Counters<'_, Metric>,
    ) -> Outcome {
        let Some(store) = &self.store else {
            return Outcome::refused(
                400,
                "fan-out needs the connections table; this function has no TABLE_CONNECTIONS",
            );
        };
        let digest = cursor::message_digest(body);
        let start = match cursor.map(|raw| cursor::decode(raw, audience, &digest)).transpose() {
            Ok(start) => start.flatten(),
            Err(err) => return Outcome::refused(400, err),
        };
        let source = Source {
            store,
            audience,
            deadline,
            page_size: self.page_size,
            slowest: &AtomicU64::new(duration_micros(MIN_CALL)),
            state: Mutex::new(SourceState {
                buffer: VecDeque::new(),
                next: Next::After(start.clone()),
                position: start,
                cut: false,
            }),
        };
        // Connections are taken from the index one at a time, in order, only while a post still
        // fits in the time left; each is posted at once, up to `concurrency` in flight.
        let counts =
            {
                let deliveries = futures_util::stream::unfold(&source, |source| async move {
                    source.next().await.map(|id| (id, source))
                })
                .map(|id| async move {
                    let mut own = self.invocations.metrics().start();
                    let started = Instant::now();
                    let delivery = self.deliver(endpoint, &id, body.to_vec(), deadline, true, &mut own).await;
                    source.slowest.fetch_max(duration_micros(started.elapsed()), Ordering::Relaxed);
                    (delivery, own)
                })
                .buffer_unordered(self.concurrency);
                futures_util::pin_mut!(deliveries);
                let mut counts = FanOutCounts::default();
                while let Some((delivery, own)) = deliveries.next().await {
                    counters.merge(&own);
                    counts.targets += 1;
                    match delivery {
                        Delivery::Posted => counts.posted += 1,
                        Delivery::Gone => counts.gone += 1,
                        Delivery::Failed => counts.failed += 1,
                    }
                }
                counts
            };
        let state = source.state.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        let done = state.buffer.is_empty() && matches!(state.next, Next::Done);
        let cursor = (!done).then(|| cursor::encode(audience, &digest, state.position.as_ref()));
        info!(
            targets = counts.targets,
            posted = counts.posted,
            gone = counts.gone,
            failed = counts.failed,
            bytes = body.len(),
            more = cursor.is_some(),
            "fan-out done"
        );
        if state.cut && counts.targets == 0 {
            // Not one post fit: a retry (with the cursor) is the caller's move, not another loop.
            counters.incr(Metric::Errors);
            error!("fan-out could not read the connections before the deadline");
            return Outcome::index_failed(
                "the fan-out could not read the connections in time; retry with the cursor",
                counts,
                cursor,
            );
        }
        if let Next::Failed(err) = &state.next {
            counters.incr(Metric::Errors);
            error!(error = error_chain(err), "fan-out could not read the connections");
            return Outcome::index_failed(
                "the fan-out could not read the connections; see the function's logs",
                counts,
                cursor,
            );
        }
        let status_code = if counts.targets > 0 && counts.failed == counts.targets { 500 } else { 200 };
        Outcome { status_code, error: None, counts: Some(counts), cursor }
    }

    /// Posts to one connection, counts the result, and marks a gone connection `GONE` when asked.
    async fn deliver(
        &self,
        endpoint: &Endpoint,
        id: &ConnectionId,
        body: Vec<u8>,
        deadline: &Deadline,
        mark_gone: bool,
        counters: &mut Counters<'_, Metric>,
    ) -> Delivery {
        match self.poster.post(endpoint, id, body, deadline.budget()).await {
            Ok(()) => {
                counters.incr(Metric::Posted);
                debug!(connectionId = id.as_str(), "posted");
                Delivery::Posted
            }
            Err(PostError::Gone) => {
                counters.incr(Metric::Gone);
                if mark_gone && let Some(store) = &self.store {
                    match store.mark_gone(id, self.clock.now(), deadline).await {
                        Ok(GoneOutcome::Marked) => debug!(connectionId = id.as_str(), "record marked GONE"),
                        Ok(GoneOutcome::NotConnected) => {
                            debug!(connectionId = id.as_str(), "record already not CONNECTED; left as it was");
                        }
                        Err(err) => {
                            counters.incr(Metric::Errors);
                            error!(
                                connectionId = id.as_str(),
                                error = error_chain(&err),
                                "could not mark the record GONE"
                            );
                        }
                    }
                }
                Delivery::Gone
            }
            Err(err @ PostError::Failed(_)) => {
                counters.incr(Metric::Errors);
                error!(connectionId = id.as_str(), error = error_chain(&err), "post failed");
                Delivery::Failed
            }
        }
    }
}

fn duration_micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// Where the next index page starts.
enum Next {
    /// After this connection (from the start when `None`).
    After(Option<ConnectionId>),
    /// The index has nothing more for the audience.
    Done,
    /// Reading the index failed; the fan-out stops here.
    Failed(StoreError),
}

struct SourceState {
    buffer: VecDeque<ConnectionId>,
    next: Next,
    /// Every connection up to here (in index order) has been taken or was not a target.
    position: Option<ConnectionId>,
    /// An index page was cut by the deadline.
    cut: bool,
}

/// The audience's `CONNECTED` connections, read a page at a time as the posts need them.
struct Source<'a, S> {
    store: &'a S,
    audience: &'a Audience,
    deadline: &'a Deadline,
    page_size: u32,
    /// The slowest post so far (µs): what one more post is expected to need.
    slowest: &'a AtomicU64,
    /// Only this stream's own future touches it; a `Mutex` keeps the stream `Send`.
    state: Mutex<SourceState>,
}

impl<S: ConnectionStore> Source<'_, S> {
    fn state(&self) -> std::sync::MutexGuard<'_, SourceState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next connection to post to, or `None` when the audience is done, the index failed, or
    /// the time left would not cover another post.
    async fn next(&self) -> Option<ConnectionId> {
        loop {
            let need = Duration::from_micros(self.slowest.load(Ordering::Relaxed));
            if self.deadline.is_short_of(need) {
                return None;
            }
            let after = {
                let mut state = self.state();
                if let Some(id) = state.buffer.pop_front() {
                    state.position = Some(id.clone());
                    return Some(id);
                }
                match &state.next {
                    Next::After(after) => after.clone(),
                    Next::Done | Next::Failed(_) => return None,
                }
            };
            let page = self.store.connected_page(self.audience, after.as_ref(), self.page_size, self.deadline).await;
            let mut state = self.state();
            // The whole previous page was taken: everything up to where this page starts is done.
            state.position.clone_from(&after);
            match page {
                Ok(page) => {
                    state.buffer.extend(page.ids);
                    state.next = page.resume_after.map_or(Next::Done, |id| Next::After(Some(id)));
                }
                Err(err) if self.deadline.is_short_of(MIN_CALL) => {
                    // Cut by the deadline, not failed: the next invocation reads this page again.
                    warn!(error = error_chain(&err), "index page cut by the deadline");
                    state.cut = true;
                    return None;
                }
                Err(err) => state.next = Next::Failed(err),
            }
        }
    }
}
