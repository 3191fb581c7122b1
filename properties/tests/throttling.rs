//! The fan-out against generated throttling (docs/design.md §9): which posts the Management API
//! refuses with 429, and when, is generated — some connections refused their first few tries,
//! and a global pattern over the order of requests (the quota). Each fan-out is continued with its
//! cursor, under short deadlines, until an answer has none. Invariants:
//! - no connection gets the message twice;
//! - every connection that was refused is, in the end, delivered or counted `failed` — never
//!   silently dropped (the counts add up to the audience);
//! - without quota throttling, a connection refused fewer times than a lone connection may be
//!   (`MAX_STRIKES`) is delivered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use ws_properties::cases;
use ws_responder::Responder;
use ws_responder::endpoint::Endpoint;
use ws_responder::management::{PostError, Poster};
use ws_responder::pacing::MAX_STRIKES;
use ws_shared::id::{ConnectionId, ConversationId};
use ws_shared::memory::MemoryStore;
use ws_shared::record::ConnectionRecord;
use ws_shared::store::ConnectionStore;
use ws_shared::testing::{Captured, deadline_from_now, no_hurry};

/// A Management API that refuses by plan: each connection's first `own[id]` tries, and every
/// request whose sequence number falls on a `true` of `quota` (cycled).
#[derive(Debug, Default)]
struct Planned {
    own: Mutex<HashMap<String, u8>>,
    quota: Vec<bool>,
    requests: AtomicUsize,
    delivered: Mutex<HashMap<String, usize>>,
    refused: Mutex<HashMap<String, usize>>,
}

/// The responder owns its poster; the test keeps a handle to read what arrived.
#[derive(Debug, Clone)]
struct Shared(Arc<Planned>);

impl Poster for Shared {
    async fn post(
        &self,
        _: &Endpoint,
        connection: &ConnectionId,
        _: bytes::Bytes,
        _: Duration,
    ) -> Result<(), PostError> {
        let planned = &self.0;
        let n = planned.requests.fetch_add(1, Ordering::Relaxed);
        let id = connection.as_str().to_owned();
        let own = {
            let mut own = planned.own.lock().unwrap();
            match own.get_mut(&id) {
                Some(left) if *left > 0 => {
                    *left -= 1;
                    true
                }
                _ => false,
            }
        };
        let quota = !planned.quota.is_empty() && planned.quota[n % planned.quota.len()];
        if own || quota {
            *planned.refused.lock().unwrap().entry(id).or_default() += 1;
            return Err(PostError::Throttled);
        }
        *planned.delivered.lock().unwrap().entry(id).or_default() += 1;
        Ok(())
    }

    async fn close(&self, _: &Endpoint, _: &ConnectionId, _: Duration) -> Result<(), PostError> {
        unreachable!("these fan-outs post")
    }
}

#[derive(Debug, Clone)]
struct Case {
    /// Per connection: how many of its first tries are refused.
    own: Vec<u8>,
    quota: Vec<bool>,
    concurrency: u32,
    deadline_ms: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(prop_oneof![6 => Just(0u8), 3 => 1u8..MAX_STRIKES, 1 => MAX_STRIKES..8], 1..40),
        proptest::collection::vec(prop_oneof![3 => Just(false), 1 => Just(true)], 0..16),
        1u32..64,
        300u64..1500,
    )
        .prop_map(|(own, quota, concurrency, deadline_ms)| Case { own, quota, concurrency, deadline_ms })
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = MemoryStore::new();
        let now = chrono::Utc::now();
        let ids: Vec<String> = (0..case.own.len()).map(|i| format!("c{i:02}=")).collect();
        for id in &ids {
            let record = ConnectionRecord {
                connection_id: ConnectionId::parse(id.as_str()).unwrap(),
                conversation_id: ConversationId::parse("conv-t").unwrap(),
                user_id: None,
                connected_at: now,
                updated_at: now,
                ip: None,
                user_agent: None,
                domain_name: None,
                stage: None,
                expires_at: now + chrono::Duration::hours(1),
                token_expires_at: None,
                api_id: None,
                region: None,
            };
            store.put_connection(&record, &no_hurry()).await.unwrap();
        }
        let api = Arc::new(Planned {
            own: Mutex::new(ids.iter().cloned().zip(case.own.iter().copied()).collect()),
            quota: case.quota.clone(),
            ..Planned::default()
        });
        let concurrency = case.concurrency.to_string();
        let vars = HashMap::from([("TABLE_CONNECTIONS", "memory"), ("FANOUT_CONCURRENCY", concurrency.as_str())]);
        let config = ws_responder::Config::from_env(&|name: &str| vars.get(name).map(|v| (*v).to_owned())).unwrap();
        let responder = Responder::new(Shared(Arc::clone(&api)), Some(store), &config, Arc::new(Captured::default()));

        let mut event = json!({"conversationId": "conv-t", "messageType": "system", "payload": {"text": "t"},
                               "wsEndpoint": "http://127.0.0.1:9/prod"});
        let mut answers: Vec<Value> = Vec::new();
        for _ in 0..200 {
            let answer =
                serde_json::to_value(responder.handle(event.clone(), "req", deadline_from_now(case.deadline_ms)).await)
                    .unwrap();
            let cursor = answer.get("cursor").cloned();
            answers.push(answer);
            match cursor {
                Some(cursor) => event["cursor"] = cursor,
                None => break,
            }
        }
        prop_assert!(answers.last().is_some_and(|a| a.get("cursor").is_none()), "never ended: {:?}", answers);
        let sum = |field: &str| answers.iter().map(|a| a[field].as_u64().unwrap_or(0)).sum::<u64>();
        let delivered = api.delivered.lock().unwrap().clone();
        let refused = api.refused.lock().unwrap().clone();
        let n = ids.len() as u64;

        prop_assert!(delivered.values().all(|&times| times == 1), "delivered twice: {:?}", delivered);
        prop_assert_eq!(sum("targets"), n, "each connection taken once: {:?}", answers);
        prop_assert_eq!(sum("posted"), delivered.len() as u64, "posted counts what arrived");
        prop_assert_eq!(sum("posted") + sum("failed"), n, "a refused post was dropped: {:?}", answers);
        prop_assert_eq!(sum("throttled"), refused.values().sum::<usize>() as u64, "every 429 is counted");
        // Without quota throttling, a connection's own refusals alone decide whether it is given up.
        if case.quota.iter().all(|refused| !refused) {
            for (id, own) in ids.iter().zip(&case.own) {
                if *own < MAX_STRIKES {
                    prop_assert!(
                        delivered.contains_key(id),
                        "{} refused {} times was not delivered: {:?}",
                        id,
                        own,
                        answers
                    );
                }
            }
        }
        Ok(())
    })
}

#[test]
fn no_refused_post_is_lost_and_none_is_delivered_twice() {
    let mut runner = TestRunner::new(Config { cases: cases(24), failure_persistence: None, ..Config::default() });
    runner.run(&case(), |case| check(&case)).unwrap_or_else(|failure| panic!("{failure}"));
}
