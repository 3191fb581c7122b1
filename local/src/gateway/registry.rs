//! The open connections: what the socket loop registers and the Management API reaches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::ws::Message;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

/// What the Management API hands to an open connection.
#[derive(Debug)]
pub enum Outbound {
    Message(Message),
    Close(u16, String),
}

/// An open connection, as the Management API sees it.
#[derive(Debug)]
pub struct Connection {
    pub id: String,
    pub connected_at: DateTime<Utc>,
    pub source_ip: String,
    pub user_agent: String,
    pub(super) last_active_ms: AtomicI64,
    pub(super) outbound: mpsc::Sender<Outbound>,
}

impl Connection {
    pub fn last_active_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.last_active_ms.load(Ordering::Relaxed)).unwrap_or(self.connected_at)
    }

    pub(super) fn touch(&self) {
        self.last_active_ms.store(Utc::now().timestamp_millis(), Ordering::Relaxed);
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
