//! `WebSocketResponder`: posts one message to one connection, or fans it out to every
//! `CONNECTED` connection of a conversation or user. Invoked directly (Step Functions, other
//! Lambdas); it *returns* its result so a state machine can branch on `statusCode`.
//!
//! # Layout
//! - [`event`]: the input, validated into a target and the wire envelope.
//! - [`endpoint`]: which Management API endpoint to post through.
//! - [`cursor`]: where a fan-out that ran out of time continues.
//! - [`publish`]: a post to an audience is appended to its stream first (`ws_shared::stream`),
//!   once per message key, and its fan-out claims the audience as it goes.
//! - [`management`]: the notifier port ([`management::Poster`]) and its adapter, the Management
//!   API as SigV4-signed HTTP on one kept-alive connection pool (not the SDK's client: its
//!   per-call machinery cost more CPU than the post, see the module).
//! - [`Config`], [`Responder`], [`Outcome`]: configuration, the handler, and what it returns.
//!
//! Results: `200` posted; `410` gone (the record becomes `GONE` when `MARK_GONE=true`); `413`
//! message over 128 KB, refused before any call; `400` a bad event, with `error` saying what;
//! `500` anything else after the retries of transient errors. Fan-out returns per-outcome counts, and a
//! `cursor` when it had to stop before its deadline with connections left (docs/design.md §8).
//!
//! # Deadlines
//! Every network call gets the time left when it starts ([`Deadline`]): each index page, each
//! post, each `GONE` update. A fan-out reads the index page by page and posts while reading; it
//! starts a new post (or page) only while the time left covers the slowest post seen so far, so it
//! stops in time and answers with where it stopped. Connections are taken in index order and each
//! is posted to at most once: the position of the last one taken, plus the connections still owed
//! a retry, is the whole state a continuation needs.
//!
//! # The quota (docs/design.md §9)
//! The Management API's rate is a quota per account and region shared by every fan-out, and a
//! `429 LimitExceededException` means the post was *not* delivered. The adapter does not retry a 429
//! ([`management`]); the fan-out does: the number of posts in flight adapts to
//! throttling ([`pacing::Pacer`]: slow start, additive increase, multiplicative decrease, bounded
//! by `FANOUT_CONCURRENCY` and `FANOUT_MAX_RATE`), a throttled connection waits out its own
//! backoff and is tried again (before new ones), and one still owed at the deadline goes into
//! the cursor. A connection throttled while the others go through (its own buffer is full) is
//! given up after [`pacing::MAX_STRIKES`] tries and counted `failed`; so is one throttled
//! [`pacing::MAX_TRIES`] times. Only a post cut by the deadline has an unknown outcome (`failed`).

pub mod cursor;
pub mod endpoint;
pub mod event;
pub mod management;
pub mod pacing;
pub mod presence;
pub mod publish;
pub mod sigv4;

use std::collections::VecDeque;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tracing::{debug, error, info, warn};
use ws_shared::aws::Roots;
use ws_shared::clock::{Clock, IdSource, RandomIds, SystemClock};
use ws_shared::config::{self, Common, ConfigError, Env};
use ws_shared::deadline::{DEFAULT_MARGIN, Deadline};
use ws_shared::id::ConnectionId;
use ws_shared::invocation::Invocations;
use ws_shared::log::error_chain;
use ws_shared::metrics::{Counters, Metrics};
use ws_shared::output::LineSink;
use ws_shared::record::{Route, keys};
use ws_shared::segment::Segment;
use ws_shared::store::{Audience, ConnectionStore, GoneOutcome, Part, StoreError};
use ws_shared::stream::StreamStore;

use crate::cursor::Position;
use crate::endpoint::{Endpoint, EndpointError, EndpointTemplate};
use crate::event::{CloseRequest, CloseTarget, Invocation, MAX_MESSAGE_BYTES, Request, Target};
use crate::management::{PostError, Poster};
use crate::pacing::{Earlier, Pacer, Signal};

/// The `svc` of every log line and the `Service` metric dimension.
pub const SVC: &str = "ws-responder";
ws_shared::metrics! {
    /// The EMF counters this function emits (a fan-out adds up its posts).
    pub enum Metric { Posted = "Posted", Closed = "Closed", Gone = "Gone", Errors = "Errors" }
}

pub const WS_ENDPOINT: &str = "WS_ENDPOINT";
pub const WS_ENDPOINT_TEMPLATE: &str = "WS_ENDPOINT_TEMPLATE";
pub const MARK_GONE: &str = "MARK_GONE";
pub const FANOUT_CONCURRENCY: &str = "FANOUT_CONCURRENCY";
pub const FANOUT_PAGE_SIZE: &str = "FANOUT_PAGE_SIZE";
pub const FANOUT_MAX_RATE: &str = "FANOUT_MAX_RATE";
pub const TLS_ROOTS: &str = "TLS_ROOTS";
pub const STREAM_RETENTION_MINUTES: &str = "STREAM_RETENTION_MINUTES";
pub const STREAMS: &str = "STREAMS";
pub const PRESENCE_STALE_MINUTES: &str = "PRESENCE_STALE_MINUTES";

/// The answer to a fan-out, a broadcast or presence where the function has no table.
pub const NO_TABLE: &str = "fan-out needs the connections table; this function has no TABLE_CONNECTIONS";

/// The answer to a broadcast where `BROADCAST=false`.
pub const NO_BROADCAST: &str = "this stage does not broadcast (BROADCAST=false: connections are not indexed for it); \
                                post to each conversationId or userId instead, or deploy with BROADCAST=true";

/// The `error` of a `410`: what it means and what to check.
pub const GONE: &str = "the connection is gone: the API behind the endpoint has no connection with this id (it \
                        closed, or it belongs to another API, stage or region: check connectionId and wsEndpoint); \
                        a client that reconnects gets a new id and resumes its streams";

/// The least time a new post (or index page) needs before it is started; raised to the slowest
/// post seen in the invocation.
const MIN_CALL: Duration = Duration::from_millis(50);

/// What `WebSocketResponder` reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `WS_ENDPOINT`, when set.
    pub ws_endpoint: Option<Endpoint>,
    /// `WS_ENDPOINT_TEMPLATE`: a connection whose record names its API, stage and region is
    /// posted (and closed) through this endpoint of that API (default: the API's own
    /// `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`).
    pub ws_endpoint_template: EndpointTemplate,
    /// `TABLE_CONNECTIONS`: needed for fan-out and for `MARK_GONE`.
    pub table: Option<String>,
    /// `MARK_GONE`: mark a single target's record `GONE` on 410 (fan-out always does).
    pub mark_gone: bool,
    /// `FANOUT_CONCURRENCY`: posts in flight at once during a fan-out (1-1000, default 32).
    pub fanout_concurrency: NonZeroU32,
    /// `FANOUT_PAGE_SIZE`: index entries read per page (1-1000, default 1000): enough to keep the
    /// posts busy with few round trips, bounded so memory does not grow with the audience.
    pub fanout_page_size: NonZeroU32,
    /// `FANOUT_MAX_RATE`: at most this many posts/s in one fan-out (1-10000), for an account that
    /// shares its Management API quota with other traffic. Unset: paced by throttling alone.
    pub fanout_max_rate: Option<NonZeroU32>,
    /// `TLS_ROOTS`: whose certificates the HTTPS client trusts, `amazon` (default: every AWS
    /// endpoint and ACM-issued certificate) or `system` (a `WS_ENDPOINT` custom domain whose
    /// certificate was imported into ACM from another authority). See `ws_shared::aws`.
    pub tls_roots: Roots,
    /// `STREAM_RETENTION_MINUTES`: how long a streamed message (and its key) is kept for resumes
    /// and retried publishes (1-525600, default 1440).
    pub stream_retention_minutes: NonZeroU32,
    /// `STREAMS`: append every post to an audience to its stream (default `true`); `false` fans
    /// out without (no resume, no idempotent publish: the service before streams).
    pub streams: bool,
    /// `AWS_REGION`: the region whose streams this function appends to (`local` when unset).
    pub region: String,
    /// `BROADCAST`: `"all": true` reaches every live connection (GSI4, which `ConnectFunction`
    /// writes with the same setting); `false`: a broadcast is refused (400).
    pub broadcast: bool,
    /// `PRESENCE_STALE_MINUTES`: a connection older than this is asked about (`GET
    /// @connections`) before a presence answer counts it (1-1440, default 10).
    pub presence_stale_minutes: NonZeroU32,
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
        let ws_endpoint_template = env
            .var(WS_ENDPOINT_TEMPLATE)
            .map(|raw| {
                EndpointTemplate::parse(&raw, WS_ENDPOINT_TEMPLATE).map_err(|_| ConfigError::Invalid {
                    name: WS_ENDPOINT_TEMPLATE,
                    value: raw,
                    hint: "use a URL with {apiId} (and {region}, {stage}), e.g. \
                           https://{apiId}.execute-api.{region}.amazonaws.com/{stage} (http:// only on loopback)",
                })
            })
            .transpose()?
            .unwrap_or_default();
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
            ws_endpoint_template,
            table,
            mark_gone,
            fanout_concurrency: config::count(env, FANOUT_CONCURRENCY, 32, 1000, "use a whole number from 1 to 1000")?,
            fanout_page_size: config::count(env, FANOUT_PAGE_SIZE, 1000, 1000, "use a whole number from 1 to 1000")?,
            fanout_max_rate: config::optional_count(
                env,
                FANOUT_MAX_RATE,
                10_000,
                "use a whole number of posts per second from 1 to 10000, or leave it unset",
            )?,
            tls_roots: config::choice(
                env,
                TLS_ROOTS,
                Roots::Amazon,
                &[("amazon", Roots::Amazon), ("system", Roots::System)],
                "use amazon (AWS endpoints and ACM-issued certificates) or system (the system's certificate store)",
            )?,
            stream_retention_minutes: config::count(
                env,
                STREAM_RETENTION_MINUTES,
                ws_shared::stream::DEFAULT_RETENTION_MINUTES,
                525_600,
                "use a whole number of minutes from 1 to 525600 (a year), e.g. 1440",
            )?,
            streams: config::flag(env, STREAMS, true)?,
            region: config::region(env)?,
            broadcast: config::flag(env, config::BROADCAST, true)?,
            presence_stale_minutes: config::count(
                env,
                PRESENCE_STALE_MINUTES,
                10,
                1440,
                "use a whole number of minutes from 1 to 1440, e.g. 10",
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
    /// Where a post to an audience was appended (`stream`, `offset`, `epoch`, `duplicate`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub published: Option<publish::Published>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub counts: Option<FanOutCounts>,
    /// Present when a fan-out stopped with connections left: the same event plus this value
    /// continues it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// A presence answer: `users` (and `anonymous`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub presence: Option<presence::PresenceAnswer>,
    /// The segment this invocation took (`segment` of `segments`), when the event split its
    /// fan-out.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub segment: Option<SegmentAnswer>,
}

/// `"segment": k, "segments": n` in an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SegmentAnswer {
    pub segment: u16,
    pub segments: u16,
}

impl SegmentAnswer {
    fn of(segment: Segment) -> Option<Self> {
        (!segment.is_whole()).then(|| Self { segment: segment.index(), segments: segment.count() })
    }
}

/// Per-outcome counts of a fan-out's (or a close's) invocation: `targets` connections were taken
/// from the index, each ending `posted` (or `closed`), `gone` (410) or `failed` (an error, an
/// outcome unknown at the deadline, or throttled on every try) — or still owed a retry, carried in
/// the cursor. `throttled` counts the 429 answers met, `retried` the calls that were a retry after
/// one (connections owed by the previous invocation included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FanOutCounts {
    pub targets: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub posted: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed: Option<usize>,
    pub gone: usize,
    pub failed: usize,
    pub throttled: usize,
    pub retried: usize,
}

/// What one invocation did, whatever the operation.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    targets: usize,
    delivered: usize,
    gone: usize,
    failed: usize,
    throttled: usize,
    retried: usize,
}

impl Tally {
    fn count(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Posted => self.delivered += 1,
            Delivery::Gone => self.gone += 1,
            Delivery::Failed | Delivery::Throttled => self.failed += 1,
        }
    }

    fn counts(self, op: Op<'_>) -> FanOutCounts {
        let (posted, closed) = match op {
            Op::Post(_) => (Some(self.delivered), None),
            Op::Close(_) => (None, Some(self.delivered)),
        };
        FanOutCounts {
            targets: self.targets,
            posted,
            closed,
            gone: self.gone,
            failed: self.failed,
            throttled: self.throttled,
            retried: self.retried,
        }
    }
}

/// What a fan-out does to each connection.
#[derive(Debug, Clone, Copy)]
enum Op<'a> {
    /// `PostToConnection` with this envelope.
    Post(&'a bytes::Bytes),
    /// `DeleteConnection`, recording this reason on the record first.
    Close(&'a str),
}

impl Op<'_> {
    /// What binds a cursor to this fan-out: the message, or the close and its reason.
    fn digest(self) -> String {
        match self {
            Self::Post(body) => cursor::message_digest(body),
            Self::Close(reason) => cursor::message_digest(format!("disconnect\n{reason}").as_bytes()),
        }
    }

    fn metric(self) -> Metric {
        match self {
            Self::Post(_) => Metric::Posted,
            Self::Close(_) => Metric::Closed,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Post(_) => "post",
            Self::Close(_) => "close",
        }
    }

    fn done(self) -> &'static str {
        match self {
            Self::Post(_) => "posted",
            Self::Close(_) => "closed",
        }
    }
}

/// Which connections a fan-out goes through, page by page.
#[derive(Debug)]
enum Listing<'a> {
    /// A conversation's or a user's `CONNECTED` connections (GSI1, GSI2), or every live one
    /// (GSI4, shard by shard); one segment's share of them.
    Audience(&'a Audience, Segment),
    /// The `CONNECTED` connections whose token expired before `now` (GSI3, shard by shard).
    Expired { now: i64 },
}

impl Listing<'_> {
    /// The pacer of a fan-out over this listing.
    fn pacer(&self, max: u32, max_rate: Option<u32>) -> Pacer {
        let pacer = Pacer::new(max, max_rate, Instant::now());
        match self {
            Self::Audience(_, segment) if !segment.is_whole() => pacer.shared(),
            _ => pacer,
        }
    }

    fn target(&self) -> cursor::Target {
        match self {
            Self::Audience(audience, segment) => cursor::Target::Audience((*audience).clone(), *segment),
            Self::Expired { .. } => cursor::Target::Expired,
        }
    }

    /// The page that starts after `from`, each connection with the position just past it.
    async fn read<S: ConnectionStore>(&self, store: &S, from: Position, limit: u32, deadline: &Deadline) -> PageRead {
        let read = match self {
            Self::Audience(audience, segment) => {
                let after = from.after.as_deref().and_then(|id| ConnectionId::parse(id).ok());
                let shard = from.shard;
                let slice = Part { shard, segment: *segment };
                store.connected_page(audience, slice, after.as_ref(), limit, deadline).await.map(|mut page| {
                    let entries = page
                        .ids
                        .into_iter()
                        .map(|id| {
                            let past = Position { shard, after: Some(id.as_str().to_owned()) };
                            let route = page.routes.remove(&id);
                            (id, past, route)
                        })
                        .collect();
                    let next = match page.resume_after {
                        Some(id) => Next::After(Position { shard, after: Some(id.as_str().to_owned()) }),
                        None if shard + 1 < audience.shards() => {
                            Next::After(Position { shard: shard + 1, after: None })
                        }
                        None => Next::Done,
                    };
                    (entries, next)
                })
            }
            Self::Expired { now } => {
                store.expired_page(from.shard, *now, from.after.as_deref(), limit, deadline).await.map(|mut page| {
                    let shard = from.shard;
                    let entries = page
                        .entries
                        .into_iter()
                        .map(|(id, sort)| {
                            let route = page.routes.remove(&id);
                            (id, Position { shard, after: Some(sort) }, route)
                        })
                        .collect();
                    let next = match page.resume_after {
                        Some(sort) => Next::After(Position { shard, after: Some(sort) }),
                        None if shard + 1 < keys::EXPIRY_SHARDS => {
                            Next::After(Position { shard: shard + 1, after: None })
                        }
                        None => Next::Done,
                    };
                    (entries, next)
                })
            }
        };
        PageRead { from, read, skip_upto: None }
    }
}

impl Outcome {
    fn status(status_code: u16) -> Self {
        Self { status_code, error: None, published: None, counts: None, cursor: None, presence: None, segment: None }
    }

    fn refused(status_code: u16, error: impl std::fmt::Display) -> Self {
        Self { error: Some(error.to_string()), ..Self::status(status_code) }
    }

    /// A fan-out that could not read the index: a 500 with what it did and where to retry from.
    fn index_failed(error: &str, counts: FanOutCounts, cursor: Option<String>) -> Self {
        Self { error: Some(error.to_owned()), counts: Some(counts), cursor, ..Self::status(500) }
    }
}

/// The handler, built once per process.
pub struct Responder<P, S> {
    poster: P,
    store: Option<S>,
    ws_endpoint: Option<Endpoint>,
    template: EndpointTemplate,
    mark_gone: bool,
    concurrency: usize,
    max_rate: Option<u32>,
    page_size: u32,
    /// How long a streamed message is kept.
    retention: chrono::Duration,
    /// The region whose streams this function writes.
    region: String,
    /// Posts to an audience are appended to its stream first.
    streams: bool,
    /// `"all": true` is answered.
    broadcast: bool,
    /// A listed connection older than this is asked about before presence counts it.
    presence_stale: chrono::Duration,
    clock: Arc<dyn Clock>,
    /// Epochs, generated message keys and fan-out run ids.
    ids: Arc<dyn IdSource>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Posted,
    Gone,
    /// Refused with 429: not delivered, may be tried again.
    Throttled,
    /// An error, or an outcome unknown at the deadline: never tried again.
    Failed,
}

impl<P: Poster, S: ConnectionStore + StreamStore> Responder<P, S> {
    /// `store` is `Some` when `TABLE_CONNECTIONS` is set.
    pub fn new(poster: P, store: Option<S>, config: &Config, metrics_sink: Arc<dyn LineSink>) -> Self {
        Self {
            poster,
            store,
            ws_endpoint: config.ws_endpoint.clone(),
            template: config.ws_endpoint_template.clone(),
            mark_gone: config.mark_gone,
            concurrency: config.fanout_concurrency.get() as usize,
            max_rate: config.fanout_max_rate.map(NonZeroU32::get),
            page_size: config.fanout_page_size.get(),
            retention: chrono::Duration::minutes(i64::from(config.stream_retention_minutes.get())),
            region: config.region.clone(),
            streams: config.streams,
            broadcast: config.broadcast,
            presence_stale: chrono::Duration::minutes(i64::from(config.presence_stale_minutes.get())),
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds),
            invocations: Invocations::new(Metrics::new(config.common.metrics_namespace.clone(), SVC, metrics_sink)),
        }
    }

    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Where epochs, generated message keys and fan-out run ids come from (tests: sequential).
    #[must_use]
    pub fn with_ids(mut self, ids: Arc<dyn IdSource>) -> Self {
        self.ids = ids;
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
        let invocation = match Invocation::parse(event) {
            Ok(invocation) => invocation,
            Err(err) => return Outcome::refused(400, err),
        };
        let segment = match &invocation {
            Invocation::Post(request) => request.segment,
            Invocation::Close(close) => close.segment,
            Invocation::Presence(_) => Segment::WHOLE,
        };
        if !segment.is_whole() {
            // Each segment's EMF line and answer say which share it took.
            counters.property("segment", segment.label());
            info!(segment = segment.label(), "a segment of the fan-out");
        }
        let mut outcome = match invocation {
            Invocation::Post(request) => self.post(request, deadline, counters).await,
            Invocation::Close(close) => self.close(close, deadline, counters).await,
            Invocation::Presence(presence) => {
                let context = presence.context.as_ref().map(|(domain, stage)| (domain.as_str(), stage.as_str()));
                let fallback =
                    match endpoint::resolve(presence.ws_endpoint.as_deref(), self.ws_endpoint.as_ref(), context) {
                        Ok(endpoint) => Some(self.template.recognize(endpoint)),
                        Err(EndpointError::Missing) => None,
                        Err(err) => return Outcome::refused(400, err),
                    };
                self.presence(&presence.audience, presence.cursor.as_deref(), fallback.as_ref(), deadline, counters)
                    .await
            }
        };
        outcome.segment = SegmentAnswer::of(segment);
        outcome
    }

    /// A post: to one connection, or appended to an audience's stream and fanned out, or to
    /// every connection.
    async fn post(&self, request: Request, deadline: &Deadline, counters: &mut Counters<'_, Metric>) -> Outcome {
        let span = tracing::Span::current();
        if let Target::One(id) = &request.target {
            span.record("connectionId", id.as_str());
        }
        if let Some(correlation) = &request.envelope.correlation_id {
            span.record("correlationId", correlation.as_str());
        }
        let context = request.context.as_ref().map(|(domain, stage)| (domain.as_str(), stage.as_str()));
        let fallback = endpoint::resolve(request.ws_endpoint.as_deref(), self.ws_endpoint.as_ref(), context)
            .map(|endpoint| self.template.recognize(endpoint));
        // A connection whose record names its API needs no endpoint from the caller; any other
        // needs one, and a bad one is refused whatever the target.
        let endpoint = match (&fallback, &request.target) {
            (Err(EndpointError::Missing), Target::FanOut(_)) => None,
            (Err(err), _) => return Outcome::refused(400, err),
            (Ok(endpoint), _) => Some(endpoint.clone()),
        };
        // Shared by every post of a fan-out (each takes a reference, not a copy).
        let body = bytes::Bytes::from(
            serde_json::to_vec(&request.envelope).expect("an envelope of JSON values always serializes"),
        );
        // A streamed post carries its stream, offset and epoch too: refused before it is appended
        // if those would take it over the limit.
        let wire_bytes = match &request.target {
            Target::One(_) => body.len(),
            Target::FanOut(audience) => publish::wire_len_bound(&body, audience, &self.region),
        };
        let refusal = match &request.target {
            Target::One(_) if wire_bytes > MAX_MESSAGE_BYTES => {
                Some(format!("the message is {wire_bytes} bytes; API Gateway's limit is {MAX_MESSAGE_BYTES}"))
            }
            Target::FanOut(_) if wire_bytes > ws_shared::stream::MAX_STREAMED_BYTES => Some(format!(
                "the message is {wire_bytes} bytes with its stream fields; a streamed message may have at most {} \
                 (API Gateway's 128 KB less room for the resume answer that carries it)",
                ws_shared::stream::MAX_STREAMED_BYTES
            )),
            _ => None,
        };
        if let Some(refusal) = refusal {
            return Outcome::refused(413, refusal);
        }
        let bytes = body.len();
        let message_type = request.envelope.message_type.as_str();
        let sequence = request.envelope.sequence;

        match &request.target {
            Target::One(id) => {
                let endpoint = endpoint.expect("a single target has an endpoint (checked above)");
                let delivery = self.deliver_one(&endpoint, id, Op::Post(&body), deadline, counters).await;
                match delivery {
                    Delivery::Posted => {
                        info!(bytes, messageType = message_type, sequence, "message posted");
                        Outcome::status(200)
                    }
                    Delivery::Gone => {
                        info!(messageType = message_type, "connection gone");
                        Outcome::refused(410, GONE)
                    }
                    Delivery::Failed => Outcome::refused(500, "the post failed; see the function's logs"),
                    Delivery::Throttled => Outcome::refused(
                        500,
                        "the Management API throttled every try (429 LimitExceededException: the account's quota, \
                         or the client is not reading); retry later",
                    ),
                }
            }
            Target::FanOut(Audience::All) if !self.broadcast => Outcome::refused(400, NO_BROADCAST),
            Target::FanOut(Audience::All) => {
                // A notice to everyone is live only: it has no stream (no conversation's or user's
                // history holds it), so its cursor binds to the message as any plain fan-out's.
                let digest = cursor::message_digest(&body);
                let listing = Listing::Audience(&Audience::All, request.segment);
                let resume = match decode_cursor(request.cursor.as_deref(), &listing.target(), &digest) {
                    Ok(resume) => resume,
                    Err(refused) => return Outcome::refused(400, refused),
                };
                self.fan_out(&listing, resume, &digest, endpoint.as_ref(), Op::Post(&body), None, deadline, counters)
                    .await
            }
            Target::FanOut(audience) => {
                self.publish(audience, &request, &body, endpoint.as_ref(), deadline, counters).await
            }
        }
    }

    /// `{"action":"disconnect", …}`: closes the target's `CONNECTED` connections with the
    /// fan-out's rules (deadline, cursor, at most once each), recording `reason` on each record.
    async fn close(&self, request: CloseRequest, deadline: &Deadline, counters: &mut Counters<'_, Metric>) -> Outcome {
        let context = request.context.as_ref().map(|(domain, stage)| (domain.as_str(), stage.as_str()));
        let endpoint = match endpoint::resolve(request.ws_endpoint.as_deref(), self.ws_endpoint.as_ref(), context) {
            Ok(endpoint) => Some(self.template.recognize(endpoint)),
            Err(EndpointError::Missing) if !matches!(request.target, CloseTarget::One(_)) => None,
            Err(err) => return Outcome::refused(400, err),
        };
        let op = Op::Close(&request.reason);
        let listing = match &request.target {
            CloseTarget::One(id) => {
                tracing::Span::current().record("connectionId", id.as_str());
                let endpoint = endpoint.expect("a single target has an endpoint (checked above)");
                let delivery = self.deliver_one(&endpoint, id, op, deadline, counters).await;
                let mut tally = Tally { targets: 1, ..Tally::default() };
                tally.count(delivery);
                info!(reason = request.reason.as_str(), closed = tally.delivered, gone = tally.gone, "close done");
                let status_code = if tally.failed > 0 { 500 } else { 200 };
                return Outcome { counts: Some(tally.counts(op)), ..Outcome::status(status_code) };
            }
            CloseTarget::Audience(Audience::All) if !self.broadcast => return Outcome::refused(400, NO_BROADCAST),
            CloseTarget::Audience(audience) => Listing::Audience(audience, request.segment),
            CloseTarget::Expired => Listing::Expired { now: self.clock.now().timestamp() },
        };
        let digest = op.digest();
        let resume = match decode_cursor(request.cursor.as_deref(), &listing.target(), &digest) {
            Ok(resume) => resume,
            Err(refused) => return Outcome::refused(400, refused),
        };
        self.fan_out(&listing, resume, &digest, endpoint.as_ref(), op, None, deadline, counters).await
    }

    /// Goes through `listing` from `resume` (a fresh start, or where a cursor left off), doing `op`
    /// to each connection; a streamed post (`streaming`) claims each page before taking it.
    #[allow(clippy::too_many_arguments)]
    async fn fan_out(
        &self,
        listing: &Listing<'_>,
        resume: cursor::Resume,
        digest: &str,
        fallback: Option<&Endpoint>,
        op: Op<'_>,
        streaming: Option<&publish::Streaming>,
        deadline: &Deadline,
        counters: &mut Counters<'_, Metric>,
    ) -> Outcome {
        let Some(store) = self.store.as_ref() else { return Outcome::refused(400, NO_TABLE) };
        let mut run = FanOut {
            pacer: listing.pacer(self.concurrency_max(), self.max_rate),
            owed: resume
                .owed
                .into_iter()
                .map(|o| Owed {
                    attempt: Attempt { id: o.id, route: o.route, tries: o.tries, strikes: o.strikes, throttled: None },
                    ready: Instant::now(),
                })
                .collect(),
            buffer: VecDeque::new(),
            next: Next::After(resume.position.clone()),
            position: resume.position,
            // A streamed post retried while another run's claim stands starts past that claim.
            skip_upto: streaming.and_then(publish::Streaming::skip_upto),
            stream: streaming.map(|st| (st.key.clone(), st.run.clone())),
            cut: false,
            slowest: MIN_CALL,
            counts: Tally::default(),
        };
        let mut in_flight = futures_util::stream::FuturesUnordered::new();
        let mut page: Option<std::pin::Pin<Box<dyn Future<Output = PageRead> + Send + '_>>> = None;
        loop {
            // Start what the window, the rate cap and the time left allow: connections owed a
            // retry first (when their backoff is over), then the next ones in index order.
            let mut wake: Option<Instant> = None;
            while in_flight.len() < run.pacer.window() && !deadline.is_short_of(run.slowest) {
                let now = Instant::now();
                if let Some(wait) = run.pacer.wait(now) {
                    wake = Some(now + wait);
                    break;
                }
                let Some(attempt) = run.take(now, &mut wake) else { break };
                let ticket = run.pacer.start(now);
                let mut own = self.invocations.metrics().start();
                in_flight.push(async move {
                    let started = Instant::now();
                    let delivery = match self.endpoint_of(&attempt, fallback) {
                        Ok(endpoint) => self.deliver(&endpoint, &attempt.id, op, deadline, true, &mut own).await,
                        Err(err) => {
                            own.incr(Metric::Errors);
                            error!(connectionId = attempt.id.as_str(), error = %err, "no endpoint for this connection");
                            Delivery::Failed
                        }
                    };
                    (attempt, ticket, delivery, own, started.elapsed())
                });
            }
            // The next index page, read while the posts of this one go on.
            if page.is_none() && run.wants_page(self.page_size) && !deadline.is_short_of(run.slowest) {
                let Next::After(from) = &run.next else { unreachable!("wants_page checks it") };
                let read = listing.read(store, from.clone(), self.page_size, deadline);
                page = Some(Box::pin(async move {
                    let read = read.await;
                    match streaming {
                        Some(streaming) => streaming.claim(store, read, deadline).await,
                        None => read,
                    }
                }));
                continue;
            }
            if in_flight.is_empty() && page.is_none() {
                match wake {
                    // Only backoffs (or the rate cap) are left: wait for the first one, if time allows.
                    Some(at) if !deadline.is_short_of(at.saturating_duration_since(Instant::now()) + run.slowest) => {
                        tokio::time::sleep_until(at.into()).await;
                        continue;
                    }
                    _ => break,
                }
            }
            let sleep = wake.map(|at| tokio::time::sleep_until(at.into()));
            tokio::select! {
                Some((attempt, ticket, delivery, own, took)) = in_flight.next(), if !in_flight.is_empty() => {
                    counters.merge(&own);
                    run.slowest = run.slowest.max(took);
                    run.ended(attempt, ticket, delivery, took);
                }
                read = async { page.as_mut().expect("polled only when set").await }, if page.is_some() => {
                    page = None;
                    run.page_read(read, deadline);
                }
                () = async { if let Some(sleep) = sleep { sleep.await } }, if wake.is_some() => {}
            }
        }
        run.finish(&listing.target(), digest, op, counters)
    }

    /// Where a connection is posted (or closed): through its own API when its record says which
    /// (`WS_ENDPOINT_TEMPLATE`), else through the endpoint the event's order gives (docs/design.md §3).
    fn endpoint_of(&self, attempt: &Attempt, fallback: Option<&Endpoint>) -> Result<Endpoint, EndpointError> {
        match &attempt.route {
            Some(route) => self.template.render(route),
            None => fallback.cloned().ok_or(EndpointError::Missing),
        }
    }

    fn concurrency_max(&self) -> u32 {
        u32::try_from(self.concurrency).unwrap_or(u32::MAX)
    }

    /// Posts to the one connection an event names, trying again after a backoff while the
    /// Management API throttles and time is left (up to [`pacing::MAX_STRIKES`] tries).
    async fn deliver_one(
        &self,
        endpoint: &Endpoint,
        id: &ConnectionId,
        op: Op<'_>,
        deadline: &Deadline,
        counters: &mut Counters<'_, Metric>,
    ) -> Delivery {
        // A close has the table whenever it notes reasons; a post marks only with MARK_GONE.
        let mark_gone = match op {
            Op::Post(_) => self.mark_gone,
            Op::Close(_) => self.store.is_some(),
        };
        let mut tries = 0u8;
        loop {
            tries += 1;
            let started = Instant::now();
            let delivery = self.deliver(endpoint, id, op, deadline, mark_gone, counters).await;
            let delay = pacing::retry_delay(tries, jitter(id, tries));
            let next_fits = !deadline.is_short_of(delay + started.elapsed().max(MIN_CALL));
            match delivery {
                Delivery::Throttled if tries < pacing::MAX_STRIKES && next_fits => {
                    tokio::time::sleep(delay).await;
                }
                Delivery::Throttled => {
                    counters.incr(Metric::Errors);
                    error!(connectionId = id.as_str(), tries, "throttled on every try");
                    return Delivery::Throttled;
                }
                other => return other,
            }
        }
    }

    /// Posts to one connection, counts the result, and marks a gone connection `GONE` when asked.
    async fn deliver(
        &self,
        endpoint: &Endpoint,
        id: &ConnectionId,
        op: Op<'_>,
        deadline: &Deadline,
        mark_gone: bool,
        counters: &mut Counters<'_, Metric>,
    ) -> Delivery {
        let result = match op {
            Op::Post(body) => self.poster.post(endpoint, id, body.clone(), deadline.budget()).await,
            Op::Close(reason) => {
                // The reason first, so the $disconnect that the close brings keeps it.
                if let Some(store) = &self.store
                    && let Err(err) = store.note_closing(id, reason, self.clock.now(), deadline).await
                {
                    warn!(connectionId = id.as_str(), error = error_chain(&err), "could not record why it is closed");
                }
                self.poster.close(endpoint, id, deadline.budget()).await
            }
        };
        match result {
            Ok(()) => {
                counters.incr(op.metric());
                debug!(connectionId = id.as_str(), "{}", op.done());
                Delivery::Posted
            }
            Err(PostError::Gone) => {
                counters.incr(Metric::Gone);
                if mark_gone && let Some(store) = &self.store {
                    match store.mark_gone(id, endpoint.route(), self.clock.now(), deadline).await {
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
            Err(PostError::Throttled) => {
                debug!(connectionId = id.as_str(), "throttled");
                Delivery::Throttled
            }
            Err(err @ PostError::Failed(_)) => {
                counters.incr(Metric::Errors);
                error!(connectionId = id.as_str(), error = error_chain(&err), "{} failed", op.name());
                Delivery::Failed
            }
        }
    }
}

/// Where the next index page starts.
enum Next {
    /// At this position.
    After(Position),
    /// The index has nothing more for the fan-out.
    Done,
    /// Reading the index failed; the fan-out stops here.
    Failed(StoreError),
}

/// Most connections owed a retry at once: past it, no new connection is taken from the index until
/// retries go through, so memory (and the cursor) stay bounded whatever the audience.
pub const MAX_OWED: usize = 256;

/// A connection whose call was throttled and not yet tried again.
#[derive(Debug)]
struct Owed {
    attempt: Attempt,
    /// Not tried again before this.
    ready: Instant,
}

/// One connection's call, with what earlier tries of this fan-out met (carried in the cursor).
#[derive(Debug, Clone)]
struct Attempt {
    id: ConnectionId,
    /// Where it lives, when its record says.
    route: Option<Route>,
    /// Tries so far.
    tries: u8,
    /// Throttles that were this connection's own (the others went through).
    strikes: u8,
    /// The start number of its last throttled try in this invocation (pacing's undo needs it).
    throttled: Option<u64>,
}

/// A listed connection: its id, the position just past it, and where it lives (when known).
type Listed = (ConnectionId, Position, Option<Route>);

/// An index page that came back: where it started, and its connections with the position just
/// past each, and where the next page starts.
struct PageRead {
    from: Position,
    read: Result<(Vec<Listed>, Next), StoreError>,
    /// A streamed post: the page's connections up to here were another run's (see [`publish`]).
    skip_upto: Option<String>,
}

/// One invocation's share of a fan-out: what is left to do, and what happened so far.
struct FanOut {
    pacer: Pacer,
    /// Throttled connections, each waiting for its backoff to end (at most [`MAX_OWED`]).
    owed: VecDeque<Owed>,
    /// Connections of the pages read and not taken yet, each with the position just past it and
    /// where it lives.
    buffer: VecDeque<Listed>,
    next: Next,
    /// Every connection up to here (in index order) has been taken (called, or owed) or was not
    /// a target.
    position: Position,
    /// A streamed post: connections up to here were claimed by another run of the same publish
    /// (it took them): not targets of this one.
    skip_upto: Option<String>,
    /// A streamed post's message key and run, carried in the cursor.
    stream: Option<(ws_shared::stream::MessageKey, String)>,
    /// An index page was cut by the deadline.
    cut: bool,
    /// The slowest call so far: what one more is expected to need.
    slowest: Duration,
    counts: Tally,
}

impl FanOut {
    /// The next connection to call and its tries so far: an owed one whose backoff is over,
    /// else the next in the index. Notes in `wake` when the first backoff ends.
    fn take(&mut self, now: Instant, wake: &mut Option<Instant>) -> Option<Attempt> {
        if let Some(i) = self.owed.iter().position(|o| o.ready <= now) {
            let owed = self.owed.remove(i).expect("found at i");
            self.counts.retried += 1;
            return Some(owed.attempt);
        }
        if let Some(first) = self.owed.iter().map(|o| o.ready).min() {
            *wake = Some(wake.map_or(first, |w| w.min(first)));
        }
        if self.owed.len() >= MAX_OWED {
            return None;
        }
        loop {
            let (id, past, route) = self.buffer.pop_front()?;
            self.position = past;
            if self.skip_upto.as_deref().is_some_and(|upto| id.as_str() <= upto) {
                continue;
            }
            self.counts.targets += 1;
            return Some(Attempt { id, route, tries: 0, strikes: 0, throttled: None });
        }
    }

    /// The answer: the counts, and a cursor unless every connection was dealt with.
    fn finish(self, target: &cursor::Target, digest: &str, op: Op<'_>, counters: &mut Counters<'_, Metric>) -> Outcome {
        let counts = self.counts;
        let done = self.buffer.is_empty() && self.owed.is_empty() && matches!(self.next, Next::Done);
        let cursor = (!done).then(|| {
            let owed = self
                .owed
                .iter()
                .map(|o| cursor::OwedPost {
                    id: o.attempt.id.clone(),
                    route: o.attempt.route.clone(),
                    tries: o.attempt.tries,
                    strikes: o.attempt.strikes,
                })
                .collect();
            let (key, run) = self.stream.clone().unzip();
            cursor::encode(target, digest, &cursor::Resume { position: self.position.clone(), owed, key, run })
        });
        info!(
            operation = op.name(),
            targets = counts.targets,
            delivered = counts.delivered,
            gone = counts.gone,
            failed = counts.failed,
            throttled = counts.throttled,
            retried = counts.retried,
            owed = self.owed.len(),
            more = cursor.is_some(),
            "fan-out done"
        );
        if self.cut && counts.targets == 0 && counts.throttled == 0 {
            // Not one call fit: a retry (with the cursor) is the caller's move, not another loop.
            counters.incr(Metric::Errors);
            error!("fan-out could not read the connections before the deadline");
            return Outcome::index_failed(
                "the fan-out could not read the connections in time; retry with the cursor",
                counts.counts(op),
                cursor,
            );
        }
        if let Next::Failed(err) = &self.next {
            counters.incr(Metric::Errors);
            error!(error = error_chain(err), "fan-out could not read the connections");
            return Outcome::index_failed(
                "the fan-out could not read the connections; see the function's logs",
                counts.counts(op),
                cursor,
            );
        }
        let status_code = if counts.targets > 0 && counts.failed == counts.targets { 500 } else { 200 };
        Outcome { counts: Some(counts.counts(op)), cursor, ..Outcome::status(status_code) }
    }

    /// True when the next page should be read now: the buffer is down to half a page (so the
    /// read overlaps the calls of the rest, instead of every page stopping them), and the owed
    /// retries leave room.
    fn wants_page(&self, page_size: u32) -> bool {
        self.buffer.len() <= page_size as usize / 2 && self.owed.len() < MAX_OWED && matches!(self.next, Next::After(_))
    }

    fn page_read(&mut self, page: PageRead, deadline: &Deadline) {
        if self.buffer.is_empty() {
            // Everything up to where this page starts was taken (or was not a target).
            self.position = page.from;
        }
        if let Some(upto) = page.skip_upto {
            self.skip_upto = Some(self.skip_upto.take().map_or(upto.clone(), |seen| seen.max(upto)));
        }
        match page.read {
            Ok((entries, next)) => {
                self.buffer.extend(entries);
                self.next = next;
            }
            Err(err) if deadline.is_short_of(MIN_CALL) => {
                // Cut by the deadline, not failed: the next invocation reads this page again.
                warn!(error = error_chain(&err), "index page cut by the deadline");
                self.cut = true;
            }
            Err(err) => self.next = Next::Failed(err),
        }
    }

    /// Counts how a call ended; a throttled one is owed a retry unless it has had its tries.
    fn ended(&mut self, attempt: Attempt, ticket: u64, delivery: Delivery, took: Duration) {
        let tries = attempt.tries.saturating_add(1);
        let signal = if matches!(delivery, Delivery::Throttled) { Signal::Throttled } else { Signal::Through };
        let earlier = match (attempt.throttled, attempt.tries) {
            (Some(post), _) => Earlier::Post(post),
            (None, 0) => Earlier::Never,
            (None, _) => Earlier::Elsewhere,
        };
        let alone = self.pacer.ended(ticket, signal, took, earlier, Instant::now());
        if delivery != Delivery::Throttled {
            self.counts.count(delivery);
            return;
        }
        self.counts.throttled += 1;
        // A throttle while the others go through is this connection's own (full buffer): it
        // counts as a strike; the quota's throttles only as tries.
        let strikes = attempt.strikes.saturating_add(u8::from(alone));
        if strikes >= pacing::MAX_STRIKES || tries >= pacing::MAX_TRIES {
            warn!(connectionId = attempt.id.as_str(), tries, strikes, "throttled on every try; given up");
            self.counts.failed += 1;
        } else {
            let delay = pacing::retry_delay(tries, jitter(&attempt.id, tries));
            let attempt = Attempt { tries, strikes, throttled: Some(ticket), ..attempt };
            self.owed.push_back(Owed { attempt, ready: Instant::now() + delay });
        }
    }
}

/// Where a fan-out starts: the start of the listing, or where `cursor` left off (a cursor from
/// another fan-out, or altered, is an error that says so: a 400).
fn decode_cursor(
    cursor: Option<&str>,
    target: &cursor::Target,
    digest: &str,
) -> Result<cursor::Resume, cursor::CursorError> {
    cursor.map(|raw| cursor::decode(raw, target, digest)).transpose().map(Option::unwrap_or_default)
}

/// Appends `bytes` as lowercase hex to `out` (signatures' hashes, cursor digests).
pub(crate) fn hex_into(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

/// A number in 0..1 that spreads the retries of different connections (deterministic per
/// connection and try, so no random source is needed).
fn jitter(id: &ConnectionId, tries: u8) -> f64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher =
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().build_hasher();
    hasher.write(id.as_str().as_bytes());
    hasher.write_u8(tries);
    #[allow(clippy::cast_precision_loss)]
    let fraction = (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64;
    fraction
}
