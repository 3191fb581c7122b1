//! `$disconnect` flows against a real DynamoDB API (moto's server; see `scripts/test.sh`).

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Duration;
use serde_json::{Value, json};
use ws_connect::Connect;
use ws_disconnect::{Config, Disconnect};
use ws_shared::dynamo::DynamoStore;
use ws_shared::record::keys;
use ws_shared::testing::{Captured, FixedClock, capture_logs, deadline_in, fresh_table, item_json, raw_item, scan_all};

const CONNECTION_ID: &str = "TWegAcC4EowCHnA=";

fn disconnect_event() -> Value {
    serde_json::from_str(include_str!("../../../events/disconnect.json")).expect("events/disconnect.json is JSON")
}

fn connect_event() -> Value {
    serde_json::from_str(include_str!("../../../events/connect.json")).expect("events/connect.json is JSON")
}

fn env(table: &str) -> impl Fn(&str) -> Option<String> {
    let vars = HashMap::from([("TABLE_CONNECTIONS", table.to_owned())]);
    move |name: &str| vars.get(name).cloned()
}

struct Harness {
    client: Client,
    table: String,
    metrics: Captured,
}

impl Harness {
    async fn new() -> Self {
        let (client, table) = fresh_table("disconnect").await;
        Self { client, table, metrics: Captured::default() }
    }

    /// A disconnect handler whose clock reads `seconds_later` after the fixed test time.
    fn handler(&self, seconds_later: i64) -> Disconnect<DynamoStore> {
        let config = Config::from_env(&env(&self.table)).expect("valid config");
        let clock = FixedClock(FixedClock::default().0 + Duration::seconds(seconds_later));
        Disconnect::new(DynamoStore::new(&self.client, &self.table), &config, Arc::new(self.metrics.clone()))
            .with_clock(Arc::new(clock))
    }

    async fn disconnect(&self, event: Value) -> Value {
        serde_json::to_value(self.handler(0).handle(event, "req-d", deadline_in(10_000)).await).expect("serializable")
    }

    async fn connect(&self) -> Value {
        let config = ws_connect::Config::from_env(&env(&self.table)).expect("valid config");
        let handler = Connect::new(DynamoStore::new(&self.client, &self.table), &config, Arc::new(Captured::default()))
            .with_clock(Arc::new(FixedClock::default()));
        serde_json::to_value(handler.handle(connect_event(), "req-c", deadline_in(10_000)).await).expect("serializable")
    }

    async fn item(&self) -> HashMap<String, AttributeValue> {
        raw_item(&self.client, &self.table, CONNECTION_ID).await.expect("the record exists")
    }

    fn counts(&self, metric: &str) -> Vec<u64> {
        self.metrics.json().iter().map(|line| line[metric].as_u64().unwrap()).collect()
    }
}

fn s(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item[name].as_s().unwrap().clone()
}

#[tokio::test]
async fn a_disconnect_marks_the_record_disconnected_with_the_close_code_and_reason() {
    let h = Harness::new().await;
    h.connect().await;

    let response = h.disconnect(disconnect_event()).await;

    assert_eq!(response, json!({"statusCode": 200}));
    insta::assert_json_snapshot!("item", item_json(&h.item().await));
    assert_eq!(h.counts("Disconnected"), [1]);
}

#[tokio::test]
async fn the_first_disconnect_wins() {
    let h = Harness::new().await;
    h.connect().await;
    h.handler(0).handle(disconnect_event(), "first", deadline_in(10_000)).await;
    let first = h.item().await;

    // WHEN the same disconnect is delivered again a minute later, with another code
    let mut replay = disconnect_event();
    replay["requestContext"]["disconnectStatusCode"] = json!(1006);
    replay["requestContext"]["disconnectReason"] = json!("replayed");
    let response = serde_json::to_value(h.handler(60).handle(replay, "again", deadline_in(70_000)).await).unwrap();

    // THEN it succeeds, and the first time, code and reason stay
    assert_eq!(response["statusCode"], 200);
    let again = h.item().await;
    for name in ["disconnectedAt", "closeCode", "closeReason", "status"] {
        assert_eq!(again[name], first[name], "{name}");
    }
    assert_eq!(s(&again, "updatedAt"), "2024-02-09T18:24:28.941Z", "updatedAt follows the latest write");
}

#[tokio::test]
async fn a_disconnect_for_an_unknown_connection_is_200_and_counts_not_found() {
    let h = Harness::new().await;

    let response = h.disconnect(disconnect_event()).await;

    assert_eq!(response, json!({"statusCode": 200}));
    assert_eq!(h.counts("NotFound"), [1]);
    assert_eq!(h.counts("Disconnected"), [0]);
    // A repeated delivery of that disconnect is still "not found": no connect was ever recorded.
    h.disconnect(disconnect_event()).await;
    assert_eq!(h.counts("NotFound"), [1, 1]);
}

#[tokio::test]
async fn a_disconnect_that_overtakes_its_connect_leaves_the_record_disconnected() {
    let h = Harness::new().await;
    h.disconnect(disconnect_event()).await;

    // WHEN the slow $connect lands afterwards
    let response = h.connect().await;

    // THEN API Gateway gets a 200 (the socket is gone anyway) but no live record appears
    assert_eq!(response["statusCode"], 200);
    let items = scan_all(&h.client, &h.table).await;
    assert_eq!(items.len(), 1);
    assert_eq!(s(&items[0], "status"), "DISCONNECTED");
    assert_eq!(s(&items[0], "disconnectedAt"), "2024-02-09T18:23:28.941Z");
    assert!(!items[0].contains_key(keys::GSI1PK), "a tombstone is invisible to fan-out");
    insta::assert_json_snapshot!("tombstone", item_json(&items[0]));
}

#[tokio::test]
async fn a_malformed_event_is_a_400_not_a_panic() {
    let h = Harness::new().await;
    let mut no_id = disconnect_event();
    no_id["requestContext"].as_object_mut().unwrap().remove("connectionId");
    let mut bad_id = disconnect_event();
    bad_id["requestContext"]["connectionId"] = json!("CONN#x");

    for event in [json!(null), json!({"requestContext": {}}), no_id, bad_id] {
        assert_eq!(h.disconnect(event.clone()).await, json!({"statusCode": 400, "body": "Bad Request"}), "{event}");
    }
    assert!(scan_all(&h.client, &h.table).await.is_empty());
}

#[tokio::test]
async fn a_store_failure_is_a_500_that_leaks_nothing() {
    let h = Harness { table: "no-such-table".into(), ..Harness::new().await };
    let (logs, _guard) = capture_logs(ws_disconnect::SVC);

    let response = h.disconnect(disconnect_event()).await;

    assert_eq!(response, json!({"statusCode": 500, "body": "Internal Server Error"}));
    let line = logs.json().pop().unwrap();
    assert!(line["error"].as_str().unwrap().contains("DynamoDB UpdateItem on table no-such-table failed"));
    assert_eq!(h.counts("Errors"), [1]);
}

#[tokio::test]
async fn logs_and_metrics_of_a_disconnect() {
    let h = Harness::new().await;
    h.connect().await;
    let (logs, _guard) = capture_logs(ws_disconnect::SVC);
    let handler = h.handler(0);

    handler.handle(disconnect_event(), "req-1", deadline_in(10_000)).await;
    let mut unknown = disconnect_event();
    unknown["requestContext"]["connectionId"] = json!("unknown=");
    handler.handle(unknown, "req-2", deadline_in(10_000)).await;

    insta::assert_json_snapshot!("logs", logs.json());
    insta::assert_json_snapshot!("metrics", h.metrics.json());
    assert!(!logs.raw().contains("198.51.100.23") && !logs.raw().contains("Mozilla"));
}
