//! Generated delivery histories of one to three connections: `$connect` delivered 1–3 times (the
//! replays carry other values, as a client reconnecting with a reused id would), `$disconnect`
//! 0–2 times, responder 410s 0–2 times, in any order. After every step of every history:
//! 1. a delivered `$disconnect` ⇒ the record is never `CONNECTED` afterwards;
//! 2. `DISCONNECTED`/`GONE` are never revived, and the first disconnect's code and reason stay;
//! 3. replays never change `connectedAt`, `conversationId`, `userId`;
//! 4. only `CONNECTED` records are in either index's audience; every record has a TTL.
//!
//! The in-memory store runs thousands of histories one step at a time; moto runs fewer, with every
//! delivery of a history sent at once (concurrently), and the same invariants at the end.

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use ws_properties::{Handlers, cases, events};
use ws_shared::dynamo::DynamoStore;
use ws_shared::id::{ConnectionId, ConversationId, UserId};
use ws_shared::memory::MemoryStore;
use ws_shared::record::ConnectionStatus;
use ws_shared::store::{Audience, ConnectionStore};
use ws_shared::stream::StreamStore;
use ws_shared::testing::{
    ReadBack, StoredConnection, create_connections_table, dynamodb_client, dynamodb_endpoint, no_hurry,
    unique_table_name,
};

/// One delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The `attempt`-th `$connect` of connection `conn` (each attempt carries its own values).
    Connect { conn: usize, attempt: u8 },
    /// The `nth` `$disconnect` of `conn` (close code 4000 + nth).
    Disconnect { conn: usize, nth: u8 },
    /// A responder post to `conn` that API Gateway answers 410.
    Gone { conn: usize },
}

const BASE_MS: i64 = 1_707_503_000_000;

fn conn_id(conn: usize) -> String {
    format!("h{conn}=")
}

/// What attempt `attempt` of connection `conn` carries.
fn attempt_values(conn: usize, attempt: u8) -> (String, String, i64) {
    (format!("conv-{conn}-{attempt}"), format!("u-{conn}-{attempt}"), BASE_MS + i64::from(attempt) * 1000)
}

fn history() -> impl Strategy<Value = (usize, Vec<Step>)> {
    (1..=3usize).prop_flat_map(|n| (Just(n), proptest::collection::vec((1..=3u8, 0..=2u8, 0..=2u8), n))).prop_flat_map(
        |(n, counts)| {
            let mut steps = Vec::new();
            for (conn, (connects, disconnects, gones)) in counts.into_iter().enumerate() {
                steps.extend((0..connects).map(|attempt| Step::Connect { conn, attempt }));
                steps.extend((0..disconnects).map(|nth| Step::Disconnect { conn, nth }));
                steps.extend((0..gones).map(|_| Step::Gone { conn }));
            }
            (Just(n), Just(steps).prop_shuffle())
        },
    )
}

async fn deliver<S: ConnectionStore + StreamStore + Clone>(handlers: &Handlers<S>, step: Step) -> Value {
    match step {
        Step::Connect { conn, attempt } => {
            let (conversation, user, at) = attempt_values(conn, attempt);
            handlers.connect(events::connect(&conn_id(conn), &conversation, &user, at)).await
        }
        Step::Disconnect { conn, nth } => {
            let code = 4000 + i64::from(nth);
            handlers.disconnect(events::disconnect(&conn_id(conn), code, &format!("bye {nth}"))).await
        }
        Step::Gone { conn } => handlers.respond(events::post_to(&conn_id(conn))).await,
    }
}

use serde_json::Value;

async fn record(store: &impl ReadBack, conn: usize) -> Option<StoredConnection> {
    store.connection(&ConnectionId::parse(conn_id(conn)).unwrap(), &no_hurry()).await.unwrap()
}

/// What one connection's record must keep, learned as the history goes.
#[derive(Debug, Default, Clone)]
struct Pinned {
    disconnect_delivered: bool,
    left_connected: bool,
    first_close: Option<(Option<i64>, Option<String>)>,
    identity: Option<(Option<String>, Option<String>, Option<String>)>,
}

/// Invariants 1–3 for one record after a step (sequential histories).
fn check_step(pinned: &mut Pinned, stored: Option<&StoredConnection>, step: Step) -> Result<(), TestCaseError> {
    if let Step::Disconnect { nth, .. } = step {
        pinned.disconnect_delivered = true;
        // The first disconnect that reaches a record sets its code and reason for good.
        pinned.first_close.get_or_insert((Some(4000 + i64::from(nth)), Some(format!("bye {nth}"))));
    }
    let Some(stored) = stored else {
        prop_assert!(!pinned.disconnect_delivered, "a delivered disconnect always leaves a record");
        return Ok(());
    };
    if pinned.disconnect_delivered {
        prop_assert_ne!(stored.status, ConnectionStatus::Connected, "1: CONNECTED after a disconnect");
    }
    if pinned.left_connected {
        prop_assert_ne!(stored.status, ConnectionStatus::Connected, "2: revived after DISCONNECTED/GONE");
    }
    pinned.left_connected |= stored.status != ConnectionStatus::Connected;
    if let Some(first) = &pinned.first_close {
        prop_assert_eq!(&(stored.close_code, stored.close_reason.clone()), first, "2: the first close stays");
    }
    if stored.connected_at.is_some() {
        let identity = (stored.connected_at.clone(), stored.conversation_id.clone(), stored.user_id.clone());
        let first = pinned.identity.get_or_insert_with(|| identity.clone());
        prop_assert_eq!(&identity, first, "3: a replay changed connectedAt, conversationId or userId");
    }
    Ok(())
}

/// Invariant 4, and the consistency of each record, after a whole history.
async fn check_end(store: &(impl ConnectionStore + ReadBack), n: usize, steps: &[Step]) -> Result<(), TestCaseError> {
    for conn in 0..n {
        let Some(stored) = record(store, conn).await else { continue };
        prop_assert!(stored.ttl.is_some(), "4: every record has a TTL");
        if steps.iter().any(|s| matches!(s, Step::Disconnect { conn: c, .. } if *c == conn)) {
            prop_assert_ne!(stored.status, ConnectionStatus::Connected, "1: CONNECTED after a disconnect");
        }
        if let Some(at) = &stored.connected_at {
            // The values are one attempt's, never a mix of two.
            let attempt = (0..3).find(|&a| {
                let (conversation, user, _) = attempt_values(conn, a);
                stored.conversation_id.as_deref() == Some(conversation.as_str())
                    && stored.user_id.as_deref() == Some(user.as_str())
            });
            prop_assert!(attempt.is_some(), "3: values of no single attempt: {:?}", stored);
            let (_, _, ms) = attempt_values(conn, attempt.unwrap());
            let expected = ws_shared::clock::iso_millis(chrono::DateTime::from_timestamp_millis(ms).unwrap());
            prop_assert_eq!(at, &expected, "3: connectedAt of another attempt");
        }
        if let (Some(code), Some(reason)) = (stored.close_code, &stored.close_reason) {
            prop_assert_eq!(reason, &format!("bye {}", code - 4000), "2: code and reason of two disconnects");
        }
    }
    for conn in 0..n {
        for attempt in 0..3 {
            let (conversation, user, _) = attempt_values(conn, attempt);
            let audiences = [
                Audience::Conversation(ConversationId::parse(conversation).unwrap()),
                Audience::User(UserId::parse(user).unwrap()),
            ];
            for audience in audiences {
                let page = store
                    .connected_page(&audience, ws_shared::store::Part::WHOLE, None, 100, &no_hurry())
                    .await
                    .unwrap();
                for id in &page.ids {
                    let stored = store.connection(id, &no_hurry()).await.unwrap().expect("listed, so stored");
                    prop_assert_eq!(stored.status, ConnectionStatus::Connected, "4: a non-CONNECTED in an audience");
                }
            }
        }
    }
    Ok(())
}

fn runner(default_cases: u32) -> TestRunner {
    TestRunner::new(Config { cases: cases(default_cases), failure_persistence: None, ..Config::default() })
}

/// Runs one history one step at a time against a fresh in-memory store.
fn run_sequential(n: usize, steps: &[Step]) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = MemoryStore::new();
        let handlers = Handlers::new(&store, "memory");
        let mut pinned: HashMap<usize, Pinned> = HashMap::new();
        for &step in steps {
            let answer = deliver(&handlers, step).await;
            let conn = match step {
                Step::Connect { conn, .. } | Step::Disconnect { conn, .. } | Step::Gone { conn } => conn,
            };
            match step {
                Step::Connect { .. } | Step::Disconnect { .. } => {
                    prop_assert_eq!(&answer["statusCode"], &serde_json::json!(200), "{:?}: {}", step, answer);
                }
                Step::Gone { .. } => prop_assert_eq!(&answer["statusCode"], &serde_json::json!(410)),
            }
            let stored = record(&store, conn).await;
            check_step(pinned.entry(conn).or_default(), stored.as_ref(), step)?;
        }
        check_end(&store, n, steps).await
    })
}

#[test]
fn every_sequential_history_keeps_the_invariants_in_memory() {
    runner(3000).run(&history(), |(n, steps)| run_sequential(n, &steps)).unwrap_or_else(|failure| panic!("{failure}"));
}

#[test]
fn every_concurrent_history_keeps_the_invariants_on_dynamodb() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client = dynamodb_client(&dynamodb_endpoint());
    runner(24)
        .run(&history(), |(n, steps)| {
            rt.block_on(async {
                let table = unique_table_name("histories");
                create_connections_table(&client, &table).await;
                let store = DynamoStore::new(&client, &table);
                let handlers = Handlers::new(&store, &table);
                // Every delivery of the history at once: AWS gives no order between them.
                let answers = futures_util::future::join_all(steps.iter().map(|&step| deliver(&handlers, step))).await;
                for (step, answer) in steps.iter().zip(&answers) {
                    let expected = if matches!(step, Step::Gone { .. }) { 410 } else { 200 };
                    prop_assert_eq!(&answer["statusCode"], &serde_json::json!(expected), "{:?}", step);
                }
                check_end(&store, n, &steps).await
            })
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}

/// An order worth naming (the generator found no violation; this pins the case): the 410 arrives
/// before the connect has landed, then the connect, then the disconnect. Gone must not create a
/// record the connect then trips over.
#[test]
fn a_gone_before_its_connect_then_a_disconnect_keeps_the_invariants() {
    let steps = [Step::Gone { conn: 0 }, Step::Connect { conn: 0, attempt: 0 }, Step::Disconnect { conn: 0, nth: 0 }];
    run_sequential(1, &steps).unwrap();
}

/// An order worth naming: two disconnects around a replayed connect; the replay must not undo the
/// first disconnect, and its code stays.
#[test]
fn a_disconnect_between_two_connects_is_not_undone_by_the_replay() {
    let steps = [
        Step::Connect { conn: 0, attempt: 0 },
        Step::Disconnect { conn: 0, nth: 1 },
        Step::Connect { conn: 0, attempt: 1 },
        Step::Disconnect { conn: 0, nth: 0 },
    ];
    run_sequential(1, &steps).unwrap();
}
