//! Segments over generated audiences (docs/design.md §13): connections with generated ids in two
//! conversations, some closed (`$disconnect`, or found gone), and a fan-out split into `n`
//! segments — a streamed post to one conversation (each segment appends the same `messageId`) or
//! a broadcast to every connection — each segment continued with its cursor under a short
//! deadline, the segments' invocations interleaved, and a streamed segment retried whole after it
//! finished (a Step Functions retry). On both store adapters:
//! - every live connection of the audience gets the message exactly once across segments,
//!   cursors and retries; no closed connection and no connection outside the audience gets it;
//! - the segments' `targets` add up to the audience (disjoint shares that cover it);
//! - every answer names its segment, and a streamed post is one append (one offset).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use ws_properties::cases;
use ws_responder::Responder;
use ws_responder::endpoint::Endpoint;
use ws_responder::management::{PostError, Poster};
use ws_shared::dynamo::DynamoStore;
use ws_shared::id::ConnectionId;
use ws_shared::memory::MemoryStore;
use ws_shared::record::{ConnectionRecord, Disconnection};
use ws_shared::store::ConnectionStore;
use ws_shared::stream::StreamStore;
use ws_shared::testing::{Captured, connection_record, deadline_from_now, fresh_table, no_hurry};

/// How a generated connection ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Live,
    Disconnected,
    Gone,
}

#[derive(Debug, Clone)]
struct Case {
    /// Id, conversation (0 is the fan-out's), state.
    connections: Vec<(String, u8, State)>,
    segments: u64,
    broadcast: bool,
    concurrency: u32,
    deadline_ms: u64,
    /// A segment (index mod n) whose streamed post is published again whole once it is done.
    retry: Option<u64>,
}

fn case(max_connections: usize) -> impl Strategy<Value = Case> {
    let connection = (
        "[A-Za-z0-9+][A-Za-z0-9+_=-]{2,14}",
        prop_oneof![4 => Just(0u8), 1 => Just(1u8)],
        prop_oneof![6 => Just(State::Live), 1 => Just(State::Disconnected), 1 => Just(State::Gone)],
    );
    (
        proptest::collection::vec(connection, 0..max_connections),
        1u64..=8,
        any::<bool>(),
        1u32..4,
        320u64..480,
        proptest::option::of(0u64..8),
    )
        .prop_map(|(mut connections, segments, broadcast, concurrency, deadline_ms, retry)| {
            let mut seen = BTreeSet::new();
            connections.retain(|(id, _, _)| seen.insert(id.clone()));
            Case { connections, segments, broadcast, concurrency, deadline_ms, retry }
        })
}

/// A Management API that takes a moment per post (so short deadlines cut fan-outs into cursors)
/// and counts what each connection got.
#[derive(Debug, Clone, Default)]
struct Counting(Arc<Mutex<HashMap<String, usize>>>);

impl Poster for Counting {
    async fn post(&self, _: &Endpoint, id: &ConnectionId, _: bytes::Bytes, _: Duration) -> Result<(), PostError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        *self.0.lock().unwrap().entry(id.as_str().to_owned()).or_default() += 1;
        Ok(())
    }

    async fn close(&self, _: &Endpoint, _: &ConnectionId, _: Duration) -> Result<(), PostError> {
        Ok(())
    }
}

fn record(id: &str, conversation: u8) -> ConnectionRecord {
    connection_record(id, &format!("conv-{conversation}"), None, chrono::Utc::now())
}

async fn check<S: ConnectionStore + StreamStore + Clone + 'static>(store: S, case: &Case) -> Result<(), TestCaseError> {
    for (id, conversation, state) in &case.connections {
        store.put_connection(&record(id, *conversation), &no_hurry()).await.unwrap();
        let connection = ConnectionId::parse(id.as_str()).unwrap();
        let at = chrono::Utc::now();
        match state {
            State::Live => {}
            State::Disconnected => {
                let d = Disconnection {
                    connection_id: connection,
                    at,
                    close_code: Some(1001),
                    close_reason: None,
                    expires_at: at + chrono::Duration::hours(1),
                };
                store.mark_disconnected(&d, &no_hurry()).await.unwrap();
            }
            State::Gone => {
                store.mark_gone(&connection, None, at, &no_hurry()).await.unwrap();
            }
        }
    }
    let api = Counting::default();
    let concurrency = case.concurrency.to_string();
    let vars = HashMap::from([
        ("TABLE_CONNECTIONS", "segments"),
        ("FANOUT_CONCURRENCY", concurrency.as_str()),
        ("FANOUT_PAGE_SIZE", "7"),
    ]);
    let config = ws_responder::Config::from_env(&|name: &str| vars.get(name).map(|v| (*v).to_owned())).unwrap();
    let responder = Responder::new(api.clone(), Some(store), &config, Arc::new(Captured::default()));

    let base = if case.broadcast {
        json!({"all": true, "messageType": "system", "payload": {"text": "maintenance"}})
    } else {
        json!({"conversationId": "conv-0", "messageId": "notice-1", "messageType": "system", "payload": {}})
    };
    let n = case.segments;
    let event_of = |k: u64| {
        let mut event = base.clone();
        event["wsEndpoint"] = json!("http://127.0.0.1:9/prod");
        event["segment"] = json!(k);
        event["segments"] = json!(n);
        event
    };
    // Every segment's pending event (with its cursor), run in turns so that their invocations
    // (and a streamed post's claims on one message key) interleave.
    let mut pending: Vec<Option<Value>> = (0..n).map(|k| Some(event_of(k))).collect();
    let retry = case.retry.filter(|_| !case.broadcast).map(|r| r % n);
    let mut retried = false;
    let mut answers: Vec<Value> = Vec::new();
    for turn in 0..4_000u64 {
        if pending.iter().all(Option::is_none) {
            break;
        }
        let k = turn % n;
        let slot = usize::try_from(k).unwrap();
        let Some(event) = pending[slot].take() else { continue };
        let answer =
            serde_json::to_value(responder.handle(event.clone(), "req", deadline_from_now(case.deadline_ms)).await)
                .unwrap();
        if answer["statusCode"] == 500 && answer.get("targets").is_none() {
            // The append did not fit the short deadline (moto is slower than DynamoDB): nothing
            // was posted, and the caller retries the same event, as Step Functions does.
            pending[slot] = Some(event);
            continue;
        }
        // A 500 with a cursor (the index could not be read in time) is continued with it.
        prop_assert!(answer["statusCode"] == 200 || answer.get("cursor").is_some(), "{}", answer);
        if n > 1 {
            prop_assert_eq!(
                (answer["segment"].as_u64(), answer["segments"].as_u64()),
                (Some(k), Some(n)),
                "{}",
                answer
            );
        }
        if let Some(cursor) = answer.get("cursor") {
            let mut next = event;
            next["cursor"] = cursor.clone();
            pending[slot] = Some(next);
        } else if retry == Some(k) && !retried {
            retried = true;
            pending[slot] = Some(event_of(k));
        }
        answers.push(answer);
    }
    prop_assert!(pending.iter().all(Option::is_none), "some segment never ended: {:?}", answers.last());

    let audience: BTreeSet<String> = case
        .connections
        .iter()
        .filter(|(_, conversation, state)| *state == State::Live && (case.broadcast || *conversation == 0))
        .map(|(id, _, _)| id.clone())
        .collect();
    let delivered = api.0.lock().unwrap().clone();
    prop_assert!(delivered.values().all(|&times| times == 1), "delivered twice: {:?}", delivered);
    let got: BTreeSet<String> = delivered.keys().cloned().collect();
    prop_assert_eq!(&got, &audience, "delivered to exactly the audience's live connections");
    let targets: u64 = answers.iter().map(|a| a["targets"].as_u64().unwrap_or(0)).sum();
    prop_assert_eq!(targets, audience.len() as u64, "the segments' shares add up to the audience: {:?}", answers);
    if !case.broadcast {
        let offsets: BTreeSet<u64> = answers.iter().filter_map(|a| a["offset"].as_u64()).collect();
        prop_assert_eq!(offsets.len(), 1, "every segment got the one append's offset: {:?}", answers);
    }
    Ok(())
}

#[test]
fn segments_deliver_each_live_connection_once_in_memory() {
    let mut runner = TestRunner::new(Config { cases: cases(32), failure_persistence: None, ..Config::default() });
    runner
        .run(&case(120), |case| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(check(MemoryStore::new(), &case))
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}

#[test]
fn segments_deliver_each_live_connection_once_on_dynamodb() {
    let mut runner = TestRunner::new(Config { cases: cases(4), failure_persistence: None, ..Config::default() });
    runner
        .run(&case(60), |case| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let (client, table) = fresh_table("segments").await;
                check(DynamoStore::new(&client, table), &case).await
            })
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}
