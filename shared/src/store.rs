//! The store port: what the handlers need from the connections table, nothing more.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::deadline::Deadline;
use crate::id::{ConnectionId, ConversationId, UserId};
use crate::record::{ConnectionRecord, ConnectionStatus, Disconnection, Tombstone};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Every connection of a conversation (GSI1).
    Conversation(ConversationId),
    /// Every connection of a user (GSI2).
    User(UserId),
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
    /// Where the next page starts (after this connection, in index order); `None` when the index
    /// has no more entries for the audience.
    pub resume_after: Option<ConnectionId>,
}

/// A record as stored, read back (connect's outcome check, tests and the contract suite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConnection {
    pub status: ConnectionStatus,
    /// Present only on a record `$connect` wrote (a tombstone has none).
    pub connected_at: Option<String>,
    pub conversation_id: Option<String>,
    pub user_id: Option<String>,
    pub disconnected_at: Option<String>,
    pub close_code: Option<i64>,
    pub close_reason: Option<String>,
    /// Epoch seconds.
    pub ttl: Option<i64>,
    /// In GSI1 / GSI2: the record carries that index's keys.
    pub in_conversation_index: bool,
    pub in_user_index: bool,
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

    /// The record of a connection, read consistently.
    fn connection(
        &self,
        connection_id: &ConnectionId,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Option<StoredConnection>, StoreError>> + Send;

    /// Marks a connection `DISCONNECTED`; the first `disconnectedAt` and close code win.
    fn mark_disconnected(
        &self,
        disconnection: &Disconnection,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<DisconnectOutcome, StoreError>> + Send;

    /// Up to `limit` index entries of `audience` after `after` (from the start when `None`),
    /// keeping the `CONNECTED` ones. A page may hold fewer than `limit` ids (or none) and still
    /// have a next one.
    fn connected_page(
        &self,
        audience: &Audience,
        after: Option<&ConnectionId>,
        limit: u32,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;

    /// Marks a connection `GONE` (a post found it gone), only while it is still `CONNECTED`.
    fn mark_gone(
        &self,
        connection_id: &ConnectionId,
        at: DateTime<Utc>,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<GoneOutcome, StoreError>> + Send;
}

/// One store shared by several handlers (tests run `$connect`, `$disconnect` and the responder on
/// one table).
impl<S: ConnectionStore> ConnectionStore for std::sync::Arc<S> {
    fn put_connection(
        &self,
        record: &ConnectionRecord,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send {
        (**self).put_connection(record, deadline)
    }

    fn put_tombstone(
        &self,
        tombstone: &Tombstone,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send {
        (**self).put_tombstone(tombstone, deadline)
    }

    fn connection(
        &self,
        connection_id: &ConnectionId,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Option<StoredConnection>, StoreError>> + Send {
        (**self).connection(connection_id, deadline)
    }

    fn mark_disconnected(
        &self,
        disconnection: &Disconnection,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<DisconnectOutcome, StoreError>> + Send {
        (**self).mark_disconnected(disconnection, deadline)
    }

    fn connected_page(
        &self,
        audience: &Audience,
        after: Option<&ConnectionId>,
        limit: u32,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send {
        (**self).connected_page(audience, after, limit, deadline)
    }

    fn mark_gone(
        &self,
        connection_id: &ConnectionId,
        at: DateTime<Utc>,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<GoneOutcome, StoreError>> + Send {
        (**self).mark_gone(connection_id, at, deadline)
    }
}
