//! The store port: what the handlers need from the connections table, nothing more.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::id::{ConnectionId, ConversationId, UserId};
use crate::record::{ConnectionRecord, Disconnection};

/// Outcome of recording a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    /// A record for this connection already existed (an API Gateway retry, or a `$disconnect`
    /// that overtook this `$connect`); it was left as it was.
    AlreadyExists,
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
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

/// The connections table.
pub trait ConnectionStore: Send + Sync {
    /// Records a new connection unless one with the same id exists (never overwrites).
    fn put_connection(&self, record: &ConnectionRecord) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send;

    /// Marks a connection `DISCONNECTED`; the first `disconnectedAt` and close code win.
    fn mark_disconnected(
        &self,
        disconnection: &Disconnection,
    ) -> impl Future<Output = Result<DisconnectOutcome, StoreError>> + Send;

    /// The `CONNECTED` connections of `audience`, every page of the index.
    fn connected(&self, audience: &Audience) -> impl Future<Output = Result<Vec<ConnectionId>, StoreError>> + Send;

    /// Marks a connection `GONE` (a post found it gone), only while it is still `CONNECTED`.
    fn mark_gone(
        &self,
        connection_id: &ConnectionId,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<GoneOutcome, StoreError>> + Send;
}
