//! `WebSocketRoutes`: what a connected client asks the service itself, on two-way routes (the
//! answer goes back on the same socket).
//!
//! # Layout
//! - [`Config`]: the environment this function reads.
//! - [`Routes`]: the handler; [`Routes::handle`] turns any route event into the answer frame.
//! - [`resume`]: `{"action":"resume",…}`: a client's streams since the position it delivered.
//!
//! Who the client is comes from the connection's record (read consistently) and the
//! authorizer's context API Gateway attaches to every route, never from the message: a client
//! may read its conversation's streams and its user's, nothing else. Every answer is a JSON
//! frame: `{"type":"resumed",…}`, or `{"type":"error","action":…,"error":…}` that says what was
//! wrong (a refusal is logged without the client's data). docs/design.md ("Resume") has the
//! contract.

pub mod resume;

use std::num::NonZeroU32;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tracing::{error, info, warn};
use ws_shared::apigw::{self, WsResponse};
use ws_shared::clock::{Clock, SystemClock};
use ws_shared::config::{self, Common, ConfigError, Env};
use ws_shared::deadline::{DEFAULT_MARGIN, Deadline};
use ws_shared::invocation::Invocations;
use ws_shared::log::error_chain;
use ws_shared::metrics::{Counters, Metrics};
use ws_shared::output::LineSink;
use ws_shared::store::{ConnectionStore, LiveConnection};
use ws_shared::stream::StreamStore;

/// The `svc` of every log line and the `Service` metric dimension.
pub const SVC: &str = "ws-routes";
ws_shared::metrics! {
    /// The EMF counters this function emits.
    pub enum Metric { Resumed = "Resumed", Refused = "Refused", Errors = "Errors" }
}

pub const RESUME_MAX_MESSAGES: &str = "RESUME_MAX_MESSAGES";

/// What `WebSocketRoutes` reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table: String,
    /// `AWS_REGION` (Lambda sets it): the region whose streams are this connection's own.
    pub region: String,
    /// `RESUME_MAX_MESSAGES`: most messages one `resume` answer carries (1-1000, default 300).
    pub resume_max_messages: NonZeroU32,
    pub common: Common,
}

impl Config {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::table_name(env)?,
            region: config::region(env)?,
            resume_max_messages: config::count(
                env,
                RESUME_MAX_MESSAGES,
                300,
                1000,
                "use a whole number of messages from 1 to 1000, e.g. 300",
            )?,
            common: Common::from_env(env)?,
        })
    }
}

/// The handler, built once per process.
pub struct Routes<S> {
    store: S,
    region: String,
    resume_max_messages: u32,
    clock: Arc<dyn Clock>,
    invocations: Invocations<Metric>,
}

impl<S> std::fmt::Debug for Routes<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes").field("resume_max_messages", &self.resume_max_messages).finish_non_exhaustive()
    }
}

/// A refusal or failure, as the client reads it.
fn error_frame(action: &str, error: &str) -> String {
    json!({"type": "error", "action": action, "error": error}).to_string()
}

/// The route's answer: a 200 whose body API Gateway sends back to the client.
fn frame(status_code: u16, body: String) -> WsResponse {
    WsResponse { status_code, headers: std::collections::BTreeMap::new(), body: Some(body) }
}

impl<S: ConnectionStore + StreamStore> Routes<S> {
    pub fn new(store: S, config: &Config, metrics_sink: Arc<dyn LineSink>) -> Self {
        Self {
            store,
            region: config.region.clone(),
            resume_max_messages: config.resume_max_messages.get(),
            clock: Arc::new(SystemClock),
            invocations: Invocations::new(Metrics::new(config.common.metrics_namespace.clone(), SVC, metrics_sink)),
        }
    }

    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Handles one route event before `deadline_ms`. Never fails: every outcome is a frame for
    /// the client, one log line and one EMF line.
    pub async fn handle(&self, event: Value, request_id: &str, deadline_ms: u64) -> WsResponse {
        let deadline = Deadline::from_epoch_millis(deadline_ms, self.clock.now(), DEFAULT_MARGIN);
        let route = async |counters: &mut Counters<'_, Metric>| self.route(event, &deadline, counters).await;
        let failed = || frame(500, error_frame("unknown", "the service failed; try again"));
        self.invocations.run(request_id, self.clock.as_ref(), route, failed).await
    }

    async fn route(&self, event: Value, deadline: &Deadline, counters: &mut Counters<'_, Metric>) -> WsResponse {
        let parsed = match apigw::parse_event(event) {
            Ok(parsed) => parsed,
            Err(err) => return refuse("unknown", &err.to_string(), counters),
        };
        let connection_id = match apigw::connection_id(&parsed) {
            Ok(id) => id,
            Err(err) => return refuse("unknown", &err.to_string(), counters),
        };
        tracing::Span::current().record("connectionId", connection_id.as_str());
        let Some(Ok(Value::Object(body))) = parsed.body.as_deref().map(serde_json::from_str::<Value>) else {
            return refuse("unknown", "the message must be a JSON object with an \"action\"", counters);
        };
        let action = body.get("action").and_then(Value::as_str).unwrap_or_default().to_owned();
        if action != "resume" {
            return refuse(&action, "this route answers \"resume\" only", counters);
        }
        // Who the client is: its record, and the authorizer's principal API Gateway attaches.
        let connection = match self.store.live_connection(&connection_id, deadline).await {
            Ok(Some(connection)) => connection,
            Ok(None) => {
                return refuse(&action, "this connection is not recorded as connected; reconnect", counters);
            }
            Err(err) => {
                counters.incr(Metric::Errors);
                error!(error = error_chain(&err), "could not read the connection's record");
                return frame(500, error_frame(&action, "could not read this connection's record; try again"));
            }
        };
        let principal = parsed.request_context.authorizer.fields.get("principalId").and_then(Value::as_str);
        if let Some(principal) = principal
            && connection.user_id.as_ref().map(ws_shared::id::UserId::as_str) != Some(principal)
        {
            return refuse(&action, "this connection's record does not match its token; reconnect", counters);
        }
        self.resume(&body, &connection, deadline, counters).await
    }

    async fn resume(
        &self,
        body: &Map<String, Value>,
        connection: &LiveConnection,
        deadline: &Deadline,
        counters: &mut Counters<'_, Metric>,
    ) -> WsResponse {
        let positions = match resume::parse(body) {
            Ok(Some(positions)) => positions,
            Ok(None) => resume::own(connection, &self.region),
            Err(err) => return refuse("resume", &err.to_string(), counters),
        };
        if let Some(i) = positions.iter().position(|p| !resume::may_read(connection, &p.stream)) {
            return refuse("resume", &resume::ResumeError::Forbidden(i).to_string(), counters);
        }
        let budget = resume::Budget::new(self.resume_max_messages);
        match resume::answer(&self.store, &positions, budget, self.clock.now(), deadline).await {
            Ok(answer) => {
                counters.incr(Metric::Resumed);
                let messages: usize = answer.streams.iter().map(|s| s.messages.len()).sum();
                let lost = answer.streams.iter().filter(|s| !s.recovered).count();
                info!(streams = answer.streams.len(), messages, unrecovered = lost, more = answer.more, "resumed");
                frame(200, serde_json::to_string(&answer).expect("an answer serializes"))
            }
            Err(err) => {
                counters.incr(Metric::Errors);
                error!(error = error_chain(&err), "could not read the streams");
                frame(500, error_frame("resume", "could not read the streams; try again"))
            }
        }
    }
}

/// A request the client got wrong: counted, logged without its data, answered with why.
fn refuse(action: &str, why: &str, counters: &mut Counters<'_, Metric>) -> WsResponse {
    counters.incr(Metric::Refused);
    let known = if action == "resume" { action } else { "other" };
    warn!(action = known, reason = why, "request refused");
    frame(200, error_frame(known, why))
}
