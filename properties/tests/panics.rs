//! A panic inside a handler (a bug: hostile input never panics, see `hostile.rs`) still answers:
//! the function's own 500, an ERROR log line with the request id, and the same instance serves
//! the next event. This relies on the release profile's `panic = "unwind"` (workspace Cargo.toml).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use serde_json::json;
use ws_properties::{Handlers, events};
use ws_shared::deadline::Deadline;
use ws_shared::id::ConnectionId;
use ws_shared::memory::MemoryStore;
use ws_shared::record::{ConnectionRecord, Disconnection, Route, Tombstone};
use ws_shared::segment::Segment;
use ws_shared::store::{
    Audience, ConnectionStore, DisconnectOutcome, ExpiredPage, GoneOutcome, LiveConnection, Page, Part, PutOutcome,
    StoreError,
};
use ws_shared::stream::{
    Append, Appended, Claim, ClaimOutcome, Entry, EntryRange, Head, MessageKey, StreamName, StreamStore,
};
use ws_shared::testing::capture_logs;

/// The in-memory store, except that its first write panics (clones share both).
#[derive(Debug, Default, Clone)]
struct PanicsOnce {
    inner: MemoryStore,
    panicked: Arc<AtomicBool>,
}

impl PanicsOnce {
    fn maybe_panic(&self) {
        assert!(self.panicked.swap(true, Ordering::SeqCst), "bug: the store panicked on purpose");
    }
}

impl ConnectionStore for PanicsOnce {
    async fn put_connection(&self, record: &ConnectionRecord, d: &Deadline) -> Result<PutOutcome, StoreError> {
        self.maybe_panic();
        self.inner.put_connection(record, d).await
    }
    async fn put_tombstone(&self, t: &Tombstone, d: &Deadline) -> Result<PutOutcome, StoreError> {
        self.inner.put_tombstone(t, d).await
    }
    async fn mark_disconnected(&self, x: &Disconnection, d: &Deadline) -> Result<DisconnectOutcome, StoreError> {
        self.maybe_panic();
        self.inner.mark_disconnected(x, d).await
    }
    async fn connected_page(
        &self,
        a: &Audience,
        part: Part,
        after: Option<&ConnectionId>,
        limit: u32,
        d: &Deadline,
    ) -> Result<Page, StoreError> {
        self.inner.connected_page(a, part, after, limit, d).await
    }
    async fn mark_gone(
        &self,
        id: &ConnectionId,
        via: Option<&Route>,
        at: DateTime<Utc>,
        d: &Deadline,
    ) -> Result<GoneOutcome, StoreError> {
        self.inner.mark_gone(id, via, at, d).await
    }
    async fn expired_page(
        &self,
        shard: u8,
        now: i64,
        after: Option<&str>,
        limit: u32,
        d: &Deadline,
    ) -> Result<ExpiredPage, StoreError> {
        self.inner.expired_page(shard, now, after, limit, d).await
    }
    async fn note_closing(
        &self,
        id: &ConnectionId,
        reason: &str,
        at: DateTime<Utc>,
        d: &Deadline,
    ) -> Result<GoneOutcome, StoreError> {
        self.inner.note_closing(id, reason, at, d).await
    }
    async fn live_connection(&self, id: &ConnectionId, d: &Deadline) -> Result<Option<LiveConnection>, StoreError> {
        self.inner.live_connection(id, d).await
    }
}

impl StreamStore for PanicsOnce {
    async fn append(&self, append: Append<'_>, d: &Deadline) -> Result<Appended, StoreError> {
        self.inner.append(append, d).await
    }
    async fn claim(
        &self,
        stream: &StreamName,
        key: &MessageKey,
        segment: Segment,
        seen: &Claim,
        next: &Claim,
        d: &Deadline,
    ) -> Result<ClaimOutcome, StoreError> {
        self.inner.claim(stream, key, segment, seen, next, d).await
    }
    async fn head(&self, stream: &StreamName, now: DateTime<Utc>, d: &Deadline) -> Result<Option<Head>, StoreError> {
        self.inner.head(stream, now, d).await
    }
    async fn entries(
        &self,
        stream: &StreamName,
        range: &EntryRange<'_>,
        now: DateTime<Utc>,
        d: &Deadline,
    ) -> Result<Vec<Entry>, StoreError> {
        self.inner.entries(stream, range, now, d).await
    }
}

#[tokio::test]
async fn a_panicking_connect_answers_500_logs_its_request_id_and_serves_the_next_event() {
    let (logs, _guard) = capture_logs(ws_connect::SVC);
    let handlers = Handlers::new(&PanicsOnce::default(), "memory");

    let first = handlers.connect(events::connect("p1=", "conv-p", "u-p", 1_707_503_000_000)).await;
    let second = handlers.connect(events::connect("p2=", "conv-p", "u-p", 1_707_503_000_000)).await;

    assert_eq!(first, json!({"statusCode": 500, "body": "Internal Server Error"}), "nothing internal");
    assert_eq!(second["statusCode"], 200, "the instance serves on");
    let panic_line = logs.json().into_iter().find(|l| l["msg"].as_str().is_some_and(|m| m.contains("panicked")));
    let panic_line = panic_line.expect("the panic is logged");
    assert_eq!((panic_line["level"].as_str(), panic_line["requestId"].as_str()), (Some("ERROR"), Some("req-connect")));
}

#[tokio::test]
async fn a_panicking_disconnect_answers_500_and_serves_the_next_event() {
    let handlers = Handlers::new(&PanicsOnce::default(), "memory");
    let first = handlers.disconnect(events::disconnect("p1=", 1000, "bye")).await;
    let second = handlers.disconnect(events::disconnect("p1=", 1000, "bye")).await;
    assert_eq!(first, json!({"statusCode": 500, "body": "Internal Server Error"}));
    assert_eq!(second["statusCode"], 200);
}
