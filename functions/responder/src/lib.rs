//! `WebSocketResponder`: posts one message to one connection, or fans it out to every
//! `CONNECTED` connection of a conversation or user. Invoked directly (Step Functions, other
//! Lambdas); it *returns* its result so a state machine can branch on `statusCode`.
//!
//! # Layout
//! - [`event`]: the input, validated into a target and the wire envelope.
//! - [`endpoint`]: which Management API endpoint to post through.
//! - [`management`]: the notifier port ([`management::Poster`]) and its SDK adapter, one client
//!   per endpoint.
//! - [`Config`], [`Responder`], [`Outcome`]: configuration, the handler, and what it returns.
//!
//! Results: `200` posted; `410` gone (the record becomes `GONE` when `MARK_GONE=true`); `413`
//! message over 128 KB, refused before any call; `400` a bad event, with `error` saying what;
//! `500` anything else after the SDK's retries. Fan-out returns per-outcome counts.

pub mod endpoint;
pub mod event;
pub mod management;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tracing::{Instrument, debug, error, info, warn};
use ws_shared::clock::{Clock, SystemClock};
use ws_shared::config::{self, Common, ConfigError, Env};
use ws_shared::id::ConnectionId;
use ws_shared::invocation::ColdStart;
use ws_shared::log::error_chain;
use ws_shared::metrics::{Counters, Metrics};
use ws_shared::output::LineSink;
use ws_shared::store::{Audience, ConnectionStore, GoneOutcome};

use crate::endpoint::Endpoint;
use crate::event::{MAX_MESSAGE_BYTES, Request, Target};
use crate::management::{PostError, Poster};

/// The `svc` of every log line and the `Service` metric dimension.
pub const SVC: &str = "ws-responder";
/// The EMF counters this function emits.
pub const METRICS: &[&str] = &["Posted", "Gone", "Errors"];

pub const WS_ENDPOINT: &str = "WS_ENDPOINT";
pub const MARK_GONE: &str = "MARK_GONE";
pub const FANOUT_CONCURRENCY: &str = "FANOUT_CONCURRENCY";

/// Time kept back from the invocation's deadline to return a result.
const DEADLINE_MARGIN: Duration = Duration::from_millis(250);
/// Least time a post is given, even past the margin.
const MIN_BUDGET: Duration = Duration::from_millis(100);

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
}

/// Per-outcome counts of a fan-out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FanOutCounts {
    pub targets: usize,
    pub posted: usize,
    pub gone: usize,
    pub failed: usize,
}

impl Outcome {
    fn status(status_code: u16) -> Self {
        Self { status_code, error: None, counts: None }
    }

    fn refused(status_code: u16, error: impl std::fmt::Display) -> Self {
        Self { status_code, error: Some(error.to_string()), counts: None }
    }
}

/// The handler, built once per process.
pub struct Responder<P, S> {
    poster: P,
    store: Option<S>,
    ws_endpoint: Option<Endpoint>,
    mark_gone: bool,
    concurrency: usize,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    cold_start: ColdStart,
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
            clock: Arc::new(SystemClock),
            metrics: Metrics::new(config.common.metrics_namespace.clone(), SVC, METRICS, metrics_sink),
            cold_start: ColdStart::new(),
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
    /// Lambda's `Context::deadline`); retries stop in time to return a result.
    pub async fn handle(&self, event: Value, request_id: &str, deadline_ms: u64) -> Outcome {
        let span = ws_shared::invocation::span(request_id, &self.cold_start);
        async {
            let mut counters = self.metrics.start();
            let outcome = self.respond(event, deadline_ms, &mut counters).await;
            if outcome.status_code == 400 || outcome.status_code == 413 {
                warn!(status = outcome.status_code, reason = outcome.error.as_deref(), "request refused");
            }
            counters.emit(self.clock.now(), request_id);
            outcome
        }
        .instrument(span)
        .await
    }

    async fn respond(&self, event: Value, deadline_ms: u64, counters: &mut Counters<'_>) -> Outcome {
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
        let budget = self.budget(deadline_ms);
        let message_type = request.envelope.message_type.as_str();
        let sequence = request.envelope.sequence;

        match &request.target {
            Target::One(id) => {
                let delivery = self.deliver(&endpoint, id, body, budget, self.mark_gone, counters).await;
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
            Target::FanOut(audience) => self.fan_out(audience, &endpoint, &body, budget, counters).await,
        }
    }

    async fn fan_out(
        &self,
        audience: &Audience,
        endpoint: &Endpoint,
        body: &[u8],
        budget: Duration,
        counters: &mut Counters<'_>,
    ) -> Outcome {
        let Some(store) = &self.store else {
            return Outcome::refused(
                400,
                "fan-out needs the connections table; this function has no TABLE_CONNECTIONS",
            );
        };
        let targets = match store.connected(audience).await {
            Ok(targets) => targets,
            Err(err) => {
                counters.incr("Errors");
                error!(error = error_chain(&err), "fan-out could not list the connections");
                return Outcome::refused(500, "the fan-out failed; see the function's logs");
            }
        };
        // Each delivery counts into its own counters; they are summed after the stream ends.
        let deliveries: Vec<(Delivery, Counters<'_>)> = futures_util::stream::iter(&targets)
            .map(|id| async move {
                let mut own = self.metrics.start();
                let delivery = self.deliver(endpoint, id, body.to_vec(), budget, true, &mut own).await;
                (delivery, own)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut counts = FanOutCounts { targets: targets.len(), ..FanOutCounts::default() };
        for (delivery, own) in &deliveries {
            counters.merge(own);
            match delivery {
                Delivery::Posted => counts.posted += 1,
                Delivery::Gone => counts.gone += 1,
                Delivery::Failed => counts.failed += 1,
            }
        }
        info!(
            targets = counts.targets,
            posted = counts.posted,
            gone = counts.gone,
            failed = counts.failed,
            bytes = body.len(),
            "fan-out done"
        );
        let status_code = if counts.targets > 0 && counts.failed == counts.targets { 500 } else { 200 };
        Outcome { status_code, error: None, counts: Some(counts) }
    }

    /// Posts to one connection, counts the result, and marks a gone connection `GONE` when asked.
    async fn deliver(
        &self,
        endpoint: &Endpoint,
        id: &ConnectionId,
        body: Vec<u8>,
        budget: Duration,
        mark_gone: bool,
        counters: &mut Counters<'_>,
    ) -> Delivery {
        match self.poster.post(endpoint, id, body, budget).await {
            Ok(()) => {
                counters.incr("Posted");
                debug!(connectionId = id.as_str(), "posted");
                Delivery::Posted
            }
            Err(PostError::Gone) => {
                counters.incr("Gone");
                if mark_gone && let Some(store) = &self.store {
                    match store.mark_gone(id, self.clock.now()).await {
                        Ok(GoneOutcome::Marked) => debug!(connectionId = id.as_str(), "record marked GONE"),
                        Ok(GoneOutcome::NotConnected) => {
                            debug!(connectionId = id.as_str(), "record already not CONNECTED; left as it was");
                        }
                        Err(err) => {
                            counters.incr("Errors");
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
                counters.incr("Errors");
                error!(connectionId = id.as_str(), error = error_chain(&err), "post failed");
                Delivery::Failed
            }
        }
    }

    fn budget(&self, deadline_ms: u64) -> Duration {
        let now_ms = u64::try_from(self.clock.now().timestamp_millis()).unwrap_or(0);
        Duration::from_millis(deadline_ms.saturating_sub(now_ms)).saturating_sub(DEADLINE_MARGIN).max(MIN_BUDGET)
    }
}
