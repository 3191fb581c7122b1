//! The responder against real HTTP: a Management API stand-in on loopback (see `support`), and
//! moto's DynamoDB for fan-out and gone-marking (started by `scripts/test.sh`).

// The fan-out future (SDK calls inside the handler) nests deeper than the default limit of 128
// when the compiler computes its layout, as in main.rs.
#![recursion_limit = "256"]

mod support;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_dynamodb::Client;
use serde_json::{Value, json};
use support::{StandIn, is_sigv4, signed_region};
use ws_responder::management::ManagementApi;
use ws_responder::{Config, Responder};
use ws_shared::aws::Roots;
use ws_shared::dynamo::DynamoStore;
use ws_shared::id::{ConnectionId, ConversationId, UserId};
use ws_shared::memory::MemoryStore;
use ws_shared::record::{ConnectionRecord, ConnectionStatus, Disconnection};
use ws_shared::store::ConnectionStore;
use ws_shared::stream::StreamStore;
use ws_shared::testing::faults::{Fault, FaultProxy};
use ws_shared::testing::{
    Captured, FixedClock, ReadBack, SequentialIds, capture_logs, create_connections_table, deadline_in,
    dynamodb_client, dynamodb_endpoint, no_hurry, raw_item, sdk_config, unique_table_name,
};

fn sample_event() -> Value {
    serde_json::from_str(include_str!("../../../events/responder.json")).unwrap()
}

/// A fan-out's answer without where its message was appended (`stream`, `offset`, `epoch`: the
/// streams' own tests check those), for comparing counts.
fn counts(answer: &Value) -> Value {
    let mut answer = answer.clone();
    for field in ["stream", "offset", "epoch"] {
        answer.as_object_mut().map(|a| a.remove(field));
    }
    answer
}

/// The sample event aimed at `endpoint`.
fn event_for(endpoint: &str) -> Value {
    let mut event = sample_event();
    event["wsEndpoint"] = json!(endpoint);
    event
}

fn fan_out_event(endpoint: &str, audience: (&str, &str)) -> Value {
    let mut event = event_for(endpoint);
    let object = event.as_object_mut().unwrap();
    object.remove("connectionId");
    object.remove("correlationId");
    object.insert(audience.0.to_owned(), json!(audience.1));
    event
}

/// The responder's configuration from `env`, with `TABLE_CONNECTIONS` = `table` when given.
fn config_of(env: &[(&str, &str)], table: Option<&str>) -> Config {
    let mut vars: HashMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    if let Some(table) = table {
        vars.insert("TABLE_CONNECTIONS".into(), table.to_owned());
    }
    Config::from_env(&|name: &str| vars.get(name).cloned()).expect("valid config")
}

/// A responder on `store` (the real Management API client), its metrics into `metrics`.
fn responder_on<S: ConnectionStore + StreamStore>(
    config: &Config,
    store: Option<S>,
    metrics: &Captured,
) -> Responder<ManagementApi, S> {
    Responder::new(ManagementApi::new(&sdk_config(), Roots::Amazon), store, config, Arc::new(metrics.clone()))
        .with_clock(Arc::new(FixedClock::default()))
        .with_ids(Arc::new(SequentialIds::default()))
}

/// One invocation of `responder` with `ms` until its deadline, its answer as JSON.
async fn invoke_on<S: ConnectionStore + StreamStore>(
    responder: &Responder<ManagementApi, S>,
    event: Value,
    ms: u64,
) -> Value {
    serde_json::to_value(responder.handle(event, "req-1", deadline_in(ms)).await).unwrap()
}

struct Harness {
    responder: Responder<ManagementApi, DynamoStore>,
    client: Client,
    table: String,
    metrics: Captured,
}

impl Harness {
    /// A responder with `env` (plus `TABLE_CONNECTIONS` of a fresh moto table when `with_table`).
    async fn new(env: &[(&str, &str)], with_table: bool) -> Self {
        Self::via(&dynamodb_endpoint(), env, with_table).await
    }

    /// A responder whose DynamoDB calls go to `endpoint` (a fault proxy in front of moto); the
    /// table is made, and read back, directly on moto.
    async fn via(endpoint: &str, env: &[(&str, &str)], with_table: bool) -> Self {
        let client = dynamodb_client(&dynamodb_endpoint());
        let table = unique_table_name("responder");
        if with_table {
            create_connections_table(&client, &table).await;
        }
        let config = config_of(env, with_table.then_some(table.as_str()));
        let store = config.table.as_ref().map(|t| DynamoStore::new(&dynamodb_client(endpoint), t));
        let metrics = Captured::default();
        let responder = responder_on(&config, store, &metrics);
        Self { responder, client, table, metrics }
    }

    async fn invoke(&self, event: Value) -> Value {
        self.invoke_within(event, 30_000).await
    }

    /// One invocation with `ms` until its deadline.
    async fn invoke_within(&self, event: Value, ms: u64) -> Value {
        invoke_on(&self.responder, event, ms).await
    }

    fn store(&self) -> DynamoStore {
        DynamoStore::new(&self.client, &self.table)
    }

    async fn connect(&self, id: &str, conversation: &str, user: Option<&str>) {
        self.connect_expiring(id, conversation, user, None).await;
    }

    /// A record whose token expires `exp` (epoch seconds) when given.
    async fn connect_expiring(&self, id: &str, conversation: &str, user: Option<&str>, exp: Option<i64>) {
        self.connect_routed(id, conversation, user, exp, None).await;
    }

    /// A record that names where it lives (`api`, `stage`, `region`), as `ConnectFunction`
    /// writes them.
    async fn connect_routed(
        &self,
        id: &str,
        conversation: &str,
        user: Option<&str>,
        exp: Option<i64>,
        route: Option<(&str, &str, &str)>,
    ) {
        let record = connection_record(id, conversation, user, exp, route);
        self.store().put_connection(&record, &no_hurry()).await.expect("put");
    }

    async fn status(&self, id: &str) -> String {
        self.attribute(id, "status").await.expect("a status")
    }

    async fn attribute(&self, id: &str, name: &str) -> Option<String> {
        let item = raw_item(&self.client, &self.table, id).await.expect("record exists");
        item.get(name).and_then(|v| v.as_s().ok()).cloned()
    }
}

#[tokio::test]
async fn the_envelope_reaches_the_connection_byte_for_byte_url_encoded_and_signed() {
    let standin = StandIn::start(["abc123="]).await;
    let h = Harness::new(&[], false).await;

    let result = h.invoke(event_for(&standin.endpoint("local"))).await;

    assert_eq!(result, json!({"statusCode": 200}));
    let posts = standin.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].raw_path, "/local/@connections/abc123%3D");
    assert_eq!(posts[0].connection_id, "abc123=");
    assert!(is_sigv4(&posts[0]), "not SigV4-signed: {:?}", posts[0].authorization);
    let body = String::from_utf8(posts[0].body.clone()).unwrap();
    assert_eq!(
        body,
        r#"{"messageType":"system","correlationId":"conv-123","sequence":21,"isFinal":false,"payload":{"text":"Processando…"}}"#
    );
    insta::assert_json_snapshot!("envelope", serde_json::from_str::<Value>(&body).unwrap());
}

#[tokio::test]
async fn the_event_endpoint_wins_over_ws_endpoint() {
    let (from_event, from_env) = (StandIn::start(["abc123="]).await, StandIn::start(["abc123="]).await);
    let h = Harness::new(&[("WS_ENDPOINT", &from_env.endpoint("env"))], false).await;

    h.invoke(event_for(&from_event.endpoint("event"))).await;
    let mut no_endpoint = sample_event();
    no_endpoint.as_object_mut().unwrap().remove("wsEndpoint");
    h.invoke(no_endpoint).await;

    assert_eq!(from_event.posts().iter().map(|p| p.stage.as_str()).collect::<Vec<_>>(), ["event"]);
    assert_eq!(from_env.posts().iter().map(|p| p.stage.as_str()).collect::<Vec<_>>(), ["env"]);
}

#[tokio::test]
async fn a_post_is_cut_short_by_the_invocation_deadline() {
    // GIVEN a Management API that answers after 3 s, and an invocation with 600 ms left
    let standin = StandIn::start_slow(["abc123="], std::time::Duration::from_secs(3)).await;
    let h = Harness::new(&[], false).await;
    let deadline = u64::try_from(FixedClock::default().0.timestamp_millis()).unwrap() + 600;

    let result =
        serde_json::to_value(h.responder.handle(event_for(&standin.endpoint("prod")), "req-1", deadline).await)
            .unwrap();

    // THEN the post gives up within the time left (a late 200 would have missed the deadline)
    assert_eq!(result, json!({"statusCode": 500, "error": "the post failed; see the function's logs"}));
}

#[tokio::test]
async fn a_gone_connection_is_a_410_and_its_record_becomes_gone_when_mark_gone_is_on() {
    let standin = StandIn::start(Vec::<String>::new()).await;
    let marking = Harness::new(&[("MARK_GONE", "true")], true).await;
    let keeping = Harness::new(&[], true).await;
    for h in [&marking, &keeping] {
        h.connect("abc123=", "conv-123", None).await;
    }

    assert_eq!(
        marking.invoke(event_for(&standin.endpoint("prod"))).await,
        json!({"statusCode": 410, "error": ws_responder::GONE})
    );
    assert_eq!(
        keeping.invoke(event_for(&standin.endpoint("prod"))).await,
        json!({"statusCode": 410, "error": ws_responder::GONE})
    );

    assert_eq!(marking.status("abc123=").await, "GONE");
    assert_eq!(keeping.status("abc123=").await, "CONNECTED", "MARK_GONE is off by default");
}

#[tokio::test]
async fn a_gone_post_never_revives_or_overwrites_a_disconnected_record() {
    let standin = StandIn::start(Vec::<String>::new()).await;
    let h = Harness::new(&[("MARK_GONE", "true")], true).await;
    h.connect("abc123=", "conv-123", None).await;
    let at = FixedClock::default().0;
    let disconnection = Disconnection {
        connection_id: ConnectionId::parse("abc123=").unwrap(),
        at,
        close_code: Some(1000),
        close_reason: None,
        expires_at: at,
    };
    h.store().mark_disconnected(&disconnection, &no_hurry()).await.unwrap();

    assert_eq!(
        h.invoke(event_for(&standin.endpoint("prod"))).await,
        json!({"statusCode": 410, "error": ws_responder::GONE})
    );
    assert_eq!(h.status("abc123=").await, "DISCONNECTED");
}

#[tokio::test]
async fn a_fan_out_posts_to_every_connected_connection_of_a_conversation_and_marks_the_gone_ones() {
    // GIVEN five connections of conv-7, two of them gone at the gateway, plus one already
    // disconnected and one in another conversation
    let live = ["c1=", "c2=", "c3="];
    let standin = StandIn::start(live.iter().copied().chain(["other="])).await;
    let h = Harness::new(&[], true).await;
    for id in ["c1=", "c2=", "c3=", "g1=", "g2=", "d1="] {
        h.connect(id, "conv-7", None).await;
    }
    h.connect("other=", "conv-8", None).await;
    let at = FixedClock::default().0;
    let d1 = Disconnection {
        connection_id: ConnectionId::parse("d1=").unwrap(),
        at,
        close_code: None,
        close_reason: None,
        expires_at: at,
    };
    h.store().mark_disconnected(&d1, &no_hurry()).await.unwrap();

    let result = h.invoke(fan_out_event(&standin.endpoint("prod"), ("conversationId", "conv-7"))).await;

    assert_eq!(
        counts(&result),
        json!({"statusCode": 200, "targets": 5, "posted": 3, "gone": 2, "failed": 0, "throttled": 0, "retried": 0})
    );
    let mut reached: Vec<String> = standin.posts().into_iter().map(|p| p.connection_id).collect();
    reached.sort();
    assert_eq!(reached, ["c1=", "c2=", "c3=", "g1=", "g2="]);
    for id in ["g1=", "g2="] {
        assert_eq!(h.status(id).await, "GONE", "{id}");
    }
    for id in live {
        assert_eq!(h.status(id).await, "CONNECTED", "{id}");
    }
    let body: Value = serde_json::from_slice(&standin.posts()[0].body).unwrap();
    assert_eq!(body["correlationId"], "conv-7", "a conversation fan-out correlates to the conversation");
    let metrics = h.metrics.json();
    assert_eq!((metrics[0]["Posted"].as_u64(), metrics[0]["Gone"].as_u64()), (Some(3), Some(2)));
}

#[tokio::test]
async fn a_fan_out_by_user_reaches_every_device_of_that_user() {
    let standin = StandIn::start(["phone=", "laptop=", "someone-else="]).await;
    let h = Harness::new(&[], true).await;
    h.connect("phone=", "conv-1", Some("u-42")).await;
    h.connect("laptop=", "conv-2", Some("u-42")).await;
    h.connect("someone-else=", "conv-1", Some("u-7")).await;

    let result = h.invoke(fan_out_event(&standin.endpoint("prod"), ("userId", "u-42"))).await;

    assert_eq!(
        counts(&result),
        json!({"statusCode": 200, "targets": 2, "posted": 2, "gone": 0, "failed": 0, "throttled": 0, "retried": 0})
    );
}

#[tokio::test]
async fn a_fan_out_where_every_post_fails_is_a_500_and_one_with_no_targets_is_a_200() {
    let h = Harness::new(&[], true).await;
    h.connect("c1=", "conv-1", None).await;
    // Nothing listens on this port: every post fails after its retries.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/prod", listener.local_addr().unwrap())
    };

    let failed = h.invoke(fan_out_event(&closed, ("conversationId", "conv-1"))).await;
    let empty = h.invoke(fan_out_event(&closed, ("conversationId", "conv-nobody"))).await;

    assert_eq!(
        counts(&failed),
        json!({"statusCode": 500, "targets": 1, "posted": 0, "gone": 0, "failed": 1, "throttled": 0, "retried": 0})
    );
    assert_eq!(
        counts(&empty),
        json!({"statusCode": 200, "targets": 0, "posted": 0, "gone": 0, "failed": 0, "throttled": 0, "retried": 0})
    );
}

#[tokio::test]
async fn refusals_happen_before_any_call_and_say_what_was_wrong() {
    let standin = StandIn::start(["abc123="]).await;
    let h = Harness::new(&[], false).await;
    let endpoint = standin.endpoint("prod");

    let mut oversize = event_for(&endpoint);
    oversize["payload"] = json!({"text": "x".repeat(128 * 1024)});
    let mut wss = sample_event();
    wss["wsEndpoint"] = json!("wss://abc.execute-api.us-east-1.amazonaws.com/prod");
    let mut no_endpoint = sample_event();
    no_endpoint.as_object_mut().unwrap().remove("wsEndpoint");
    let mut bad_type = event_for(&endpoint);
    bad_type["messageType"] = json!(42);

    let results = json!({
        "oversize": h.invoke(oversize).await,
        "wss": h.invoke(wss).await,
        "noEndpoint": h.invoke(no_endpoint).await,
        "badMessageType": h.invoke(bad_type).await,
        "fanOutWithoutTable": h.invoke(fan_out_event(&endpoint, ("conversationId", "conv-1"))).await,
    });

    assert!(standin.posts().is_empty(), "nothing reaches the network");
    insta::assert_json_snapshot!("refusals", results);
}

#[tokio::test]
async fn logs_and_metrics_carry_sizes_never_payloads() {
    let standin = StandIn::start(["abc123=", "c1="]).await;
    let h = Harness::new(&[], true).await;
    h.connect("c1=", "conv-123", None).await;
    let (logs, _guard) = capture_logs(ws_responder::SVC);

    h.invoke(event_for(&standin.endpoint("prod"))).await;
    h.invoke(fan_out_event(&standin.endpoint("prod"), ("conversationId", "conv-123"))).await;

    insta::assert_json_snapshot!("logs", logs.json());
    insta::assert_json_snapshot!("metrics", h.metrics.json());
    assert!(!logs.raw().contains("Processando"), "payload leaked into the logs");
}

/// A fan-out to 1,000 connections, all delivered, appended to its stream and (`STREAMS=false`, on a
/// table of its own with the same connections) not: what a stream costs each published message.
/// `FANOUT_RUNS=n` repeats both, interleaved, and prints each one's time and this thread's CPU
/// (the responder and the stand-in run on it; the stand-in's share is the same for both), which
/// scripts/bench.sh reads; timing is reported, never asserted.
#[tokio::test]
async fn a_fan_out_to_a_thousand_connections_reaches_them_all_with_its_stream_and_without() {
    let ids: Vec<String> = (0..1000).map(|i| format!("conn-{i:04}=")).collect();
    let standin = StandIn::start(ids.clone()).await;
    let streamed = Harness::new(&[], true).await;
    let plain = Harness::new(&[("STREAMS", "false")], true).await;
    for h in [&streamed, &plain] {
        for id in &ids {
            h.connect(id, "conv-big", None).await;
        }
    }
    let runs: usize = std::env::var("FANOUT_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(1);
    let cpu_ns = || {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    for run in 0..runs {
        let mut line = format!("fanout-1000 run {run}:");
        for (name, h) in [("streamed", &streamed), ("plain", &plain)] {
            let (started, cpu) = (Instant::now(), cpu_ns());
            let result = h.invoke(fan_out_event(&standin.endpoint("prod"), ("conversationId", "conv-big"))).await;
            let (elapsed, cpu) = (started.elapsed(), cpu_ns() - cpu);
            assert_eq!(
                counts(&result),
                json!({"statusCode": 200, "targets": 1000, "posted": 1000, "gone": 0, "failed": 0, "throttled": 0, "retried": 0})
            );
            assert_eq!(result.get("offset").and_then(Value::as_u64), (name == "streamed").then_some(run as u64 + 1));
            let _ = write!(line, " {name} {:.1} ms {} us-cpu", elapsed.as_secs_f64() * 1000.0, cpu / 1000);
        }
        println!("{line}");
    }
    assert_eq!(standin.posts().len(), 2000 * runs);
}

/// The record `ConnectFunction` writes for `id` (`route`: api, stage, region).
fn connection_record(
    id: &str,
    conversation: &str,
    user: Option<&str>,
    exp: Option<i64>,
    route: Option<(&str, &str, &str)>,
) -> ConnectionRecord {
    let now = FixedClock::default().0;
    ConnectionRecord {
        connection_id: ConnectionId::parse(id).unwrap(),
        conversation_id: ConversationId::parse(conversation).unwrap(),
        user_id: user.map(|u| UserId::parse(u).unwrap()),
        connected_at: now,
        updated_at: now,
        ip: None,
        user_agent: None,
        domain_name: None,
        stage: route.map(|(_, stage, _)| stage.to_owned()),
        expires_at: now + chrono::Duration::hours(3),
        token_expires_at: exp,
        api_id: route.map(|(api, _, _)| api.to_owned()),
        region: route.map(|(_, _, region)| region.to_owned()),
    }
}

/// Invokes the fan-out `event` with `ms` to each deadline, continuing with each answer's cursor
/// until one has none; every answer must come before its deadline. Returns the answers.
async fn fan_out_until_done(h: &Harness, event: &Value, ms: u64) -> Vec<Value> {
    fan_out_until_done_with(async |event, ms| h.invoke_within(event, ms).await, event, ms).await
}

/// [`fan_out_until_done`] through `invoke` (event, milliseconds to the deadline → answer).
async fn fan_out_until_done_with(invoke: impl AsyncFn(Value, u64) -> Value, event: &Value, ms: u64) -> Vec<Value> {
    let mut answers: Vec<Value> = Vec::new();
    let mut next = event.clone();
    for _ in 0..100 {
        let started = Instant::now();
        let answer = invoke(next.clone(), ms).await;
        let elapsed = started.elapsed();
        // The answer is due `ms` after the start: a later one would be a Lambda timeout.
        assert!(
            elapsed.as_millis() < u128::from(ms),
            "answered after {elapsed:?}, past its {ms} ms deadline: {answer}"
        );
        let cursor = answer.get("cursor").cloned();
        answers.push(answer);
        match cursor {
            Some(cursor) => next["cursor"] = cursor,
            None => return answers,
        }
    }
    panic!("the fan-out never ended: {answers:?}");
}

/// Presence of a conversation of 5,000 connections of 50 users (docs/design.md §12), half of them
/// older than the stale window and so asked about (`GET @connections`) through the stand-in, which
/// no longer has every tenth: answered in pages, each before its deadline, together listing the
/// connections API Gateway still has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_of_5000_connections_is_answered_in_pages_inside_the_deadline() {
    let ids: Vec<String> = (0..5000).map(|i| format!("p{i:05}=")).collect();
    let known: Vec<String> = ids.iter().enumerate().filter(|(i, _)| i % 10 != 0).map(|(_, id)| id.clone()).collect();
    let standin = StandIn::start(known).await;
    let memory = MemoryStore::new();
    let now = FixedClock::default().0;
    for (i, id) in ids.iter().enumerate() {
        let mut record = connection_record(id, "conv-many", Some(&format!("user-{:02}", i % 50)), None, None);
        record.connected_at = now - chrono::Duration::minutes(if i % 2 == 0 { 30 } else { 1 });
        memory.put_connection(&record, &no_hurry()).await.expect("put");
    }
    let responder = responder_on(&config_of(&[], Some("in-memory")), Some(memory.clone()), &Captured::default());
    let event = json!({"action": "presence", "conversationId": "conv-many", "wsEndpoint": standin.endpoint("prod")});

    let answers =
        fan_out_until_done_with(async |event, ms| invoke_on(&responder, event, ms).await, &event, 2_000).await;

    assert!(answers.len() >= 5, "pages of at most 1,000 connections: {}", answers.len());
    let mut per_user: HashMap<String, u64> = HashMap::new();
    for answer in &answers {
        assert_eq!(answer["statusCode"], 200, "{answer}");
        for user in answer["users"].as_array().unwrap() {
            *per_user.entry(user["userId"].as_str().unwrap().to_owned()).or_default() +=
                user["connections"].as_u64().unwrap();
        }
    }
    // user-00, -10, … -40 hold only every tenth connection: all gone.
    assert_eq!(per_user.len(), 45, "{per_user:?}");
    assert!(!per_user.contains_key("user-10"));
    assert_eq!(per_user.values().sum::<u64>(), 4500, "every tenth connection is gone (and was old: asked about)");
    assert_eq!(standin.checked().len(), 2500, "the old half was asked about, the young half not");
    let gone = memory.connection(&ConnectionId::parse("p00010=").unwrap(), &no_hurry()).await.unwrap().unwrap();
    assert_eq!(gone.status, ConnectionStatus::Gone, "what API Gateway no longer has is marked GONE");
}

#[tokio::test]
async fn a_slow_fan_out_stops_before_its_deadline_and_its_cursor_reaches_everyone_exactly_once() {
    // GIVEN 40 connections in a conversation, a Management API that takes 200 ms per post, 4 posts
    // in flight and 1.2 s per invocation (the whole fan-out needs 2 s of posting)
    let ids: Vec<String> = (0..40).map(|i| format!("slow-{i:02}=")).collect();
    let standin = StandIn::start_slow(ids.clone(), std::time::Duration::from_millis(200)).await;
    let h = Harness::new(&[("FANOUT_CONCURRENCY", "4")], true).await;
    for id in &ids {
        h.connect(id, "conv-slow", None).await;
    }

    // WHEN the caller continues with each cursor until an answer has none
    let event = fan_out_event(&standin.endpoint("prod"), ("conversationId", "conv-slow"));
    let answers = fan_out_until_done(&h, &event, 1200).await;

    // THEN each answer came in time (checked above), the first one stopped part-way with a cursor,
    // and together they posted to every connection exactly once
    assert!(answers.len() >= 2, "one invocation cannot post 40 × 200 ms / 4 in 1.2 s: {answers:?}");
    assert!(answers[0]["posted"].as_u64().unwrap() < 40 && answers[0]["cursor"].is_string(), "{}", answers[0]);
    let sum = |field: &str| answers.iter().map(|a| a[field].as_u64().unwrap()).sum::<u64>();
    // Every connection was attempted once; on a loaded machine a post can still be cut at the
    // margin, and such a post counts `failed` (its outcome is unknown), never `posted`.
    assert_eq!((sum("targets"), sum("gone"), sum("posted") + sum("failed")), (40, 0, 40), "{answers:?}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await; // a cut post may still arrive
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for post in standin.posts() {
        *per_id.entry(post.connection_id).or_default() += 1;
    }
    assert!(per_id.len() as u64 >= sum("posted"), "a post counted as delivered never arrived: {per_id:?}");
    assert!(per_id.values().all(|&n| n == 1), "a connection was posted to twice: {per_id:?}");
}

#[tokio::test]
async fn a_fan_out_reads_the_index_a_page_at_a_time_while_posting() {
    // GIVEN 450 connections (more than two pages) behind a proxy that counts DynamoDB calls
    let ids: Vec<String> = (0..450).map(|i| format!("paged-{i:03}=")).collect();
    let standin = StandIn::start(ids.clone()).await;
    let proxy = FaultProxy::start(&dynamodb_endpoint(), |_, _| Fault::Pass).await;
    let h = Harness::via(&proxy.endpoint(), &[("FANOUT_PAGE_SIZE", "200")], true).await;
    for id in &ids {
        h.connect(id, "conv-paged", None).await;
    }

    let answer = h.invoke(fan_out_event(&standin.endpoint("prod"), ("conversationId", "conv-paged"))).await;

    // THEN everyone got it, through several bounded index pages (the audience is never held whole)
    assert_eq!(
        counts(&answer),
        json!({"statusCode": 200, "targets": 450, "posted": 450, "gone": 0, "failed": 0, "throttled": 0, "retried": 0})
    );
    let queries = proxy.seen().iter().filter(|seen| seen.operation == "Query").count();
    assert!(queries >= 3, "450 entries in pages of 200 need at least 3 queries, saw {queries}");
}

#[tokio::test]
async fn an_index_query_slower_than_the_deadline_is_answered_in_time_and_the_cursor_retries_it() {
    // GIVEN a DynamoDB whose first queries stall for 5 s
    let standin = StandIn::start(["q1=", "q2="]).await;
    let stalls = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let stalling = Arc::clone(&stalls);
    let proxy = FaultProxy::start(&dynamodb_endpoint(), move |_, operation| {
        if operation == "Query" && stalling.load(std::sync::atomic::Ordering::Relaxed) {
            Fault::Stall(std::time::Duration::from_secs(5))
        } else {
            Fault::Pass
        }
    })
    .await;
    let h = Harness::via(&proxy.endpoint(), &[], true).await;
    h.connect("q1=", "conv-q", None).await;
    h.connect("q2=", "conv-q", None).await;
    let event = fan_out_event(&standin.endpoint("prod"), ("conversationId", "conv-q"));

    // WHEN a fan-out with 1 s left meets it
    let started = Instant::now();
    let answer = h.invoke_within(event.clone(), 1000).await;

    // THEN it answers in time: a 500 the caller can retry, with the cursor to retry with
    assert!(started.elapsed().as_millis() < 1000, "answered after {:?}", started.elapsed());
    assert_eq!(answer["statusCode"], 500, "{answer}");
    assert_eq!(answer["error"], "the fan-out could not read the connections in time; retry with the cursor");
    assert_eq!((answer["targets"].as_u64(), answer["posted"].as_u64()), (Some(0), Some(0)));
    // AND once DynamoDB answers again, the cursor finishes the fan-out
    stalls.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut retry = event;
    retry["cursor"] = answer["cursor"].clone();
    let answer = h.invoke(retry).await;
    assert_eq!(
        counts(&answer),
        json!({"statusCode": 200, "targets": 2, "posted": 2, "gone": 0, "failed": 0, "throttled": 0, "retried": 0})
    );
}

#[tokio::test]
async fn a_cursor_from_another_fan_out_or_altered_is_a_400_that_says_so() {
    // GIVEN a fan-out stopped part-way (deadline too short for its 3 slow posts)
    let standin = StandIn::start_slow(["c1=", "c2=", "c3="], std::time::Duration::from_millis(300)).await;
    let h = Harness::new(&[("FANOUT_CONCURRENCY", "1")], true).await;
    for id in ["c1=", "c2=", "c3="] {
        h.connect(id, "conv-a", Some("u-a")).await;
    }
    let event = fan_out_event(&standin.endpoint("prod"), ("conversationId", "conv-a"));
    let first = h.invoke_within(event.clone(), 700).await;
    let cursor = first["cursor"].as_str().unwrap_or_else(|| panic!("stopped with a cursor: {first}")).to_owned();
    // A post the first invocation cut at its deadline may still be reaching the stand-in.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let posted_before = standin.posts().len();

    let with_cursor = |mut event: Value, cursor: &str| {
        event["cursor"] = json!(cursor);
        event
    };
    let cases = [
        (
            with_cursor(fan_out_event(&standin.endpoint("prod"), ("conversationId", "conv-b")), &cursor),
            "another conversation",
        ),
        (with_cursor(fan_out_event(&standin.endpoint("prod"), ("userId", "u-a")), &cursor), "a user"),
        (
            {
                let mut other_message = with_cursor(event.clone(), &cursor);
                other_message["payload"] = json!({"text": "another message"});
                other_message
            },
            "another message",
        ),
    ];
    for (event, what) in cases {
        let answer = h.invoke(event).await;
        assert_eq!(answer["statusCode"], 400, "{what}: {answer}");
        assert!(answer["error"].as_str().unwrap().starts_with("the cursor belongs to another fan-out"), "{what}");
    }
    let (head, _) = cursor.rsplit_once('.').unwrap();
    let altered = h.invoke(with_cursor(event.clone(), &format!("{head}.00000000000000000000000000000000"))).await;
    assert_eq!(altered["statusCode"], 400);
    assert!(altered["error"].as_str().unwrap().starts_with("the cursor was altered"), "{altered}");
    let malformed = h.invoke(with_cursor(event.clone(), "not-a-cursor")).await;
    assert_eq!(malformed["statusCode"], 400);
    assert!(malformed["error"].as_str().unwrap().starts_with("the cursor is malformed"), "{malformed}");
    // AND nothing was posted by the refused ones
    assert_eq!(standin.posts().len(), posted_before);
}

#[tokio::test]
async fn a_faulty_management_api_never_gets_a_200_for_an_undelivered_post() {
    // GIVEN a Management API behind a proxy that fails one request in three, by a fixed schedule
    let ids: Vec<String> = (0..40).map(|i| format!("f{i:02}=")).collect();
    let standin = StandIn::start(ids.clone()).await;
    let rng = std::sync::Mutex::new(ws_shared::testing::faults::Seeded::new(7));
    let proxy =
        FaultProxy::start(&format!("http://{}", standin.addr), move |_, _| match rng.lock().unwrap().below(9) {
            0 => Fault::InternalError,
            1 => Fault::Reset,
            2 => Fault::LostResponse,
            _ => Fault::Pass,
        })
        .await;
    let h = Harness::new(&[], false).await;

    // WHEN the responder posts to each connection with 2 s left
    let mut answers = Vec::new();
    for id in &ids {
        let mut event = event_for(&format!("{}/prod", proxy.endpoint()));
        event["connectionId"] = json!(id);
        let started = Instant::now();
        let answer = h.invoke_within(event, 2000).await;
        assert!(started.elapsed().as_millis() < 2000, "{id} answered after {:?}", started.elapsed());
        answers.push((id.clone(), answer));
    }

    // THEN a 200 always means the stand-in got the message; anything else is a 500
    let delivered: std::collections::HashSet<String> = standin.posts().into_iter().map(|p| p.connection_id).collect();
    for (id, answer) in &answers {
        match answer["statusCode"].as_u64() {
            Some(200) => assert!(delivered.contains(id), "{id}: 200 for an undelivered post"),
            Some(500) => {}
            _ => panic!("{id}: {answer}"),
        }
    }
    assert!(proxy.seen().iter().any(|s| s.fault != Fault::Pass), "no fault was injected");
}

/// How many times each connection got a post (delivered, not refused).
fn deliveries(standin: &StandIn) -> HashMap<String, usize> {
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for post in standin.posts() {
        *per_id.entry(post.connection_id).or_default() += 1;
    }
    per_id
}

fn sum(answers: &[Value], field: &str) -> u64 {
    answers.iter().map(|a| a[field].as_u64().unwrap_or(0)).sum()
}

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The conversation is listed from the in-memory table adapter: this test is about pacing against
/// the quota, and moto's Query pages cost O(table) each, which with a large audience, not the quota,
/// would bound the rate (`QUOTA_TABLE=dynamodb` lists it from moto; the store contract tests hold
/// both adapters to the same behaviour, and the other fan-out tests list from moto).
/// `QUOTA_RATE`, `QUOTA_BURST` and `QUOTA_CONNECTIONS` make it the bench's measure
/// (`scripts/bench.sh fanout-quota`: 20,000 connections at 500 and 5,000 posts/s, with
/// `QUOTA_CONCURRENCY` four times what the quota can take at 30 ms per post); it prints one
/// `quota-bench` line, and with `QUOTA_TIMELINE=FILE` writes the posts taken and refused per
/// 100 ms into FILE (JSON) for the bench's chart. The rate is reported, never asserted (shared
/// machines are noisy). Two worker threads: the stand-in's answers are not queued behind the
/// responder's own work, which in a debug build on one thread is most of a core at 500 posts/s.
/// A line of this process's `/proc/self/status` (`VmRSS`, `VmHWM`: the peak), in MiB rounded up.
fn proc_status_mib(field: &str) -> u64 {
    ws_shared::process::status_mib(None, field).unwrap_or_else(|| panic!("no {field} in /proc/self/status (Linux)"))
}

/// `SEGMENTS` segments of one broadcast (default 4) run at once against one account quota
/// (`SEGMENTS_RATE` posts/s, default 1,000, burst a fifth of it; 30 ms per post), each segment
/// continued with its cursor (invocations of 3 s, `SEGMENTS_CONCURRENCY` posts in flight at most,
/// default 128): docs/design.md §13. Every connection gets the
/// message once, few requests are refused, and no segment is starved (finishes later than twice
/// the fastest: the segments' shares are even, so a pacer that let one segment take the quota
/// from the others would show here). It prints one `segments-bench` line (the rate reached, the
/// refused share, each segment's time, the process's CPU per post), and with `SEGMENTS_RESULT=FILE`
/// writes them as JSON: `scripts/bench.sh segments` reports them; the test never asserts a rate.
/// Listed from the in-memory adapter, as the quota test above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_at_once_share_one_quota_deliver_each_connection_once_and_none_is_starved() {
    let (rate, count, n) = (knob("SEGMENTS_RATE", 1000), knob("SEGMENTS_CONNECTIONS", 8000), knob("SEGMENTS", 4));
    // Ids spread over the first characters API Gateway's ids start with (the segments split on them).
    let alphabet: Vec<char> = ('0'..='9').chain('A'..='Z').chain('a'..='z').collect();
    let ids: Vec<String> = (0..usize::try_from(count).unwrap())
        .map(|i| format!("{}{}{i:05}=", alphabet[i % 62], alphabet[(i / 62) % 62]))
        .collect();
    #[allow(clippy::cast_precision_loss)]
    let quota = support::Quota::new(rate as f64, (rate / 5) as f64);
    let standin =
        StandIn::with_quota(ids.clone(), std::time::Duration::from_millis(30), quota, Vec::<String>::new()).await;
    let memory = MemoryStore::new();
    for id in &ids {
        memory.put_connection(&connection_record(id, "conv-seg", None, None, None), &no_hurry()).await.expect("put");
    }
    let concurrency = knob("SEGMENTS_CONCURRENCY", 128).to_string();
    let config = config_of(&[("FANOUT_CONCURRENCY", concurrency.as_str())], Some("in-memory"));
    let responder = responder_on(&config, Some(memory), &Captured::default());
    let mut event = fan_out_event(&standin.endpoint("prod"), ("conversationId", "conv-seg"));
    event.as_object_mut().unwrap().remove("conversationId");
    event["all"] = json!(true);
    let cpu_before = process_cpu_seconds();

    // WHEN every segment runs at the same time, each to its end
    let started = Instant::now();
    let runs = (0..n).map(|k| {
        let mut event = event.clone();
        event["segment"] = json!(k);
        event["segments"] = json!(n);
        let responder = &responder;
        async move {
            let answers =
                fan_out_until_done_with(async |event, ms| invoke_on(responder, event, ms).await, &event, 3_000).await;
            (answers, started.elapsed().as_secs_f64())
        }
    });
    let results = futures_util::future::join_all(runs).await;
    let took = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds() - cpu_before;

    // THEN each connection got it once, the segments' shares add up, few were refused, none starved
    let per_id = deliveries(&standin);
    assert_eq!(per_id.len() as u64, count, "every connection got the message");
    assert!(per_id.values().all(|&times| times == 1), "a connection got the message twice");
    let answers: Vec<Value> = results.iter().flat_map(|(answers, _)| answers.clone()).collect();
    assert_eq!((sum(&answers, "targets"), sum(&answers, "posted"), sum(&answers, "failed")), (count, count, 0));
    let refused = standin.refused().len() as u64;
    #[allow(clippy::cast_precision_loss)]
    let share = refused as f64 / (refused + count) as f64;
    assert!(share <= 0.15, "{refused} of {} requests refused ({share:.2})", refused + count);
    let times: Vec<f64> = results.iter().map(|(_, t)| *t).collect();
    let (fastest, slowest) = times.iter().fold((f64::MAX, 0f64), |(lo, hi), t| (lo.min(*t), hi.max(*t)));
    assert!(slowest <= 2.0 * fastest, "a segment was starved: finished at {times:?} s");
    #[allow(clippy::cast_precision_loss)]
    let ratio = count as f64 / took / rate as f64;
    #[allow(clippy::cast_precision_loss)]
    let cpu_us_per_post = cpu * 1e6 / count as f64;
    println!(
        "segments-bench segments={n} rate={rate} connections={count} seconds={took:.2} ratio={ratio:.2} \
         refused={refused} share={share:.3} slowest_over_fastest={:.2} cpu_us_per_post={cpu_us_per_post:.1} \
         times={times:.2?}",
        slowest / fastest
    );
    if let Ok(path) = std::env::var("SEGMENTS_RESULT") {
        let result = json!({
            "segments": n, "rate": rate, "connections": count, "seconds": took, "ratio": ratio,
            "refused": refused, "share": share, "segment_seconds": times, "cpu_us_per_post": cpu_us_per_post,
            "invocations": answers.len(),
        });
        std::fs::write(&path, result.to_string()).unwrap_or_else(|e| panic!("SEGMENTS_RESULT {path}: {e}"));
    }
}

/// The CPU time (user + system, every thread) this process has used, from `/proc/self/stat` (in
/// clock ticks of 1/100 s, Linux's `USER_HZ`).
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat (Linux)");
    // The fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')').expect("a stat line").1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// A segment's answer and its EMF line say which share it took (docs/design.md §13); a whole
/// fan-out's say nothing of segments.
#[tokio::test]
async fn a_segments_answer_and_its_metrics_line_name_the_segment() {
    let standin = StandIn::start(["s1=", "s2="]).await;
    let memory = MemoryStore::new();
    for id in ["s1=", "s2="] {
        memory.put_connection(&connection_record(id, "conv-s", None, None, None), &no_hurry()).await.expect("put");
    }
    let metrics = Captured::default();
    let responder = responder_on(&config_of(&[], Some("in-memory")), Some(memory), &metrics);
    let mut event = fan_out_event(&standin.endpoint("prod"), ("conversationId", "conv-s"));
    event["messageId"] = json!("m-1");

    let whole = invoke_on(&responder, event.clone(), 5_000).await;
    event["segment"] = json!(1);
    event["segments"] = json!(2);
    let segment = invoke_on(&responder, event, 5_000).await;

    assert!(whole.get("segment").is_none() && whole.get("segments").is_none(), "{whole}");
    assert_eq!((segment["segment"].as_u64(), segment["segments"].as_u64()), (Some(1), Some(2)), "{segment}");
    let lines = metrics.json();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].get("segment").is_none(), "{}", lines[0]);
    assert_eq!(lines[1]["segment"], "1/2", "{}", lines[1]);
    // The segment is a property of the line, not a dimension (no metric costs more).
    assert_eq!(lines[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Service"]]));
}

/// Where the quota test lists its conversation from (`QUOTA_TABLE`).
enum QuotaTable {
    Moto(Harness),
    Memory(Responder<ManagementApi, MemoryStore>),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_offered_far_more_concurrency_than_the_quota_delivers_every_message_once_with_few_refusals() {
    // GIVEN 2,000 connections and a Management API that, like an account, takes 500 posts/s
    // (burst 100) and 30 ms per post, and a fan-out allowed 128 posts in flight (4 × the quota)
    let (rate, burst, count) = (knob("QUOTA_RATE", 500), knob("QUOTA_BURST", 100), knob("QUOTA_CONNECTIONS", 2000));
    let ids: Vec<String> = (0..count).map(|i| format!("q{i:05}=")).collect();
    #[allow(clippy::cast_precision_loss)]
    let quota = support::Quota::new(rate as f64, burst as f64);
    let standin =
        StandIn::with_quota(ids.clone(), std::time::Duration::from_millis(30), quota, Vec::<String>::new()).await;
    let event = fan_out_event(&standin.endpoint("prod"), ("conversationId", "conv-quota"));
    // (`QUOTA_CONCURRENCY` for the bench: at 30 ms per post, 5,000 posts/s needs 150 in flight)
    let concurrency = knob("QUOTA_CONCURRENCY", 128).to_string();
    let env = [("FANOUT_CONCURRENCY", concurrency.as_str())];
    let table = match std::env::var("QUOTA_TABLE").as_deref() {
        Err(_) | Ok("memory") => {
            let memory = MemoryStore::new();
            for id in &ids {
                let record = connection_record(id, "conv-quota", None, None, None);
                memory.put_connection(&record, &no_hurry()).await.expect("put");
            }
            QuotaTable::Memory(responder_on(&config_of(&env, Some("in-memory")), Some(memory), &Captured::default()))
        }
        Ok("dynamodb") => {
            let h = Harness::new(&env, true).await;
            for id in &ids {
                h.connect(id, "conv-quota", None).await;
            }
            QuotaTable::Moto(h)
        }
        Ok(other) => panic!("QUOTA_TABLE={other}: use memory (the default) or dynamodb (moto)"),
    };

    // WHEN the fan-out runs to its end
    let rss_before = proc_status_mib("VmRSS");
    let started = Instant::now();
    let answers = match &table {
        QuotaTable::Moto(h) => fan_out_until_done(h, &event, 30_000).await,
        QuotaTable::Memory(responder) => {
            fan_out_until_done_with(async |event, ms| invoke_on(responder, event, ms).await, &event, 30_000).await
        }
    };
    let took = started.elapsed().as_secs_f64();

    // THEN every connection got the message exactly once, nothing failed, and few were refused
    let per_id = deliveries(&standin);
    assert_eq!(per_id.len() as u64, count, "{answers:?}");
    assert!(per_id.values().all(|&n| n == 1), "a connection got the message twice");
    assert_eq!((sum(&answers, "posted"), sum(&answers, "failed")), (count, 0), "{answers:?}");
    let refused = standin.refused().len() as u64;
    #[allow(clippy::cast_precision_loss)]
    let share = refused as f64 / (refused + count) as f64;
    assert_eq!(sum(&answers, "throttled"), refused, "the answer counts every 429: {answers:?}");
    assert!(share <= 0.15, "{refused} of {} requests refused ({share:.2})", refused + count);
    #[allow(clippy::cast_precision_loss)]
    let (posts_per_second, quota_rate) = (count as f64 / took, rate as f64);
    println!(
        "quota-bench rate={rate} connections={count} seconds={took:.2} posts_per_second={posts_per_second:.0} \
         ratio={:.2} refused={refused} share={share:.3} invocations={} rss_before_mib={rss_before} peak_rss_mib={}",
        posts_per_second / quota_rate,
        answers.len(),
        proc_status_mib("VmHWM"),
    );
    if let Ok(path) = std::env::var("QUOTA_TIMELINE") {
        let bins = standin.timeline(started, std::time::Duration::from_millis(100));
        let timeline = json!({ "rate": rate, "burst": burst, "connections": count, "bin_ms": 100, "bins": bins });
        std::fs::write(&path, timeline.to_string()).unwrap_or_else(|e| panic!("QUOTA_TIMELINE {path}: {e}"));
    }
}

#[tokio::test]
async fn a_connection_that_is_always_throttled_is_given_up_after_a_few_tries_while_the_others_are_delivered() {
    // GIVEN 200 connections with room in the quota, and one client whose buffer is always full
    let mut ids: Vec<String> = (0..200).map(|i| format!("ok{i:03}=")).collect();
    ids.push("full=".to_owned());
    let standin =
        StandIn::with_quota(ids.clone(), std::time::Duration::ZERO, support::Quota::new(100_000.0, 1000.0), ["full="])
            .await;
    let h = Harness::new(&[], true).await;
    for id in &ids {
        h.connect(id, "conv-full", None).await;
    }

    let answers =
        fan_out_until_done(&h, &fan_out_event(&standin.endpoint("prod"), ("conversationId", "conv-full")), 30_000)
            .await;

    // THEN the full one was tried a bounded number of times and reported failed; the others got it
    let tries = standin.refused().iter().filter(|id| *id == "full=").count();
    assert!((1..=usize::from(ws_responder::pacing::MAX_TRIES)).contains(&tries), "tried {tries} times");
    assert_eq!(standin.refused().len(), tries, "nobody else was refused");
    assert_eq!((sum(&answers, "posted"), sum(&answers, "failed")), (200, 1), "{answers:?}");
    assert!(deliveries(&standin).values().all(|&n| n == 1));
}

#[tokio::test]
async fn throttled_posts_cut_short_by_the_deadline_are_delivered_by_the_continuation_once_each() {
    // GIVEN 80 connections, a quota of 40 posts/s (burst 5), and invocations of 700 ms
    let ids: Vec<String> = (0..80).map(|i| format!("t{i:02}=")).collect();
    let standin = StandIn::with_quota(
        ids.clone(),
        std::time::Duration::from_millis(10),
        support::Quota::new(40.0, 5.0),
        Vec::<String>::new(),
    )
    .await;
    let h = Harness::new(&[("FANOUT_CONCURRENCY", "64")], true).await;
    for id in &ids {
        h.connect(id, "conv-cut", None).await;
    }
    let event = fan_out_event(&standin.endpoint("prod"), ("conversationId", "conv-cut"));

    let answers = fan_out_until_done(&h, &event, 700).await;

    // THEN some invocation stopped owing throttled connections (its cursor lists them), and
    // together the invocations delivered to each connection exactly once
    let audience = ws_responder::cursor::Target::Audience(
        ws_shared::store::Audience::Conversation(ConversationId::parse("conv-cut").unwrap()),
        ws_shared::segment::Segment::WHOLE,
    );
    let owed_somewhere = answers.iter().filter_map(|a| a["cursor"].as_str()).any(|cursor| {
        let digest = cursor_digest(&event);
        ws_responder::cursor::decode(cursor, &audience, &digest).is_ok_and(|resume| !resume.owed.is_empty())
    });
    assert!(owed_somewhere, "no cursor carried a throttled connection: {answers:?}");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let per_id = deliveries(&standin);
    assert!(per_id.values().all(|&n| n == 1), "a connection got the message twice: {per_id:?}");
    assert_eq!(sum(&answers, "posted") + sum(&answers, "failed"), 80, "{answers:?}");
    assert!(per_id.len() as u64 >= sum(&answers, "posted"));
    assert_eq!(sum(&answers, "targets"), 80, "each connection was taken from the index once");
}

/// The digest a fan-out of `event` binds its cursor to (the envelope's bytes).
fn cursor_digest(event: &Value) -> String {
    let request = ws_responder::event::Request::parse(event.clone()).unwrap();
    ws_responder::cursor::message_digest(&serde_json::to_vec(&request.envelope).unwrap())
}

fn close_event(endpoint: &str, target: Value) -> Value {
    let mut event = target;
    event["action"] = json!("disconnect");
    event["wsEndpoint"] = json!(endpoint);
    event
}

#[tokio::test]
async fn one_call_closes_every_live_connection_of_a_banned_user_and_nothing_else() {
    // GIVEN a user with two live connections and one already disconnected, and another user
    let standin = StandIn::start(["b1=", "b2=", "b3=", "o1="]).await;
    let h = Harness::new(&[], true).await;
    for id in ["b1=", "b2=", "b3="] {
        h.connect(id, "conv-ban", Some("u-ban")).await;
    }
    h.connect("o1=", "conv-ban", Some("u-other")).await;
    let at = FixedClock::default().0;
    let gone_already = Disconnection {
        connection_id: ConnectionId::parse("b3=").unwrap(),
        at,
        close_code: Some(1001),
        close_reason: None,
        expires_at: at,
    };
    h.store().mark_disconnected(&gone_already, &no_hurry()).await.unwrap();

    // WHEN the operator bans the user
    let answer = h.invoke(close_event(&standin.endpoint("prod"), json!({"userId": "u-ban", "reason": "banned"}))).await;

    // THEN exactly the two live ones were closed, nothing was posted, and each record says why
    assert_eq!(
        counts(&answer),
        json!({"statusCode": 200, "targets": 2, "closed": 2, "gone": 0, "failed": 0, "throttled": 0, "retried": 0})
    );
    let mut closed = standin.closed();
    closed.sort();
    assert_eq!(closed, ["b1=", "b2="]);
    assert!(standin.posts().is_empty(), "a close posts nothing");
    for id in ["b1=", "b2="] {
        assert_eq!(h.attribute(id, "closeReason").await.as_deref(), Some("banned"), "{id}");
    }
    assert_eq!(h.status("o1=").await, "CONNECTED");
    assert_eq!(h.attribute("o1=", "closeReason").await, None);
}

#[tokio::test]
async fn the_expiry_sweep_closes_only_connections_whose_token_has_expired() {
    // GIVEN connections with an expired token, a valid one, and none (no authorizer)
    let now = FixedClock::default().0.timestamp();
    let standin = StandIn::start(["e-old=", "e-new=", "e-none="]).await;
    let h = Harness::new(&[], true).await;
    h.connect_expiring("e-old=", "conv-e", Some("u-e"), Some(now - 5)).await;
    h.connect_expiring("e-new=", "conv-e", Some("u-e"), Some(now + 600)).await;
    h.connect_expiring("e-none=", "conv-e", None, None).await;

    let answer = h.invoke(close_event(&standin.endpoint("prod"), json!({"expired": true}))).await;

    assert_eq!(
        counts(&answer),
        json!({"statusCode": 200, "targets": 1, "closed": 1, "gone": 0, "failed": 0, "throttled": 0, "retried": 0})
    );
    assert_eq!(standin.closed(), ["e-old="]);
    assert_eq!(h.attribute("e-old=", "closeReason").await.as_deref(), Some("expired"));
    // A sweep a minute later finds nothing new while the $disconnect has not come yet? The first
    // is still CONNECTED (API Gateway's $disconnect marks it): closing it again gets 410 → GONE.
    let again = h.invoke(close_event(&standin.endpoint("prod"), json!({"expired": true}))).await;
    assert_eq!((again["closed"].as_u64(), again["gone"].as_u64()), (Some(0), Some(1)), "{again}");
    assert_eq!(h.status("e-old=").await, "GONE");
    let third = h.invoke(close_event(&standin.endpoint("prod"), json!({"expired": true}))).await;
    assert_eq!(third["targets"], 0, "a GONE record has left the expiry index: {third}");
}

#[tokio::test]
async fn closing_many_connections_stops_before_its_deadline_and_its_cursor_closes_each_once() {
    let ids: Vec<String> = (0..40).map(|i| format!("many-{i:02}=")).collect();
    let standin = StandIn::start_slow(ids.clone(), std::time::Duration::from_millis(200)).await;
    let h = Harness::new(&[("FANOUT_CONCURRENCY", "4")], true).await;
    for id in &ids {
        h.connect(id, "conv-many", Some("u-many")).await;
    }

    let event = close_event(&standin.endpoint("prod"), json!({"userId": "u-many", "reason": "logout"}));
    let answers = fan_out_until_done(&h, &event, 1200).await;

    assert!(answers.len() >= 2, "40 closes × 200 ms / 4 do not fit in 1.2 s: {answers:?}");
    assert_eq!(sum(&answers, "targets"), 40);
    assert_eq!(sum(&answers, "closed") + sum(&answers, "failed"), 40, "{answers:?}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let closed = standin.closed();
    let unique: std::collections::HashSet<&String> = closed.iter().collect();
    assert_eq!(unique.len(), closed.len(), "a connection was closed twice");
    assert!(closed.len() as u64 >= sum(&answers, "closed"));
}

#[tokio::test]
async fn a_close_of_a_connection_already_gone_marks_it_gone() {
    let standin = StandIn::start(Vec::<String>::new()).await;
    let h = Harness::new(&[], true).await;
    h.connect("left=", "conv-left", Some("u-left")).await;
    let answer = h.invoke(close_event(&standin.endpoint("prod"), json!({"connectionId": "left="}))).await;
    assert_eq!(
        counts(&answer),
        json!({"statusCode": 200, "targets": 1, "closed": 0, "gone": 1, "failed": 0, "throttled": 0, "retried": 0})
    );
    assert_eq!(h.status("left=").await, "GONE");
}

#[tokio::test]
async fn records_of_two_regions_are_each_posted_once_through_their_own_api_signed_for_its_region() {
    // GIVEN one conversation with connections in us-east-1, in eu-west-1, and one that came
    // through a custom domain (its record still names its API), and a Management API stand-in
    // reached through WS_ENDPOINT_TEMPLATE; neither wsEndpoint nor WS_ENDPOINT is given
    let standin = StandIn::start(["use1=", "euw1=", "custom="]).await;
    let template = format!("http://{}/{{region}}/{{apiId}}/{{stage}}", standin.addr);
    let h = Harness::new(&[("WS_ENDPOINT_TEMPLATE", template.as_str())], true).await;
    h.connect_routed("use1=", "conv-global", None, None, Some(("apiA", "prod", "us-east-1"))).await;
    h.connect_routed("euw1=", "conv-global", None, None, Some(("apiB", "prod", "eu-west-1"))).await;
    h.connect_routed("custom=", "conv-global", None, None, Some(("apiC", "live", "us-east-1"))).await;
    let mut event = sample_event();
    let object = event.as_object_mut().unwrap();
    object.remove("connectionId");
    object.remove("wsEndpoint");
    object.insert("conversationId".into(), json!("conv-global"));

    let answer = h.invoke(event).await;

    // THEN each was posted exactly once, through its own API's path, signed for its region
    assert_eq!(answer["posted"], 3, "{answer}");
    let mut posts: Vec<(String, String, Option<String>)> =
        standin.posts().iter().map(|p| (p.connection_id.clone(), p.stage.clone(), signed_region(p))).collect();
    posts.sort();
    assert_eq!(
        posts,
        [
            ("custom=".into(), "us-east-1/apiC/live".into(), Some("us-east-1".into())),
            ("euw1=".into(), "eu-west-1/apiB/prod".into(), Some("eu-west-1".into())),
            ("use1=".into(), "us-east-1/apiA/prod".into(), Some("us-east-1".into())),
        ]
    );
}

#[tokio::test]
async fn a_record_without_its_api_is_still_reached_by_the_seeds_order() {
    // GIVEN a record written before ConnectFunction kept the API, and one that names its API
    let standin = StandIn::start(["old=", "new="]).await;
    let template = format!("http://{}/{{region}}/{{apiId}}/{{stage}}", standin.addr);
    let h = Harness::new(&[("WS_ENDPOINT_TEMPLATE", template.as_str())], true).await;
    h.connect("old=", "conv-mixed", None).await;
    h.connect_routed("new=", "conv-mixed", None, None, Some(("apiN", "prod", "us-east-1"))).await;

    let answer = h.invoke(fan_out_event(&standin.endpoint("seed"), ("conversationId", "conv-mixed"))).await;

    assert_eq!(answer["posted"], 2, "{answer}");
    let mut paths: Vec<(String, String)> = standin.posts().into_iter().map(|p| (p.connection_id, p.stage)).collect();
    paths.sort();
    assert_eq!(paths, [("new=".into(), "us-east-1/apiN/prod".into()), ("old=".into(), "seed".into())]);

    // AND without any endpoint, the old record fails (said in the log) while the routed one is posted
    let mut no_endpoint = fan_out_event(&standin.endpoint("seed"), ("conversationId", "conv-mixed"));
    no_endpoint.as_object_mut().unwrap().remove("wsEndpoint");
    let answer = h.invoke(no_endpoint).await;
    assert_eq!((answer["posted"].as_u64(), answer["failed"].as_u64()), (Some(1), Some(1)), "{answer}");
}

// --- Streams (ws_shared::stream, src/publish.rs) ---

#[tokio::test]
async fn a_post_to_an_audience_carries_its_stream_offset_and_epoch_and_a_post_to_one_connection_none() {
    // GIVEN two connections of a conversation
    let standin = StandIn::start(["s1=", "s2="]).await;
    let h = Harness::new(&[("AWS_REGION", "eu-west-1")], true).await;
    h.connect("s1=", "conv-s", None).await;
    h.connect("s2=", "conv-s", None).await;

    // WHEN two posts go to the conversation and one to a single connection
    let first = h.invoke(fan_out_event(&standin.endpoint("prod"), ("conversationId", "conv-s"))).await;
    let mut second_event = fan_out_event(&standin.endpoint("prod"), ("conversationId", "conv-s"));
    second_event["sequence"] = json!(22);
    let second = h.invoke(second_event).await;
    let mut single = event_for(&standin.endpoint("prod"));
    single["connectionId"] = json!("s1=");
    let one = h.invoke(single).await;

    // THEN the fan-outs were appended at offsets 1 and 2 of the region's stream, in one epoch,
    // and each envelope says so; the single post is not streamed
    assert_eq!((first["stream"].as_str(), first["offset"].as_u64()), (Some("conv/eu-west-1/conv-s"), Some(1)));
    assert_eq!((second["offset"].as_u64(), &second["epoch"]), (Some(2), &first["epoch"]));
    assert_eq!(one, json!({"statusCode": 200}));
    let bodies: Vec<Value> = standin.posts().iter().map(|p| serde_json::from_slice(&p.body).unwrap()).collect();
    let streamed: Vec<(u64, &str)> =
        bodies.iter().filter_map(|b| Some((b["offset"].as_u64()?, b["stream"].as_str()?))).collect();
    assert_eq!(streamed.len(), 4, "{bodies:?}");
    assert!(streamed.iter().all(|(_, s)| *s == "conv/eu-west-1/conv-s"));
    assert!(bodies.iter().any(|b| b.get("stream").is_none()), "the single post carries no stream fields");
}

#[tokio::test]
async fn a_retried_progress_message_is_appended_once_and_posted_to_each_connection_once() {
    // GIVEN the sample event's progress message (correlationId + sequence) fanned out to a conversation
    let standin = StandIn::start(["r1=", "r2="]).await;
    let h = Harness::new(&[], true).await;
    h.connect("r1=", "conv-r", None).await;
    h.connect("r2=", "conv-r", None).await;
    let mut event = fan_out_event(&standin.endpoint("prod"), ("conversationId", "conv-r"));
    event["correlationId"] = json!("run-7");

    // WHEN Step Functions retries the task (the same event again), and then sends the next sequence
    let first = h.invoke(event.clone()).await;
    let retried = h.invoke(event.clone()).await;
    event["sequence"] = json!(22);
    let next = h.invoke(event).await;

    // THEN the retry got the first offset back, appended nothing and posted nothing again
    assert_eq!((first["offset"].as_u64(), first.get("duplicate")), (Some(1), None));
    assert_eq!(
        (retried["offset"].as_u64(), &retried["duplicate"], retried["posted"].as_u64()),
        (Some(1), &json!(true), Some(0))
    );
    assert_eq!(next["offset"].as_u64(), Some(2), "a new sequence is a new message");
    let per_id = deliveries(&standin);
    assert_eq!(per_id, HashMap::from([("r1=".to_owned(), 2), ("r2=".to_owned(), 2)]), "offsets 1 and 2, once each");
}

#[tokio::test]
async fn a_publish_cut_by_its_deadline_and_retried_whole_posts_to_no_connection_twice() {
    // GIVEN 24 connections, a Management API that takes 150 ms per post, 2 in flight, 0.9 s per
    // invocation: one invocation reaches a few, then stops with a cursor
    let ids: Vec<String> = (0..24).map(|i| format!("w{i:02}=")).collect();
    let standin = StandIn::start_slow(ids.clone(), std::time::Duration::from_millis(150)).await;
    let h = Harness::new(&[("FANOUT_CONCURRENCY", "2"), ("FANOUT_PAGE_SIZE", "5")], true).await;
    for id in &ids {
        h.connect(id, "conv-w", None).await;
    }
    let mut event = fan_out_event(&standin.endpoint("prod"), ("conversationId", "conv-w"));
    event["messageId"] = json!("notice-1");

    // WHEN the caller never sees the cursors (its task failed) and retries the whole event until an
    // answer has no cursor
    let mut answers = Vec::new();
    for _ in 0..40 {
        let answer = h.invoke_within(event.clone(), 900).await;
        let done = answer.get("cursor").is_none();
        answers.push(answer);
        if done {
            break;
        }
    }

    // THEN every retry was the same message at the same offset, and no connection got it twice;
    // the connections an interrupted run claimed and did not reach are left to resume
    assert!(answers.len() >= 2, "{answers:?}");
    assert!(answers.iter().all(|a| a["offset"] == 1), "{answers:?}");
    assert!(answers[1..].iter().all(|a| a["duplicate"] == true), "{answers:?}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let per_id = deliveries(&standin);
    assert!(per_id.values().all(|&n| n == 1), "a connection got the message twice: {per_id:?}");
    assert!(per_id.len() as u64 >= sum(&answers, "posted"), "{answers:?}");
}

#[tokio::test]
async fn an_append_whose_answer_was_lost_and_that_was_sent_again_is_one_entry() {
    // GIVEN DynamoDB whose first TransactWriteItems lands but whose answer is lost (the SDK sends
    // it again), and a post with no messageId (its key is generated for the publish)
    let standin = StandIn::start(["l1="]).await;
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let once = Arc::clone(&lost);
    let proxy = FaultProxy::start(&dynamodb_endpoint(), move |_, operation| {
        if operation == "TransactWriteItems" && once.swap(false, std::sync::atomic::Ordering::Relaxed) {
            Fault::LostResponse
        } else {
            Fault::Pass
        }
    })
    .await;
    let h = Harness::via(&proxy.endpoint(), &[], true).await;
    h.connect("l1=", "conv-l", None).await;
    let mut event = fan_out_event(&standin.endpoint("prod"), ("conversationId", "conv-l"));
    event.as_object_mut().unwrap().remove("sequence");

    // WHEN it is published once
    let answer = h.invoke(event).await;

    // THEN it is at offset 1, the stream holds one entry, and the client got it once
    assert!(!lost.load(std::sync::atomic::Ordering::Relaxed), "the fault was injected");
    assert_eq!((answer["statusCode"].as_u64(), answer["offset"].as_u64()), (Some(200), Some(1)), "{answer}");
    let entries: Vec<_> = ws_shared::testing::scan_all(&h.client, &h.table)
        .await
        .into_iter()
        .filter(|item| item.get("sk").and_then(|v| v.as_s().ok()).is_some_and(|sk| sk.starts_with("E#")))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(deliveries(&standin), HashMap::from([("l1=".to_owned(), 1)]));
}

#[tokio::test]
async fn a_streamed_message_too_big_for_its_resume_answer_is_refused_before_it_is_appended() {
    let h = Harness::new(&[], true).await;
    let mut event =
        fan_out_event("https://abc.execute-api.us-east-1.amazonaws.com/prod", ("conversationId", "conv-big"));
    event["payload"] = json!("x".repeat(127 * 1024));
    let answer = h.invoke(event.clone()).await;
    assert_eq!(answer["statusCode"], 413, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("a streamed message may have at most 130048"), "{answer}");
    assert!(ws_shared::testing::scan_all(&h.client, &h.table).await.is_empty(), "nothing was appended");
    // The same payload to one connection fits API Gateway's own limit.
    let mut single = event;
    single["connectionId"] = json!("big=");
    let standin = StandIn::start(["big="]).await;
    single["wsEndpoint"] = json!(standin.endpoint("prod"));
    assert_eq!(h.invoke(single).await["statusCode"], 200);
}
