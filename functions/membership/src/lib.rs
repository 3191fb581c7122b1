//! `MembershipFunction`, the enrichment of the lifecycle pipe (`terraform/modules/events`): the
//! pipe hands it a batch of the table's stream records (the ones that open or end a connection),
//! it keeps each user's live connections per conversation and what it last said of them
//! ([`ws_shared::membership`]: the rules, and why they hold in any order), and answers
//! the events of users who joined or left a conversation, which the pipe puts on the bus
//! (`detail-type` `Presence changed`, docs/design.md §12). An empty answer puts nothing.
//!
//! # Layout
//! - [`Config`]: the environment this function reads.
//! - [`Membership`]: the handler; [`Membership::handle`] answers a batch or fails it whole.
//!
//! A failure (the table, the deadline) fails the batch: the pipe reads it again, and every change
//! is idempotent (adding or removing an id twice is once), so a batch read twice keeps the same
//! sets and repeats at most its events, with their `eventId`. A record costs one `UpdateItem`,
//! and one more when it changes what is said. A record that cannot be read is
//! skipped with a warning and counted (`Skipped`): failing for it would stop its shard for good.

use std::sync::Arc;

use chrono::Duration;
use serde_json::Value;
use tracing::{info, warn};
use ws_shared::clock::{Clock, SystemClock};
use ws_shared::deadline::{DEFAULT_MARGIN, Deadline};
use ws_shared::invocation::Invocations;
use ws_shared::log::error_chain;
use ws_shared::membership::{Membership as Presence, MembershipStore, Say, change_of};
use ws_shared::metrics::{Counters, Metrics};
use ws_shared::output::LineSink;
use ws_shared::store::StoreError;

/// The `svc` of every log line and the `Service` metric dimension.
pub const SVC: &str = "ws-membership";
ws_shared::metrics! {
    /// The EMF counters this function emits.
    pub enum Metric { Joined = "Joined", Left = "Left", Skipped = "Skipped", Errors = "Errors" }
}

/// What `MembershipFunction` reads from its environment: the table, and how long a membership
/// item outlives its last change (`CONNECTION_TTL_MINUTES`, as a connection record does).
pub type Config = ws_shared::config::TableConfig;

/// Why a batch failed (the pipe reads it again).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("a batch from the pipe is a JSON array of stream records")]
    NotABatch,
    #[error("could not keep the membership of a connection")]
    Store(#[from] StoreError),
    #[error("the invocation failed; see the function's logs")]
    Failed,
}

/// The handler, built once per process.
pub struct Membership<S> {
    store: S,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    invocations: Invocations<Metric>,
}

impl<S> std::fmt::Debug for Membership<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl<S: MembershipStore> Membership<S> {
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

    /// Handles one batch before `deadline_ms` (epoch milliseconds): the `detail` of each event,
    /// in the batch's order, or the error that fails the batch.
    pub async fn handle(&self, batch: Value, request_id: &str, deadline_ms: u64) -> Result<Vec<Value>, BatchError> {
        let deadline = Deadline::from_epoch_millis(deadline_ms, self.clock.now(), DEFAULT_MARGIN);
        let work = async |counters: &mut Counters<'_, Metric>| {
            let answer = self.batch(batch, &deadline, counters).await;
            if let Err(err) = &answer {
                counters.incr(Metric::Errors);
                tracing::error!(error = error_chain(err), "the batch failed; the pipe reads it again");
            }
            answer
        };
        self.invocations.run(request_id, self.clock.as_ref(), work, || Err(BatchError::Failed)).await
    }

    async fn batch(
        &self,
        batch: Value,
        deadline: &Deadline,
        counters: &mut Counters<'_, Metric>,
    ) -> Result<Vec<Value>, BatchError> {
        let Value::Array(records) = batch else { return Err(BatchError::NotABatch) };
        let mut events = Vec::new();
        for (position, record) in records.iter().enumerate() {
            let change = match change_of(record) {
                Ok(Some(change)) => change,
                Ok(None) => continue,
                Err(err) => {
                    counters.incr(Metric::Skipped);
                    warn!(position, reason = %err, "a stream record was skipped");
                    continue;
                }
            };
            let Some(user) = &change.user_id else { continue };
            let expires_at = self.clock.now() + self.ttl;
            let member = self
                .store
                .change(&change.conversation_id, user, &change.connection_id, change.kind, expires_at, deadline)
                .await?;
            let (presence, number) = match Presence::to_say(&member, &change.event_id) {
                None => continue,
                Some(Say::Again(presence, number)) => (presence, number),
                Some(Say::Change(presence)) => {
                    let present = presence == Presence::Joined;
                    match self.store.say(&change.conversation_id, user, present, &change.event_id, deadline).await? {
                        Some(number) => (presence, number),
                        // Another record said it first, or the set moved on since: no event.
                        None => continue,
                    }
                }
            };
            counters.incr(match presence {
                Presence::Joined => Metric::Joined,
                Presence::Left => Metric::Left,
            });
            info!(
                connectionId = change.connection_id.as_str(),
                conversationId = change.conversation_id.as_str(),
                "a user {} the conversation",
                presence.as_str()
            );
            events.push(presence.detail(&change, user, number));
        }
        Ok(events)
    }
}
