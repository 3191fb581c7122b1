//! `disconnectWS`, the `$disconnect` route: marks the connection `DISCONNECTED` with the close
//! code and reason API Gateway reports.
//!
//! # Layout
//! - [`Config`]: the environment this function reads.
//! - [`Disconnect`]: the handler; [`Disconnect::handle`] turns any event into a response.
//! - [`DisconnectError`] and [`DisconnectError::status`]: the one error-to-status mapping.
//!
//! `$disconnect` is best-effort and at-least-once, and may overtake its `$connect`
//! (docs/design.md §3). A disconnect for an unknown connection is a 200 that counts `NotFound`; it leaves
//! a `DISCONNECTED` tombstone so the late connect cannot land (see `ws_shared::dynamo`).

use std::sync::Arc;

use chrono::Duration;
use serde_json::Value;
use tracing::info;
use ws_shared::apigw::{self, EventError, WsResponse};
use ws_shared::clock::{Clock, SystemClock};
use ws_shared::deadline::{DEFAULT_MARGIN, Deadline};
use ws_shared::invocation::Invocations;
use ws_shared::metrics::{Counters, Metrics};
use ws_shared::output::LineSink;
use ws_shared::record::Disconnection;
use ws_shared::store::{ConnectionStore, DisconnectOutcome, StoreError, keep_trying};

/// The `svc` of every log line and the `Service` metric dimension.
pub const SVC: &str = "ws-disconnect";
ws_shared::metrics! {
    /// The EMF counters this function emits.
    pub enum Metric { Disconnected = "Disconnected", NotFound = "NotFound", Errors = "Errors" }
}

/// What `disconnectWS` reads from its environment. `CONNECTION_TTL_MINUTES` (optional, as for
/// `ConnectFunction`) sets how long a tombstone for an unknown connection is kept.
pub type Config = ws_shared::config::TableConfig;

/// Every way a disconnect fails.
#[derive(Debug, thiserror::Error)]
pub enum DisconnectError {
    #[error(transparent)]
    Event(#[from] EventError),
    #[error("could not record the disconnect")]
    Store(#[from] StoreError),
}

impl DisconnectError {
    /// The one mapping from error to status code.
    pub fn status(&self) -> u16 {
        match self {
            Self::Event(_) => 400,
            Self::Store(_) => 500,
        }
    }
}

/// The `$disconnect` handler, built once per process.
pub struct Disconnect<S> {
    store: S,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    invocations: Invocations<Metric>,
}

impl<S> std::fmt::Debug for Disconnect<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disconnect")
            .field("ttl", &self.ttl)
            .field("invocations", &self.invocations)
            .finish_non_exhaustive()
    }
}

impl<S: ConnectionStore> Disconnect<S> {
    /// A handler on the system clock; EMF lines go to `metrics_sink`.
    pub fn new(store: S, config: &Config, metrics_sink: Arc<dyn LineSink>) -> Self {
        Self {
            store,
            ttl: Duration::minutes(i64::from(config.ttl_minutes.get())),
            clock: Arc::new(SystemClock),
            invocations: Invocations::new(Metrics::new(config.common.metrics_namespace.clone(), SVC, metrics_sink)),
        }
    }

    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Handles one `$disconnect` event before `deadline_ms` (epoch milliseconds, Lambda's
    /// `Context::deadline`). Never fails: every outcome is a response, one log line and one EMF
    /// line.
    pub async fn handle(&self, event: Value, request_id: &str, deadline_ms: u64) -> WsResponse {
        let deadline = Deadline::from_epoch_millis(deadline_ms, self.clock.now(), DEFAULT_MARGIN);
        let disconnect =
            async |counters: &mut Counters<'_, Metric>| match self.disconnect(event, &deadline, counters).await {
                Ok(()) => WsResponse::ok(),
                Err(err) => apigw::failure("disconnect", err.status(), &err, counters),
            };
        self.invocations.run(request_id, self.clock.as_ref(), disconnect, || WsResponse::status(500)).await
    }

    async fn disconnect(
        &self,
        event: Value,
        deadline: &Deadline,
        counters: &mut Counters<'_, Metric>,
    ) -> Result<(), DisconnectError> {
        let event = apigw::parse_event(event)?;
        let connection_id = apigw::connection_id(&event)?;
        tracing::Span::current().record("connectionId", connection_id.as_str());

        let now = self.clock.now();
        let ctx = &event.request_context;
        let disconnection = Disconnection {
            connection_id,
            at: now,
            close_code: ctx.disconnect_status_code,
            close_reason: ctx.disconnect_reason.clone().filter(|r| !r.is_empty()),
            expires_at: now + self.ttl,
        };
        match self.mark(&disconnection, deadline).await? {
            DisconnectOutcome::Disconnected => {
                counters.incr(Metric::Disconnected);
                info!(closeCode = disconnection.close_code, "connection marked disconnected");
            }
            DisconnectOutcome::NotFound => {
                counters.incr(Metric::NotFound);
                info!(closeCode = disconnection.close_code, "disconnect for an unknown connection; tombstone kept");
            }
        }
        Ok(())
    }

    /// API Gateway never redelivers a failed `$disconnect`, and a record left `CONNECTED` is an
    /// orphan until its TTL: so the update is tried again while time is left, after the store's own
    /// retries give up. Marking is idempotent (the first disconnect's values win).
    async fn mark(&self, disconnection: &Disconnection, deadline: &Deadline) -> Result<DisconnectOutcome, StoreError> {
        keep_trying(deadline, "recording the disconnect", || self.store.mark_disconnected(disconnection, deadline))
            .await
    }
}
