//! `resume` against the in-memory table (the store contract holds both adapters to the same
//! rules): what a client asks, what it gets, and what it is refused.

use std::sync::Arc;

use chrono::Duration;
use serde_json::{Value, json};
use ws_routes::{Config, Routes};
use ws_shared::id::{ConnectionId, ConversationId, UserId};
use ws_shared::memory::MemoryStore;
use ws_shared::record::ConnectionRecord;
use ws_shared::store::ConnectionStore;
use ws_shared::stream::{Append, MessageKey, StreamName, StreamStore};
use ws_shared::testing::{Captured, FixedClock, ManualClock, deadline_from_now, no_hurry};

const STREAM: &str = "conv/us-east-1/conv-r";

struct Harness {
    store: MemoryStore,
    clock: Arc<ManualClock>,
    routes: Routes<MemoryStore>,
}

impl Harness {
    async fn new(env: &[(&str, &str)]) -> Self {
        let store = MemoryStore::new();
        let mut vars: std::collections::HashMap<String, String> =
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        vars.insert("TABLE_CONNECTIONS".into(), "memory".into());
        let config = Config::from_env(&|n: &str| vars.get(n).cloned()).unwrap();
        let clock = Arc::new(ManualClock::new(FixedClock::default().0));
        let routes = Routes::new(store.clone(), &config, Arc::new(Captured::default())).with_clock(clock.clone());
        let now = FixedClock::default().0;
        let record = ConnectionRecord {
            connection_id: ConnectionId::parse("me=").unwrap(),
            conversation_id: ConversationId::parse("conv-r").unwrap(),
            user_id: Some(UserId::parse("rita").unwrap()),
            connected_at: now,
            updated_at: now,
            ip: None,
            user_agent: None,
            domain_name: None,
            stage: None,
            expires_at: now + Duration::hours(3),
            token_expires_at: None,
            api_id: None,
            region: None,
        };
        store.put_connection(&record, &no_hurry()).await.unwrap();
        Self { store, clock, routes }
    }

    /// Appends `n` messages of `size` bytes of payload each, kept 60 minutes.
    async fn publish(&self, n: u64, size: usize) {
        let stream = StreamName::parse(STREAM).unwrap();
        for i in 0..n {
            let message = json!({"messageType": "m", "payload": {"i": i, "pad": "x".repeat(size)}}).to_string();
            let key = MessageKey::of_message_id(&format!("{}-{i}", self.clock_minutes()));
            let append = Append {
                stream: &stream,
                key: &key,
                message: &message,
                at: ws_shared::clock::Clock::now(self.clock.as_ref()),
                retention: Duration::minutes(60),
                new_epoch: &format!("epoch-{}", self.clock_minutes()),
            };
            self.store.append(append, &no_hurry()).await.unwrap();
        }
    }

    fn clock_minutes(&self) -> i64 {
        (ws_shared::clock::Clock::now(self.clock.as_ref()) - FixedClock::default().0).num_minutes()
    }

    /// The answer frame to `body` from connection `me=` (with `principal` as the authorizer's).
    async fn ask_as(&self, body: &Value, principal: Option<&str>) -> Value {
        let mut context = json!({"routeKey": "resume", "eventType": "MESSAGE", "connectionId": "me=",
                                 "connectedAt": 1, "requestTimeEpoch": 1});
        if let Some(principal) = principal {
            context["authorizer"] = json!({"principalId": principal});
        }
        let event = json!({"requestContext": context, "body": body.to_string()});
        let response = serde_json::to_value(self.routes.handle(event, "req", deadline_from_now(10_000)).await).unwrap();
        serde_json::from_str(response["body"].as_str().unwrap()).unwrap()
    }

    async fn ask(&self, streams: Value) -> Value {
        self.ask_as(&json!({"action": "resume", "streams": streams}), Some("rita")).await
    }
}

fn offsets(part: &Value) -> Vec<u64> {
    part["messages"].as_array().unwrap().iter().map(|m| m["offset"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn a_client_gets_what_came_after_its_offset_as_the_live_envelopes_in_order() {
    let h = Harness::new(&[]).await;
    h.publish(5, 10).await;
    let answer = h.ask(json!([{"stream": STREAM, "offset": 2, "epoch": "epoch-0"}])).await;
    let part = &answer["streams"][0];
    assert_eq!((answer["type"].as_str(), answer.get("more")), (Some("resumed"), None), "{answer}");
    assert_eq!(
        (part["recovered"].as_bool(), part["from"].as_u64(), part["to"].as_u64()),
        (Some(true), Some(3), Some(5))
    );
    assert_eq!(offsets(part), [3, 4, 5]);
    let first = &part["messages"][0];
    assert_eq!(
        (first["stream"].as_str(), first["epoch"].as_str(), first["payload"]["i"].as_u64()),
        (Some(STREAM), Some("epoch-0"), Some(2))
    );
}

#[tokio::test]
async fn a_client_without_a_position_starts_now_and_one_with_offset_zero_gets_what_is_kept() {
    let h = Harness::new(&[]).await;
    h.publish(3, 10).await;
    let now = &h.ask(json!([{"stream": STREAM}])).await["streams"][0];
    assert_eq!((now["recovered"].as_bool(), now["to"].as_u64(), offsets(now).len()), (Some(true), Some(3), 0));
    let all = &h.ask(json!([{"stream": STREAM, "offset": 0}])).await["streams"][0];
    assert_eq!(offsets(all), [1, 2, 3]);
    // A stream nobody posted to yet: nothing, and nothing lost.
    let empty = &h.ask(json!([{"stream": "user/us-east-1/rita"}])).await["streams"][0];
    assert_eq!(
        (empty["recovered"].as_bool(), empty["epoch"].is_null(), empty["to"].as_u64()),
        (Some(true), true, Some(0))
    );
}

#[tokio::test]
async fn another_epoch_or_expired_messages_are_not_recovered() {
    let h = Harness::new(&[]).await;
    h.publish(3, 10).await;
    // An epoch the stream no longer has: not recovered; what the stream has now comes instead.
    let other = &h.ask(json!([{"stream": STREAM, "offset": 2, "epoch": "epoch-old"}])).await["streams"][0];
    assert_eq!(
        (other["recovered"].as_bool(), other["epoch"].as_str(), offsets(other)),
        (Some(false), Some("epoch-0"), vec![1, 2, 3])
    );
    // 40 minutes later, 2 more; at 70 minutes the first 3 (kept 60) have expired, not the 2.
    h.clock.advance(Duration::minutes(40));
    h.publish(2, 10).await;
    h.clock.advance(Duration::minutes(30));
    let gone = &h.ask(json!([{"stream": STREAM, "offset": 1, "epoch": "epoch-0"}])).await["streams"][0];
    assert_eq!((gone["recovered"].as_bool(), offsets(gone)), (Some(false), vec![4, 5]));
    let kept = &h.ask(json!([{"stream": STREAM, "offset": 3, "epoch": "epoch-0"}])).await["streams"][0];
    assert_eq!((kept["recovered"].as_bool(), offsets(kept)), (Some(true), vec![4, 5]), "nothing it asked for is gone");
}

#[tokio::test]
async fn a_client_that_names_no_stream_learns_its_own_and_where_they_are() {
    let h = Harness::new(&[("AWS_REGION", "us-east-1")]).await;
    h.publish(2, 10).await;
    let answer = h.ask_as(&json!({"action": "resume"}), Some("rita")).await;
    let parts = answer["streams"].as_array().unwrap();
    let summary: Vec<(&str, u64, usize)> = parts
        .iter()
        .map(|p| (p["stream"].as_str().unwrap(), p["to"].as_u64().unwrap(), p["messages"].as_array().unwrap().len()))
        .collect();
    assert_eq!(summary, [(STREAM, 2, 0), ("user/us-east-1/rita", 0, 0)], "{answer}");
}

#[tokio::test]
async fn an_answer_stops_at_its_message_count_or_its_bytes_and_says_more() {
    let h = Harness::new(&[("RESUME_MAX_MESSAGES", "4")]).await;
    h.publish(10, 10).await;
    let answer = h.ask(json!([{"stream": STREAM, "offset": 0}])).await;
    assert_eq!((answer["more"].as_bool(), offsets(&answer["streams"][0])), (Some(true), vec![1, 2, 3, 4]));
    assert_eq!(answer["streams"][0]["to"], 4, "the client asks again from here");

    let big = Harness::new(&[]).await;
    big.publish(6, 30 * 1024).await;
    let answer = big.ask(json!([{"stream": STREAM, "offset": 0}])).await;
    let text = answer.to_string();
    assert!(text.len() <= ws_routes::resume::MAX_ANSWER_BYTES + 1024, "{} bytes", text.len());
    assert_eq!((answer["more"].as_bool(), offsets(&answer["streams"][0])), (Some(true), vec![1, 2, 3]));
    // One message bigger than the byte budget still comes, alone (a streamed post is at most 127 KB).
    let huge = Harness::new(&[]).await;
    huge.publish(2, 110 * 1024).await;
    let answer = huge.ask(json!([{"stream": STREAM, "offset": 0}])).await;
    assert_eq!((answer["more"].as_bool(), offsets(&answer["streams"][0])), (Some(true), vec![1]));
}

#[tokio::test]
async fn only_the_connections_own_streams_in_a_well_formed_request_are_answered() {
    let h = Harness::new(&[]).await;
    let refusals = [
        (json!({"action": "resume", "streams": "all"}), "streams must be a list of 1 to 16"),
        (json!({"action": "resume", "streams": []}), "streams must be a list of 1 to 16"),
        (json!({"action": "resume", "streams": [{"stream": "conv/x"}]}), "streams[0].stream must name a stream"),
        (json!({"action": "resume", "streams": [{"stream": STREAM, "offset": -1}]}), "streams[0].offset must be"),
        (json!({"action": "resume", "streams": [{"stream": STREAM, "epoch": 7}]}), "streams[0].epoch must be"),
        (
            json!({"action": "resume", "streams": [{"stream": STREAM}, {"stream": "conv/us-east-1/conv-x"}]}),
            "streams[1] is not a stream this connection may read",
        ),
        (
            json!({"action": "resume", "streams": [{"stream": "user/us-east-1/mallory"}]}),
            "streams[0] is not a stream this connection may read",
        ),
        (json!({"action": "resumes"}), "this route answers \"resume\" or \"presence\""),
    ];
    for (body, error) in refusals {
        let answer = h.ask_as(&body, Some("rita")).await;
        assert_eq!(answer["type"], "error", "{body}: {answer}");
        assert!(answer["error"].as_str().unwrap().starts_with(error), "{body}: {answer}");
    }
    // The record says who the connection is; a principal that contradicts it is refused.
    let mismatch = h.ask_as(&json!({"action": "resume", "streams": [{"stream": STREAM}]}), Some("mallory")).await;
    assert!(mismatch["error"].as_str().unwrap().contains("does not match its token"), "{mismatch}");
    // Any region's stream of its own conversation and user is fine.
    let own = json!([{"stream": "conv/eu-west-1/conv-r"}, {"stream": "user/ap-south-1/rita"}]);
    assert_eq!(h.ask(own).await["type"], "resumed");
}

#[tokio::test]
async fn a_connection_that_is_not_connected_is_told_to_reconnect() {
    let h = Harness::new(&[]).await;
    let disconnection = ws_shared::record::Disconnection {
        connection_id: ConnectionId::parse("me=").unwrap(),
        at: FixedClock::default().0,
        close_code: Some(1006),
        close_reason: None,
        expires_at: FixedClock::default().0 + Duration::hours(3),
    };
    h.store.mark_disconnected(&disconnection, &no_hurry()).await.unwrap();
    let answer = h.ask(json!([{"stream": STREAM}])).await;
    assert_eq!(answer["error"], "this connection is not recorded as connected; reconnect", "{answer}");
}
