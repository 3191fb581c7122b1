//! `WebSocketRoutes`: what a connected client asks the service itself, on two-way routes (the
//! answer goes back on the same socket).
//!
//! # Layout
//! - [`Config`]: the environment this function reads.
//! - [`Routes`]: the handler; [`Routes::handle`] turns any route event into the answer frame.
//! - [`resume`]: `{"action":"resume",…}`: a client's streams since the position it delivered.
//! - `{"action":"presence"}`: who is online in the client's own conversation, read as the
//!   responder's `presence` reads it (`ws_responder::presence`), asking API Gateway about
//!   connections older than `PRESENCE_STALE_MINUTES`.
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
use std::time::Duration;

use serde_json::{Map, Value, json};
use tracing::{error, info, warn};
use ws_responder::endpoint::Endpoint;
use ws_responder::management::{PostError, Poster};
use ws_shared::apigw::{self, WsResponse};
use ws_shared::clock::{Clock, SystemClock};
use ws_shared::config::{self, Common, ConfigError, Env};
use ws_shared::deadline::{DEFAULT_MARGIN, Deadline};
use ws_shared::id::ConnectionId;
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
    pub enum Metric { Resumed = "Resumed", Presence = "Presence", Refused = "Refused", Errors = "Errors" }
}

/// Connections one presence answer reads (one index page): a frame of up to 1,000 users stays far
/// under API Gateway's 128 KB.
const PRESENCE_PAGE: u32 = 1000;
/// Questions to API Gateway in flight at once while answering presence.
const PRESENCE_CONCURRENCY: usize = 32;

pub const RESUME_MAX_MESSAGES: &str = "RESUME_MAX_MESSAGES";

/// What `WebSocketRoutes` reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table: String,
    /// `AWS_REGION` (Lambda sets it): the region whose streams are this connection's own.
    pub region: String,
    /// `RESUME_MAX_MESSAGES`: most messages one `resume` answer carries (1-1000, default 300).
    pub resume_max_messages: NonZeroU32,
    /// `PRESENCE_STALE_MINUTES`: a connection older than this is asked about before a presence
    /// answer counts it (1-1440, default 10).
    pub presence_stale_minutes: NonZeroU32,
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
            presence_stale_minutes: config::count(
                env,
                ws_responder::PRESENCE_STALE_MINUTES,
                10,
                1440,
                "use a whole number of minutes from 1 to 1440, e.g. 10",
            )?,
            common: Common::from_env(env)?,
        })
    }
}

/// The handler, built once per process. `P` asks API Gateway whether a connection is live
/// (presence): the Management API in the function ([`Routes::with_poster`]).
pub struct Routes<S, P = NoManagementApi> {
    store: S,
    poster: P,
    region: String,
    resume_max_messages: u32,
    presence_stale: chrono::Duration,
    clock: Arc<dyn Clock>,
    invocations: Invocations<Metric>,
}

/// No Management API to ask: presence counts every recorded connection, and logs that it could
/// not ask (the function's `main` always gives one).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoManagementApi;

impl Poster for NoManagementApi {
    async fn post(&self, _: &Endpoint, _: &ConnectionId, _: bytes::Bytes, _: Duration) -> Result<(), PostError> {
        Err(PostError::Failed("no Management API client".into()))
    }

    async fn close(&self, _: &Endpoint, _: &ConnectionId, _: Duration) -> Result<(), PostError> {
        Err(PostError::Failed("no Management API client".into()))
    }

    async fn check(&self, _: &Endpoint, _: &ConnectionId, _: Duration) -> Result<(), PostError> {
        Err(PostError::Failed("no Management API client".into()))
    }
}

impl<S, P> std::fmt::Debug for Routes<S, P> {
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
            poster: NoManagementApi,
            region: config.region.clone(),
            resume_max_messages: config.resume_max_messages.get(),
            presence_stale: chrono::Duration::minutes(i64::from(config.presence_stale_minutes.get())),
            clock: Arc::new(SystemClock),
            invocations: Invocations::new(Metrics::new(config.common.metrics_namespace.clone(), SVC, metrics_sink)),
        }
    }
}

impl<S: ConnectionStore + StreamStore, P: Poster> Routes<S, P> {
    /// Presence asks API Gateway through `poster` whether older connections are still live.
    pub fn with_poster<Q: Poster>(self, poster: Q) -> Routes<S, Q> {
        Routes {
            store: self.store,
            poster,
            region: self.region,
            resume_max_messages: self.resume_max_messages,
            presence_stale: self.presence_stale,
            clock: self.clock,
            invocations: self.invocations,
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
        if action != "resume" && action != "presence" {
            return refuse(&action, "this route answers \"resume\" or \"presence\"", counters);
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
        if action == "presence" {
            let context = parsed.request_context.domain_name.as_deref().zip(parsed.request_context.stage.as_deref());
            return self.presence(&body, &connection, context, deadline, counters).await;
        }
        self.resume(&body, &connection, deadline, counters).await
    }

    /// `{"action":"presence"}` (or naming its own `conversationId`), with a `cursor` for the next
    /// page: who is online in the client's own conversation.
    async fn presence(
        &self,
        body: &Map<String, Value>,
        connection: &LiveConnection,
        context: Option<(&str, &str)>,
        deadline: &Deadline,
        counters: &mut Counters<'_, Metric>,
    ) -> WsResponse {
        let own = connection.conversation_id.as_str();
        match body.get("conversationId") {
            None | Some(Value::Null) => {}
            Some(Value::String(asked)) if asked == own => {}
            Some(_) => {
                let why = format!(
                    "a connection may ask for the presence of its own conversation ({own}) only; connect to another \
                     conversation to see who is in it"
                );
                return refuse("presence", &why, counters);
            }
        }
        let cursor = match body.get("cursor") {
            None | Some(Value::Null) => None,
            Some(Value::String(cursor)) => Some(cursor.as_str()),
            Some(_) => {
                return refuse("presence", "cursor must be the string a previous presence answer gave", counters);
            }
        };
        // Connections without a recorded API are asked through the one this client came in by.
        let fallback = ws_responder::endpoint::resolve(None, None, context).ok();
        let query = ws_responder::presence::Query {
            store: &self.store,
            poster: &self.poster,
            template: &ws_responder::endpoint::EndpointTemplate::default(),
            fallback: fallback.as_ref(),
            now: self.clock.now(),
            stale: self.presence_stale,
            page_size: PRESENCE_PAGE,
            concurrency: PRESENCE_CONCURRENCY,
        };
        let audience = ws_shared::store::Audience::Conversation(connection.conversation_id.clone());
        match query.page(&audience, cursor, deadline).await {
            Ok(page) => {
                counters.incr(Metric::Presence);
                let mut answer = json!({"type": "presence", "conversationId": own});
                let body = serde_json::to_value(&page.answer).expect("an answer serializes");
                answer.as_object_mut().expect("an object").extend(body.as_object().expect("an object").clone());
                if let Some(cursor) = page.cursor {
                    answer["cursor"] = json!(cursor);
                }
                frame(200, answer.to_string())
            }
            Err(ws_responder::presence::PresenceError::Cursor(err)) => refuse("presence", &err.to_string(), counters),
            Err(err) => {
                counters.incr(Metric::Errors);
                error!(error = error_chain(&err), "could not read the conversation's connections");
                frame(500, error_frame("presence", "could not read who is online; try again"))
            }
        }
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
    let known = if action == "resume" || action == "presence" { action } else { "other" };
    warn!(action = known, reason = why, "request refused");
    frame(200, error_frame(known, why))
}
