//! Tests that prove the functions' rules over generated cases, injected store faults and hostile
//! input, rather than hand-picked examples (`tests/`). This library holds what they share: the
//! handlers wired to one store, and the events AWS delivers.
//!
//! # Layout
//! - [`Handlers`]: `$connect`, `$disconnect` and the responder (on a Management API that always
//!   answers 410) over one store, as AWS would run them on one table.
//! - [`events`]: `$connect` / `$disconnect` / responder events built from `events/*.json`.
//! - `tests/histories.rs`: generated delivery histories, and the invariants after each.
//! - `tests/faults.rs`: every function through a fault proxy in front of moto.
//! - `tests/hostile.rs`: generated hostile events for each function.
//!
//! Case counts: `PROPTEST_CASES` (see [`cases`]); a failing case prints its seed and shrinks, and
//! each counterexample found is kept as a named test next to the property.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use ws_connect::Connect;
use ws_disconnect::Disconnect;
use ws_responder::Responder;
use ws_responder::endpoint::Endpoint;
use ws_responder::management::{PostError, Poster};
use ws_shared::id::ConnectionId;
use ws_shared::store::ConnectionStore;
use ws_shared::stream::StreamStore;
use ws_shared::testing::{Captured, FixedClock, deadline_in};

/// Cases per property: `PROPTEST_CASES` when set, else `default` (the knob for a long run:
/// `PROPTEST_CASES=100000 cargo nextest run -p ws-properties`).
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(default)
}

/// A Management API where every connection is gone (410): what a responder meets for a client
/// that left without a `$disconnect`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysGone;

impl Poster for AlwaysGone {
    async fn post(&self, _: &Endpoint, _: &ConnectionId, _: bytes::Bytes, _: Duration) -> Result<(), PostError> {
        Err(PostError::Gone)
    }

    async fn close(&self, _: &Endpoint, _: &ConnectionId, _: Duration) -> Result<(), PostError> {
        Err(PostError::Gone)
    }

    async fn check(&self, _: &Endpoint, _: &ConnectionId, _: Duration) -> Result<(), PostError> {
        Err(PostError::Gone)
    }
}

/// The three table-writing handlers over one store, on the fixed test clock.
pub struct Handlers<S> {
    pub connect: Connect<S>,
    pub disconnect: Disconnect<S>,
    pub responder: Responder<AlwaysGone, S>,
    pub metrics: Captured,
}

impl<S> std::fmt::Debug for Handlers<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handlers").finish_non_exhaustive()
    }
}

impl<S: ConnectionStore + StreamStore + Clone> Handlers<S> {
    pub fn new(store: &S, table: &str) -> Self {
        let metrics = Captured::default();
        let sink = Arc::new(metrics.clone());
        let clock = Arc::new(FixedClock::default());
        let vars = HashMap::from([("TABLE_CONNECTIONS", table), ("MARK_GONE", "true")]);
        let get = |name: &str| vars.get(name).map(|value| (*value).to_owned());
        let connect = Connect::new(store.clone(), &ws_connect::Config::from_env(&get).expect("valid"), sink.clone())
            .with_clock(clock.clone());
        let disconnect =
            Disconnect::new(store.clone(), &ws_disconnect::Config::from_env(&get).expect("valid"), sink.clone())
                .with_clock(clock.clone());
        let responder = Responder::new(
            AlwaysGone,
            Some(store.clone()),
            &ws_responder::Config::from_env(&get).expect("valid"),
            sink,
        )
        .with_clock(clock);
        Self { connect, disconnect, responder, metrics }
    }

    /// `$connect`'s answer, as API Gateway reads it.
    pub async fn connect(&self, event: Value) -> Value {
        serde_json::to_value(self.connect.handle(event, "req-connect", deadline_in(10_000)).await).expect("json")
    }

    pub async fn disconnect(&self, event: Value) -> Value {
        serde_json::to_value(self.disconnect.handle(event, "req-disconnect", deadline_in(10_000)).await).expect("json")
    }

    pub async fn respond(&self, event: Value) -> Value {
        serde_json::to_value(self.responder.handle(event, "req-respond", deadline_in(10_000)).await).expect("json")
    }
}

/// Events as AWS delivers them, from the samples in `events/`.
pub mod events {
    use serde_json::{Value, json};

    fn sample(name: &str) -> Value {
        let text = match name {
            "connect" => include_str!("../../events/connect.json"),
            "disconnect" => include_str!("../../events/disconnect.json"),
            "responder" => include_str!("../../events/responder.json"),
            "authorizer" => include_str!("../../events/authorizer.json"),
            _ => unreachable!("no sample {name}"),
        };
        serde_json::from_str(text).expect("the samples are JSON")
    }

    /// The sample `$connect` without an authorizer (so the query's `userId` counts).
    pub fn connect(connection: &str, conversation: &str, user: &str, connected_at: i64) -> Value {
        let mut event = sample("connect");
        let context = &mut event["requestContext"];
        context["connectionId"] = json!(connection);
        context["connectedAt"] = json!(connected_at);
        context.as_object_mut().expect("object").remove("authorizer");
        let query = json!({"correlationId": conversation, "userId": user});
        event["queryStringParameters"] = query;
        event["multiValueQueryStringParameters"] = json!({"correlationId": [conversation], "userId": [user]});
        event
    }

    pub fn disconnect(connection: &str, code: i64, reason: &str) -> Value {
        let mut event = sample("disconnect");
        event["requestContext"]["connectionId"] = json!(connection);
        event["requestContext"]["disconnectStatusCode"] = json!(code);
        event["requestContext"]["disconnectReason"] = json!(reason);
        event
    }

    /// A responder event for one connection (the endpoint is never reached by `AlwaysGone`).
    pub fn post_to(connection: &str) -> Value {
        let mut event = sample("responder");
        event["connectionId"] = json!(connection);
        event["wsEndpoint"] = json!("http://127.0.0.1:9/prod");
        event
    }

    /// The unmodified samples, for hostile mutations.
    pub fn samples() -> [(&'static str, Value); 4] {
        ["connect", "disconnect", "responder", "authorizer"].map(|name| (name, sample(name)))
    }
}
