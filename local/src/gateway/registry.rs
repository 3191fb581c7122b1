//! The open connections: what the socket loop registers and the Management API reaches.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::extract::ws::Message;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::events::Handshake;

/// What the Management API hands to an open connection.
#[derive(Debug)]
pub enum Outbound {
    Message(Message),
    Close(u16, String),
    /// Cut the TCP connection without a close frame, as a network drop does (the client sees
    /// 1006; `$disconnect` gets 1006).
    Drop,
}

/// An open connection, as the Management API sees it: its handshake, and what changes after.
#[derive(Debug)]
pub struct Connection {
    pub id: String,
    pub handshake: Arc<Handshake>,
    pub(super) last_active_ms: AtomicI64,
    pub(super) outbound: mpsc::Sender<Outbound>,
    /// The last messages in and out, for the console.
    pub(super) journal: Mutex<VecDeque<Entry>>,
}

/// Messages a connection's journal keeps.
const JOURNAL_ENTRIES: usize = 50;
/// Characters of a message the journal keeps.
const JOURNAL_PREVIEW: usize = 200;

/// One message through a connection, as the console shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// Milliseconds since the epoch.
    pub at: i64,
    /// `in` (from the client) or `out` (to it).
    pub direction: &'static str,
    pub bytes: usize,
    /// The start of a text message; `(binary)` for a binary one.
    pub text: String,
}

impl Connection {
    /// The connection a handshake opened; `outbound` reaches its socket.
    pub(super) fn open(handshake: &Arc<Handshake>, outbound: mpsc::Sender<Outbound>) -> Self {
        Self {
            id: handshake.connection_id.clone(),
            handshake: Arc::clone(handshake),
            last_active_ms: AtomicI64::new(handshake.connected_at.timestamp_millis()),
            outbound,
            journal: Mutex::default(),
        }
    }

    pub fn connected_at(&self) -> DateTime<Utc> {
        self.handshake.connected_at
    }

    pub fn last_active_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.last_active_ms.load(Ordering::Relaxed)).unwrap_or(self.connected_at())
    }

    /// The authorizer's `principalId`, when one ran.
    pub fn user(&self) -> Option<&str> {
        self.handshake.authorizer.as_ref()?.get("principalId")?.as_str()
    }

    /// The handshake's `correlationId` (else `conversationId`) query parameter.
    pub fn conversation(&self) -> Option<&str> {
        ["correlationId", "conversationId"]
            .iter()
            .find_map(|name| self.handshake.query.iter().find(|(n, v)| n == name && !v.is_empty()))
            .map(|(_, value)| value.as_str())
    }

    pub(super) fn touch(&self) {
        self.last_active_ms.store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    /// Notes a message in (`from_client`) or out.
    pub(super) fn note(&self, from_client: bool, message: &Message) {
        let (bytes, text) = match message {
            Message::Text(text) => (text.len(), text.chars().take(JOURNAL_PREVIEW).collect()),
            Message::Binary(data) => (data.len(), "(binary)".to_owned()),
            _ => return,
        };
        let entry =
            Entry { at: Utc::now().timestamp_millis(), direction: if from_client { "in" } else { "out" }, bytes, text };
        let mut journal = self.journal.lock().expect("journal");
        journal.push_back(entry);
        if journal.len() > JOURNAL_ENTRIES {
            journal.pop_front();
        }
    }

    /// The journal, oldest first.
    pub fn journal(&self) -> Vec<Entry> {
        self.journal.lock().expect("journal").iter().cloned().collect()
    }

    /// Queues `message` for the socket; `false` when the connection is closing.
    pub async fn send(&self, message: Outbound) -> bool {
        self.outbound.send(message).await.is_ok()
    }
}

/// The open connections by id.
#[derive(Debug, Default)]
pub struct Connections(RwLock<HashMap<String, Arc<Connection>>>);

impl Connections {
    pub fn get(&self, id: &str) -> Option<Arc<Connection>> {
        self.0.read().expect("connections").get(id).cloned()
    }

    /// Every open connection, oldest first.
    pub fn all(&self) -> Vec<Arc<Connection>> {
        let mut all: Vec<_> = self.0.read().expect("connections").values().cloned().collect();
        all.sort_by_key(|c| c.connected_at());
        all
    }

    pub fn len(&self) -> usize {
        self.0.read().expect("connections").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn insert(&self, connection: Arc<Connection>) {
        self.0.write().expect("connections").insert(connection.id.clone(), connection);
    }

    pub(super) fn remove(&self, id: &str) {
        self.0.write().expect("connections").remove(id);
    }
}
