//! `ConnectFunction`, the `$connect` route: decides who is connecting and to which
//! conversation, and records the connection once.
//!
//! # Layout
//! - [`Config`]: the environment this function reads.
//! - [`Connect`]: the handler; [`Connect::handle`] turns any event into a response.
//! - [`ConnectError`]: every way a connect is refused, and [`ConnectError::status`], the one
//!   place that maps them to status codes.
//!
//! Rules (docs/design.md §3): `conversationId` from the `correlationId` query parameter, else
//! `conversationId`, else the authorizer context, else `conv-<uuid>`. The authorizer's
//! `principalId` is the user; a query `userId` counts only when no authorizer ran, and one that
//! contradicts the authorizer is a 403. With `ORIGIN_VERIFY_SECRET` set, a request without the
//! matching `X-Origin-Verify` header (added by CloudFront) is a 403 too. The
//! authorizer's context `exp` (the token's expiry, epoch seconds) is kept on the record and in
//! GSI3, so the responder's expiry sweep can close the connection when the token expires; an
//! `exp` that is not epoch seconds is a 403 (its lifetime could not be enforced). With
//! `MAX_CONNECTIONS_PER_USER` set, a user who already has that many `CONNECTED` connections is
//! refused with 429 (counted through GSI2). `CLIENT_INFO` decides how much of the client's IP and
//! user agent the record keeps ([`client_info`]).
//!
//! # An unknown outcome is resolved before answering
//! A put that fails with an error may still have landed (the response was lost, or a stalled
//! attempt arrives after the retry). Answering 500 then would leave a `CONNECTED` record for a
//! socket API Gateway refused. So the put gets a third of the time left, and on an error the rest
//! goes to a conditional put of a tombstone, tried again and again (each attempt cut after
//! `ws_shared::dynamo::WRITE_ATTEMPT_TIMEOUT`, so stalls cannot use up the time): if it lands, no late put can ever land after it and
//! 500 is safe; if it finds the key taken, DynamoDB returns what holds it (no read permission
//! needed): the connect's own record means the connect succeeded (200); a tombstone (a
//! `$disconnect` or an earlier try of this resolution) means 500.

pub mod client_info;

use std::num::NonZeroU32;
use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use chrono::Duration;
use serde_json::Value;
use tracing::{error, info, warn};
use ws_shared::apigw::{self, EventError, WsResponse};
use ws_shared::clock::{Clock, IdSource, RandomIds, SystemClock, from_epoch_millis};
use ws_shared::config::{self, Common, ConfigError, Env};
use ws_shared::deadline::{DEFAULT_MARGIN, Deadline};
use ws_shared::id::{ConversationId, IdError, UserId};
use ws_shared::invocation::Invocations;
use ws_shared::log::error_chain;
use ws_shared::metrics::{Counters, Metrics};
use ws_shared::output::LineSink;
use ws_shared::record::{ConnectionRecord, Tombstone};
use ws_shared::secret::Secret;
use ws_shared::store::{Audience, ConnectionStore, Existing, Part, PutOutcome, StoreError, keep_trying};

pub use crate::client_info::{CLIENT_INFO, ClientInfo};

/// The `svc` of every log line and the `Service` metric dimension.
pub const SVC: &str = "ws-connect";
ws_shared::metrics! {
    /// The EMF counters this function emits.
    pub enum Metric { Connected = "Connected", Refused = "Refused", Errors = "Errors" }
}

/// Query parameters that name the conversation, in order of preference.
const CONVERSATION_PARAMS: [&str; 2] = ["correlationId", "conversationId"];
/// Optional: the secret CloudFront adds as [`ORIGIN_HEADER`]. When set, a `$connect` without it
/// is refused (403), so the API cannot be reached around the edge protection (WAF).
pub const ORIGIN_VERIFY_SECRET: &str = "ORIGIN_VERIFY_SECRET";
/// Optional: the most `CONNECTED` connections one user may hold; a `$connect` past it is a 429.
pub const MAX_CONNECTIONS_PER_USER: &str = "MAX_CONNECTIONS_PER_USER";
/// Highest [`MAX_CONNECTIONS_PER_USER`].
const MAX_PER_USER_LIMIT: u32 = 10_000;
/// Index entries read per page while counting a user's connections.
const COUNT_PAGE: u32 = 1_000;
/// The shortest [`ORIGIN_VERIFY_SECRET`] accepted (the manifest declares the same `min_length`,
/// which the edge module's validation reads).
pub const ORIGIN_SECRET_MIN_LEN: usize = 32;
/// The header carrying the origin secret.
pub const ORIGIN_HEADER: &str = "x-origin-verify";

/// Authorizer context keys that name the conversation, in order of preference.
const CONVERSATION_CONTEXT_KEYS: [&str; 2] = ["conversationId", "correlationId"];

/// What `ConnectFunction` reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table: String,
    pub ttl_minutes: NonZeroU32,
    /// `ORIGIN_VERIFY_SECRET`, when the API sits behind CloudFront.
    pub origin_secret: Option<Secret>,
    /// `CLIENT_INFO`: how much of the IP and user agent is stored.
    pub client_info: ClientInfo,
    /// `MAX_CONNECTIONS_PER_USER`, when set.
    pub max_connections_per_user: Option<NonZeroU32>,
    /// `AWS_REGION` (Lambda sets it): the region of the API this function serves, kept on each
    /// record so posts go through that region's Management API.
    pub region: Option<String>,
    /// `BROADCAST`: write the connection's entry in the live-connection index (GSI4), which a
    /// broadcast reads (default `true`; `false`: one index write less per connect).
    pub broadcast: bool,
    pub common: Common,
}

impl Config {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::table_name(env)?,
            ttl_minutes: config::ttl_minutes(env)?,
            origin_secret: match env.var(ORIGIN_VERIFY_SECRET) {
                Some(secret) if secret.len() < ORIGIN_SECRET_MIN_LEN => {
                    return Err(ConfigError::Invalid {
                        name: ORIGIN_VERIFY_SECRET,
                        value: "<redacted>".to_owned(),
                        hint: "use at least 32 random characters (e.g. openssl rand -hex 32), or leave it unset",
                    });
                }
                other => other.map(Secret::new),
            },
            client_info: ClientInfo::from_env(env)?,
            max_connections_per_user: config::optional_count(
                env,
                MAX_CONNECTIONS_PER_USER,
                MAX_PER_USER_LIMIT,
                "use a whole number from 1 to 10000, or leave it unset for no limit",
            )?,
            region: env.var("AWS_REGION").filter(|r| !r.trim().is_empty()),
            broadcast: config::flag(env, config::BROADCAST, true)?,
            common: Common::from_env(env)?,
        })
    }
}

/// Every way a connect is refused.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Event(#[from] EventError),
    #[error("invalid identifier in the request")]
    InvalidIdentifier(#[from] IdError),
    #[error("the query userId contradicts the authorizer's principalId")]
    UserMismatch,
    #[error("the authorizer context's exp is not a token expiry in epoch seconds: {0:?}")]
    InvalidExpiry(String),
    #[error("the request did not come through the edge: {ORIGIN_HEADER} is missing or wrong")]
    NotThroughEdge,
    #[error("the user already has {0} connections (MAX_CONNECTIONS_PER_USER)")]
    TooManyConnections(u32),
    #[error("could not count the user's connections")]
    Count(#[source] StoreError),
    #[error("could not record the connection")]
    Store(#[from] StoreError),
}

impl ConnectError {
    /// The one mapping from error to status code.
    pub fn status(&self) -> u16 {
        match self {
            Self::Event(_) | Self::InvalidIdentifier(_) => 400,
            // A connection whose token lifetime cannot be enforced is not let in.
            Self::UserMismatch | Self::NotThroughEdge | Self::InvalidExpiry(_) => 403,
            Self::TooManyConnections(_) => 429,
            Self::Count(_) | Self::Store(_) => 500,
        }
    }
}

/// The `$connect` handler, built once per process.
pub struct Connect<S> {
    store: S,
    ttl: Duration,
    origin_secret: Option<Secret>,
    client_info: ClientInfo,
    max_per_user: Option<NonZeroU32>,
    region: Option<String>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    invocations: Invocations<Metric>,
}

impl<S> std::fmt::Debug for Connect<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("ttl", &self.ttl)
            .field("invocations", &self.invocations)
            .finish_non_exhaustive()
    }
}

impl<S: ConnectionStore> Connect<S> {
    /// A handler on the system clock and random UUIDs; EMF lines go to `metrics_sink`.
    pub fn new(store: S, config: &Config, metrics_sink: Arc<dyn LineSink>) -> Self {
        Self {
            store,
            ttl: Duration::minutes(i64::from(config.ttl_minutes.get())),
            origin_secret: config.origin_secret.clone(),
            client_info: config.client_info,
            max_per_user: config.max_connections_per_user,
            region: config.region.clone(),
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

    #[must_use]
    pub fn with_ids(mut self, ids: Arc<dyn IdSource>) -> Self {
        self.ids = ids;
        self
    }

    /// Handles one `$connect` event before `deadline_ms` (epoch milliseconds, Lambda's
    /// `Context::deadline`). Never fails: every outcome is a response, and every invocation writes
    /// one log line about it and one EMF line.
    pub async fn handle(&self, event: Value, request_id: &str, deadline_ms: u64) -> WsResponse {
        let deadline = Deadline::from_epoch_millis(deadline_ms, self.clock.now(), DEFAULT_MARGIN);
        let connect = async |counters: &mut Counters<'_, Metric>| match self.connect(event, &deadline, counters).await {
            Ok(response) => response,
            Err(err) => {
                if let ConnectError::TooManyConnections(_) = err {
                    counters.incr(Metric::Refused);
                }
                apigw::failure("connect", err.status(), &err, counters)
            }
        };
        self.invocations.run(request_id, self.clock.as_ref(), connect, || WsResponse::status(500)).await
    }

    async fn connect(
        &self,
        event: Value,
        deadline: &Deadline,
        counters: &mut Counters<'_, Metric>,
    ) -> Result<WsResponse, ConnectError> {
        let event = apigw::parse_event(event)?;
        let connection_id = apigw::connection_id(&event)?;
        let span = tracing::Span::current();
        span.record("connectionId", connection_id.as_str());
        if let Some(secret) = &self.origin_secret {
            let offered = event.headers.get(ORIGIN_HEADER).map(aws_lambda_events::http::HeaderValue::as_bytes);
            if !offered.is_some_and(|offered| secret.matches(offered)) {
                return Err(ConnectError::NotThroughEdge);
            }
        }

        let user_id = user_of(&event)?;
        let token_expires_at = token_expiry_of(&event)?;
        let conversation_id = match conversation_of(&event)? {
            Some(id) => id,
            None => ConversationId::generate(self.ids.uuid()),
        };
        span.record("correlationId", conversation_id.as_str());
        if let (Some(limit), Some(user)) = (self.max_per_user, &user_id) {
            self.check_user_limit(user, &connection_id, limit, deadline).await?;
        }

        let now = self.clock.now();
        let ctx = &event.request_context;
        let record = ConnectionRecord {
            connected_at: from_epoch_millis(ctx.connected_at).filter(|_| ctx.connected_at > 0).unwrap_or(now),
            updated_at: now,
            ip: self.client_info.ip(ctx.identity.source_ip.as_deref()),
            user_agent: self.client_info.user_agent(ctx.identity.user_agent.as_deref()),
            domain_name: ctx.domain_name.clone(),
            stage: ctx.stage.clone(),
            expires_at: now + self.ttl,
            connection_id,
            conversation_id,
            user_id,
            token_expires_at,
            api_id: ctx.apiid.clone().filter(|id| !id.is_empty()),
            region: self.region.clone(),
        };
        let authenticated = record.user_id.is_some();
        // Settling an unknown outcome needs more tries than the put: it gets two thirds.
        let put_deadline = Deadline::after(deadline.budget() / 3);
        match self.store.put_connection(&record, &put_deadline).await {
            Ok(PutOutcome::Created) => {
                counters.incr(Metric::Connected);
                info!(authenticated, "connection recorded");
            }
            Ok(PutOutcome::AlreadyExists(Existing::Connection)) => {
                info!("connection already recorded; left as it was");
            }
            Ok(PutOutcome::AlreadyExists(_)) => {
                info!("a disconnect for this connection came first; tombstone left as it was");
            }
            Err(err) => {
                if err.permanent {
                    return Err(err.into());
                }
                warn!(error = error_chain(&err), "the put's outcome is unknown; resolving it");
                if !self.resolve(&record, deadline).await {
                    return Err(err.into());
                }
                counters.incr(Metric::Connected);
                info!(authenticated, "connection recorded (the put had landed)");
            }
        }
        Ok(WsResponse::ok().with_subprotocol(apigw::choose_subprotocol(&event)))
    }

    /// Refuses a connect of `user` who already holds `limit` `CONNECTED` connections other than
    /// `connection_id` (a replayed connect is not counted against itself). Reads GSI2 (eventually
    /// consistent) with at most a third of the time left, so the put keeps most of it.
    async fn check_user_limit(
        &self,
        user: &UserId,
        connection_id: &ws_shared::id::ConnectionId,
        limit: NonZeroU32,
        deadline: &Deadline,
    ) -> Result<(), ConnectError> {
        let count_deadline = Deadline::after(deadline.budget() / 3);
        let audience = Audience::User(user.clone());
        let mut after = None;
        let mut held = 0u32;
        loop {
            let page = self
                .store
                .connected_page(&audience, Part::WHOLE, after.as_ref(), COUNT_PAGE, &count_deadline)
                .await
                .map_err(ConnectError::Count)?;
            let others = page.ids.iter().filter(|id| *id != connection_id).count();
            held = held.saturating_add(u32::try_from(others).unwrap_or(u32::MAX));
            if held >= limit.get() {
                return Err(ConnectError::TooManyConnections(limit.get()));
            }
            match page.resume_after {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// After a put whose outcome is unknown: `true` when the connection's record is there, `false`
    /// when a tombstone now holds its place (no late put can land) or nothing could be settled.
    async fn resolve(&self, record: &ConnectionRecord, deadline: &Deadline) -> bool {
        let tombstone = Tombstone {
            connection_id: record.connection_id.clone(),
            at: record.updated_at,
            expires_at: record.expires_at,
        };
        let settled =
            keep_trying(deadline, "settling the connect", || self.store.put_tombstone(&tombstone, deadline)).await;
        match settled {
            Ok(PutOutcome::Created) => info!("the put had not landed; a tombstone holds its place"),
            Ok(PutOutcome::AlreadyExists(Existing::Connection)) => return true,
            Ok(PutOutcome::AlreadyExists(Existing::Tombstone)) => info!("a tombstone holds the connection's place"),
            Ok(PutOutcome::AlreadyExists(Existing::Unknown)) => {
                error!("the store did not say what holds the connection's place");
            }
            Err(err) => error!(
                error = error_chain(&err),
                "could not settle the connect's outcome before the deadline; its record may appear \
                 later and expire by TTL"
            ),
        }
        false
    }
}

/// The authorizer's `principalId` when one ran; otherwise the query `userId`, if any.
fn user_of(event: &ApiGatewayWebsocketProxyRequest) -> Result<Option<UserId>, ConnectError> {
    let query_user = event.query_string_parameters.first("userId");
    let principal = event.request_context.authorizer.fields.get("principalId").and_then(scalar_string);
    match (principal, query_user) {
        (Some(principal), query) => {
            let principal = UserId::parse(principal)?;
            if query.is_some_and(|q| q != principal.as_str()) {
                return Err(ConnectError::UserMismatch);
            }
            Ok(Some(principal))
        }
        (None, Some(query)) => Ok(Some(UserId::parse(query)?)),
        (None, None) => Ok(None),
    }
}

/// The token's expiry the authorizer put in its context as `exp` (epoch seconds; API Gateway
/// hands context values on as strings, so `"1767225600"` and `1767225600` both count). `None`
/// when no authorizer ran or it gave none.
fn token_expiry_of(event: &ApiGatewayWebsocketProxyRequest) -> Result<Option<i64>, ConnectError> {
    let Some(raw) = event.request_context.authorizer.fields.get("exp") else { return Ok(None) };
    let text = scalar_string(raw).unwrap_or_else(|| raw.to_string());
    // Epoch seconds between 2001 and 5138: a millisecond value or a date string is refused.
    match text.trim().parse::<i64>() {
        Ok(exp) if (1_000_000_000..100_000_000_000).contains(&exp) => Ok(Some(exp)),
        _ => Err(ConnectError::InvalidExpiry(text.chars().take(40).collect())),
    }
}

/// The conversation named by the query, else by the authorizer context; `None` if neither.
fn conversation_of(event: &ApiGatewayWebsocketProxyRequest) -> Result<Option<ConversationId>, ConnectError> {
    let from_query = CONVERSATION_PARAMS.iter().find_map(|p| event.query_string_parameters.first(p)).map(str::to_owned);
    let from_authorizer = || {
        CONVERSATION_CONTEXT_KEYS
            .iter()
            .find_map(|k| event.request_context.authorizer.fields.get(*k).and_then(scalar_string))
    };
    match from_query.or_else(from_authorizer) {
        Some(raw) => Ok(Some(ConversationId::parse(raw)?)),
        None => Ok(None),
    }
}

/// Authorizer context values arrive as JSON strings, numbers or booleans.
fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
