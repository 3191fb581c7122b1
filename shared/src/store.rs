//! The store port: what the handlers need from the connections table, nothing more.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::deadline::Deadline;
use crate::id::{ConnectionId, ConversationId, UserId};
use crate::log::error_chain;
use crate::record::{ConnectionRecord, Disconnection, Route, Tombstone, keys};
use crate::segment::Segment;

/// Outcome of recording a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    /// A record for this connection already existed (an API Gateway retry, or a `$disconnect`
    /// that overtook this `$connect`); it was left as it was.
    AlreadyExists(Existing),
}

/// What held a connection's key when a put found it taken (DynamoDB returns the old item with the
/// failed condition, so no read permission is needed to tell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// A record `$connect` wrote (still `CONNECTED`, or since disconnected or gone).
    Connection,
    /// A tombstone: a `$disconnect` or a failed `$connect` got there first.
    Tombstone,
    /// The store did not say.
    Unknown,
}

/// Outcome of recording a disconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectOutcome {
    Disconnected,
    /// No `$connect` had been recorded for the connection. A tombstone now holds its place so a
    /// late `$connect` cannot bring it back as `CONNECTED`.
    NotFound,
}

/// Whose connections a fan-out reaches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Audience {
    /// Every connection of a conversation (GSI1).
    Conversation(ConversationId),
    /// Every connection of a user (GSI2).
    User(UserId),
    /// Every live connection of the stage (GSI4, shard by shard): a broadcast.
    All,
}

/// Where an audience lives: the index, its key attribute names, and the audience's partition key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceIndex {
    pub index: &'static str,
    pub pk_name: &'static str,
    pub sk_name: &'static str,
    pub pk: String,
}

impl Audience {
    /// The index partitions the audience spans: its shards ([`Part::shard`] is below this).
    pub fn shards(&self) -> u8 {
        match self {
            Self::All => keys::LIVE_SHARDS,
            Self::Conversation(_) | Self::User(_) => 1,
        }
    }

    /// The one mapping from an audience (and one of its shards) to its index (both store
    /// adapters read it).
    pub fn index(&self, shard: u8) -> AudienceIndex {
        match self {
            Self::All => AudienceIndex {
                index: keys::GSI4,
                pk_name: keys::GSI4PK,
                sk_name: keys::GSI4SK,
                pk: keys::live_partition(shard),
            },
            Self::Conversation(id) => AudienceIndex {
                index: keys::GSI1,
                pk_name: keys::GSI1PK,
                sk_name: keys::GSI1SK,
                pk: keys::conversation(id),
            },
            Self::User(id) => {
                AudienceIndex { index: keys::GSI2, pk_name: keys::GSI2PK, sk_name: keys::GSI2SK, pk: keys::user(id) }
            }
        }
    }
}

/// Which part of an audience a page reads: one of its shards, within one segment's key range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub shard: u8,
    pub segment: Segment,
}

impl Part {
    /// The whole of a one-shard audience (a conversation's, a user's).
    pub const WHOLE: Self = Self { shard: 0, segment: Segment::WHOLE };
}

/// Outcome of marking a connection gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoneOutcome {
    Marked,
    /// The record is missing or no longer `CONNECTED` (a `$disconnect` got there first); it was
    /// left as it was.
    NotConnected,
}

/// A failed store call. The message says which operation on which table; the source holds the
/// SDK's error chain for the log.
#[derive(Debug, thiserror::Error)]
#[error("DynamoDB {operation} on table {table} failed")]
pub struct StoreError {
    pub operation: &'static str,
    pub table: String,
    /// The store refused the call for a reason that trying again will not change (no such table,
    /// access denied, a malformed request): the write certainly did not happen.
    pub permanent: bool,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

/// One page of an audience's `CONNECTED` connections, in index order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub ids: Vec<ConnectionId>,
    /// Where each listed connection lives, for those whose record says (written by a
    /// `ConnectFunction` that records it; older records have no route).
    pub routes: std::collections::HashMap<ConnectionId, Route>,
    /// Whose each listed connection is and since when (a presence query's answer).
    pub members: std::collections::HashMap<ConnectionId, Member>,
    /// Where the next page starts (after this connection, in index order); `None` when the index
    /// has no more entries for the audience.
    pub resume_after: Option<ConnectionId>,
}

/// Whose a listed connection is and since when, as its record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The authorizer's principal (absent: nobody authenticated it and it named no user).
    pub user_id: Option<UserId>,
    /// When API Gateway accepted it (ISO 8601, milliseconds, UTC).
    pub connected_at: Option<String>,
}

/// One page of GSI3: live connections whose token expired, with each one's sort key (where a
/// continuation resumes after it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpiredPage {
    pub entries: Vec<(ConnectionId, String)>,
    /// Where each listed connection lives, when its record says.
    pub routes: std::collections::HashMap<ConnectionId, Route>,
    /// The sort key the next page starts after; `None` when the shard has no more expired entries.
    pub resume_after: Option<String>,
}

/// Who a live connection is: what a client's own request (`resume`, `presence`) may read is
/// decided by this, from the record `$connect` wrote, never by what the request says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveConnection {
    pub conversation_id: ConversationId,
    /// The authorizer's principal (absent when no authorizer ran and the client named no user).
    pub user_id: Option<UserId>,
}

/// The connections table. Every call is bounded by `deadline`: it gets the time left when it
/// starts, and returns an error rather than outlive it.
pub trait ConnectionStore: Send + Sync {
    /// Records a new connection unless one with the same id exists (never overwrites).
    fn put_connection(
        &self,
        record: &ConnectionRecord,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send;

    /// Holds the place of a connection whose `$connect` failed: a `DISCONNECTED` record without
    /// index keys, written only if no record exists, so a put that is still in flight cannot land
    /// a live `CONNECTED` record afterwards. `AlreadyExists` means the connect's put did land.
    fn put_tombstone(
        &self,
        tombstone: &Tombstone,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send;

    /// Marks a connection `DISCONNECTED`; the first `disconnectedAt` and close code win.
    fn mark_disconnected(
        &self,
        disconnection: &Disconnection,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<DisconnectOutcome, StoreError>> + Send;

    /// Up to `limit` index entries of `audience` in `part` (a shard, a segment's key range)
    /// after `after` (from the start when `None`), keeping the `CONNECTED` ones. A page may hold
    /// fewer than `limit` ids (or none) and still have a next one.
    fn connected_page(
        &self,
        audience: &Audience,
        part: Part,
        after: Option<&ConnectionId>,
        limit: u32,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;

    /// Up to `limit` GSI3 entries of `shard` whose token expired before `now` (epoch seconds),
    /// after the sort key `after`, keeping the `CONNECTED` ones. Closed connections have left the
    /// index, so a page costs in proportion to the expired live connections it returns.
    fn expired_page(
        &self,
        shard: u8,
        now: i64,
        after: Option<&str>,
        limit: u32,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<ExpiredPage, StoreError>> + Send;

    /// Records why the responder is about to close a connection (`closeReason`, first one wins,
    /// so the `$disconnect` that follows keeps it), only while it is still `CONNECTED`.
    fn note_closing(
        &self,
        connection_id: &ConnectionId,
        reason: &str,
        at: DateTime<Utc>,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<GoneOutcome, StoreError>> + Send;

    /// The conversation and user of a `CONNECTED` connection, read consistently; `None` when the
    /// record is missing or no longer `CONNECTED`.
    fn live_connection(
        &self,
        connection_id: &ConnectionId,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Option<LiveConnection>, StoreError>> + Send;

    /// Marks a connection `GONE` (a post found it gone), only while it is still `CONNECTED` and
    /// only when the 410 came from the connection's own API: `via` is the API that answered
    /// (`None`: not known, e.g. a custom domain), and a record that names its API is marked only by
    /// a 410 from that API.
    fn mark_gone(
        &self,
        connection_id: &ConnectionId,
        via: Option<&Route>,
        at: DateTime<Utc>,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<GoneOutcome, StoreError>> + Send;
}

/// The pause between two tries of [`keep_trying`]: the store's own retries are spent (or its
/// retry quota), so the next try should not follow at once.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);
/// The least time worth one more try.
const RETRY_MIN: std::time::Duration = std::time::Duration::from_millis(20);

/// Calls `op` again after a short pause while it fails with an error that is not permanent and
/// the invocation has time left; returns its first success, its permanent error, or its last
/// error. For writes API Gateway will not redeliver (`$disconnect`) or whose outcome must be
/// settled before answering (`$connect`): each try is a whole store call with its own retries.
pub async fn keep_trying<T, F, Fut>(deadline: &Deadline, what: &str, mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    loop {
        match op().await {
            Err(err) if !err.permanent && !deadline.is_short_of(RETRY_MIN) => {
                tracing::warn!(error = error_chain(&err), "{what} failed; trying again while time is left");
                tokio::time::sleep(RETRY_PAUSE.min(deadline.budget())).await;
            }
            result => return result,
        }
    }
}
