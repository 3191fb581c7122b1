//! Presence over generated histories (docs/design.md §12): users with connections that are live,
//! that ended with a `$disconnect` (a client close, a ban, an expired token), or whose
//! `$disconnect` was lost (the record still says `CONNECTED`, API Gateway no longer has it), each
//! connected some minutes ago; presence read a page at a time with its cursor. On both adapters:
//! - every user with a connection API Gateway still has is listed, with those connections counted;
//! - a user whose connections all ended with a `$disconnect` is never listed;
//! - a lost connection counts only while it is younger than `PRESENCE_STALE_MINUTES` (it cannot
//!   have ended longer ago than that); an older one is left out and its record marked `GONE`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
use ws_shared::record::{ConnectionStatus, Disconnection};
use ws_shared::store::ConnectionStore;
use ws_shared::stream::StreamStore;
use ws_shared::testing::{Captured, FixedClock, ReadBack, connection_record, deadline_from_now, fresh_table, no_hurry};

/// The stale window the responder runs with (minutes).
const STALE: i64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Still open: API Gateway has it.
    Live,
    /// Ended with its `$disconnect` (a client close, a ban, an expiry).
    Disconnected,
    /// Ended, and its `$disconnect` never came.
    Lost,
}

#[derive(Debug, Clone)]
struct Connection {
    user: Option<u8>,
    /// In the conversation asked about (else another one).
    here: bool,
    minutes_ago: i64,
    end: End,
}

fn connection() -> impl Strategy<Value = Connection> {
    (
        proptest::option::weighted(0.9, 0u8..6),
        prop_oneof![5 => Just(true), 1 => Just(false)],
        0i64..40,
        prop_oneof![3 => Just(End::Live), 2 => Just(End::Disconnected), 2 => Just(End::Lost)],
    )
        .prop_map(|(user, here, minutes_ago, end)| Connection { user, here, minutes_ago, end })
}

/// The Management API: the connections it still has answer `GET` with 200, the others 410.
#[derive(Debug, Clone, Default)]
struct Api {
    live: Arc<Mutex<BTreeSet<String>>>,
    checked: Arc<Mutex<Vec<String>>>,
}

impl Poster for Api {
    async fn post(&self, _: &Endpoint, _: &ConnectionId, _: bytes::Bytes, _: Duration) -> Result<(), PostError> {
        Ok(())
    }

    async fn close(&self, _: &Endpoint, _: &ConnectionId, _: Duration) -> Result<(), PostError> {
        Ok(())
    }

    async fn check(&self, _: &Endpoint, id: &ConnectionId, _: Duration) -> Result<(), PostError> {
        self.checked.lock().unwrap().push(id.as_str().to_owned());
        if self.live.lock().unwrap().contains(id.as_str()) { Ok(()) } else { Err(PostError::Gone) }
    }
}

/// Writes `history` to `store` as its functions would have, and tells `api` which connections
/// it still has.
async fn record(store: &impl ConnectionStore, history: &[Connection], api: &Api, now: chrono::DateTime<chrono::Utc>) {
    for (i, c) in history.iter().enumerate() {
        let id = format!("c{i:03}=");
        let at = now - chrono::Duration::minutes(c.minutes_ago);
        let conversation = if c.here { "conv-p" } else { "conv-other" };
        let user = c.user.map(|u| format!("user-{u}"));
        let record = connection_record(&id, conversation, user.as_deref(), at);
        store.put_connection(&record, &no_hurry()).await.unwrap();
        match c.end {
            End::Live => {
                api.live.lock().unwrap().insert(id);
            }
            End::Disconnected => {
                let d = Disconnection {
                    connection_id: record.connection_id.clone(),
                    at: now,
                    close_code: Some(1000),
                    close_reason: Some("banned".into()),
                    expires_at: now + chrono::Duration::hours(3),
                };
                store.mark_disconnected(&d, &no_hurry()).await.unwrap();
            }
            End::Lost => {}
        }
    }
}

async fn check<S: ConnectionStore + StreamStore + ReadBack + Clone + 'static>(
    store: S,
    history: &[Connection],
) -> Result<(), TestCaseError> {
    let now = FixedClock::default().0;
    let api = Api::default();
    record(&store, history, &api, now).await;
    let vars =
        HashMap::from([("TABLE_CONNECTIONS", "presence"), ("FANOUT_PAGE_SIZE", "4"), ("PRESENCE_STALE_MINUTES", "10")]);
    let config = ws_responder::Config::from_env(&|name: &str| vars.get(name).map(|v| (*v).to_owned())).unwrap();
    let responder = Responder::new(api.clone(), Some(store.clone()), &config, Arc::new(Captured::default()))
        .with_clock(Arc::new(FixedClock::default()));

    // Every page, with its cursor; a user's connections may be on several pages.
    let mut event = json!({"action": "presence", "conversationId": "conv-p", "wsEndpoint": "http://127.0.0.1:9/prod"});
    let mut listed: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut anonymous = 0;
    for _ in 0..200 {
        let answer: Value =
            serde_json::to_value(responder.handle(event.clone(), "req", deadline_from_now(10_000)).await).unwrap();
        prop_assert_eq!(answer["statusCode"].as_u64(), Some(200), "{}", answer);
        for user in answer["users"].as_array().unwrap() {
            let entry = listed.entry(user["userId"].as_str().unwrap().to_owned()).or_insert((0, "~".into()));
            entry.0 += user["connections"].as_u64().unwrap();
            entry.1 = entry.1.clone().min(user["since"].as_str().unwrap().to_owned());
        }
        anonymous += answer.get("anonymous").and_then(Value::as_u64).unwrap_or(0);
        match answer.get("cursor") {
            Some(cursor) => event["cursor"] = cursor.clone(),
            None => break,
        }
    }
    prop_assert!(event.get("cursor").is_none() || listed.len() < 100, "the pages ended");

    // What the answer must be: live connections here, and lost ones younger than the window.
    let counts = |c: &&Connection| c.here && (c.end == End::Live || (c.end == End::Lost && c.minutes_ago < STALE));
    let mut expected: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    let mut expected_anonymous = 0;
    for c in history.iter().filter(counts) {
        match c.user {
            Some(u) => {
                let entry = expected.entry(format!("user-{u}")).or_insert((0, 0));
                entry.0 += 1;
                entry.1 = entry.1.max(c.minutes_ago);
            }
            None => expected_anonymous += 1,
        }
    }
    let got: BTreeMap<String, u64> = listed.iter().map(|(u, (n, _))| (u.clone(), *n)).collect();
    let want: BTreeMap<String, u64> = expected.iter().map(|(u, (n, _))| (u.clone(), *n)).collect();
    prop_assert_eq!(got, want, "users and their connections");
    prop_assert_eq!(anonymous, expected_anonymous);
    for (user, (_, since)) in &listed {
        let oldest = expected[user].1;
        prop_assert_eq!(since, &ws_shared::clock::iso_millis(now - chrono::Duration::minutes(oldest)), "{}", user);
    }
    // Users whose every connection here ended with a $disconnect are never listed.
    for c in history.iter().filter(|c| c.here && c.end == End::Disconnected) {
        if let Some(u) = c.user {
            let user = format!("user-{u}");
            let other_counts = history.iter().filter(counts).any(|o| o.user == Some(u));
            prop_assert!(other_counts || !listed.contains_key(&user), "{} listed after its $disconnect", user);
        }
    }
    // Old lost connections were asked about and marked GONE; young ones were not asked.
    let checked: BTreeSet<String> = api.checked.lock().unwrap().iter().cloned().collect();
    for (i, c) in history.iter().enumerate().filter(|(_, c)| c.here) {
        let id = format!("c{i:03}=");
        let stored = store.connection(&ConnectionId::parse(id.as_str()).unwrap(), &no_hurry()).await.unwrap().unwrap();
        if c.minutes_ago < STALE {
            prop_assert!(!checked.contains(&id), "{} is younger than the window and was asked about", id);
        }
        if c.end == End::Lost && c.minutes_ago >= STALE {
            prop_assert_eq!(stored.status, ConnectionStatus::Gone, "{} was lost long ago", id);
        }
        if c.end == End::Live {
            prop_assert_eq!(stored.status, ConnectionStatus::Connected, "{} is live", id);
        }
    }
    Ok(())
}

#[test]
fn presence_lists_exactly_the_users_api_gateway_still_has_in_memory() {
    let mut runner = TestRunner::new(Config { cases: cases(300), failure_persistence: None, ..Config::default() });
    runner
        .run(&proptest::collection::vec(connection(), 0..30), |history| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(check(MemoryStore::new(), &history))
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}

#[test]
fn presence_lists_exactly_the_users_api_gateway_still_has_on_dynamodb() {
    let mut runner = TestRunner::new(Config { cases: cases(6), failure_persistence: None, ..Config::default() });
    runner
        .run(&proptest::collection::vec(connection(), 0..20), |history| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let (client, table) = fresh_table("presence").await;
                check(DynamoStore::new(&client, table), &history).await
            })
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}
