//! `$connect` flows against a real DynamoDB API (moto's server; see `scripts/test.sh`).

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use ws_connect::{Config, Connect};
use ws_shared::dynamo::DynamoStore;
use ws_shared::id::ConnectionId;
use ws_shared::record::{Disconnection, keys};
use ws_shared::store::ConnectionStore as _;
use ws_shared::testing::faults::{Fault, FaultProxy};
use ws_shared::testing::{
    Captured, FixedClock, SequentialIds, capture_logs, capture_logs_at, deadline_from_now, deadline_in,
    dynamodb_client, dynamodb_endpoint, fresh_table, item_json, no_hurry, raw_item, scan_all,
};

const CONNECTION_ID: &str = "TWegAcC4EowCHnA=";

fn sample_event() -> Value {
    serde_json::from_str(include_str!("../../../events/connect.json")).expect("events/connect.json is JSON")
}

const ORIGIN_SECRET: &str = "edge-secret-0123456789abcdef0123456789";

fn config_behind_the_edge(table: &str) -> Config {
    let vars =
        HashMap::from([("TABLE_CONNECTIONS", table.to_owned()), ("ORIGIN_VERIFY_SECRET", ORIGIN_SECRET.to_owned())]);
    Config::from_env(&|name: &str| vars.get(name).cloned()).expect("valid config")
}

fn config(table: &str, ttl_minutes: &str) -> Config {
    config_with(table, &[("CONNECTION_TTL_MINUTES", ttl_minutes)])
}

fn config_with(table: &str, vars: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    vars.insert("TABLE_CONNECTIONS".to_owned(), table.to_owned());
    Config::from_env(&|name: &str| vars.get(name).cloned()).expect("valid config")
}

struct Harness {
    handler: Connect<DynamoStore>,
    client: Client,
    table: String,
    metrics: Captured,
}

impl Harness {
    async fn new() -> Self {
        let (client, table) = fresh_table("connect").await;
        Self::on_table(client, table, "180")
    }

    /// A handler on a new table, configured with `vars` besides the table.
    async fn with_env(vars: &[(&str, &str)]) -> Self {
        let (client, table) = fresh_table("connect").await;
        let config = config_with(&table, vars);
        Self::on_config(client, table, &config)
    }

    /// A handler on `table` without creating it.
    fn on_table(client: Client, table: String, ttl_minutes: &str) -> Self {
        let config = config(&table, ttl_minutes);
        Self::on_config(client, table, &config)
    }

    fn on_config(client: Client, table: String, config: &Config) -> Self {
        let metrics = Captured::default();
        let handler = Connect::new(DynamoStore::new(&client, &table), config, Arc::new(metrics.clone()))
            .with_clock(Arc::new(FixedClock::default()))
            .with_ids(Arc::new(SequentialIds::default()));
        Self { handler, client, table, metrics }
    }

    async fn connect(&self, event: Value) -> Value {
        serde_json::to_value(self.handler.handle(event, "req-1", deadline_in(10_000)).await).expect("serializable")
    }

    async fn item(&self, connection_id: &str) -> Option<HashMap<String, AttributeValue>> {
        raw_item(&self.client, &self.table, connection_id).await
    }

    async fn attr(&self, connection_id: &str, name: &str) -> Option<String> {
        self.item(connection_id).await.and_then(|item| item.get(name).and_then(|v| v.as_s().ok().cloned()))
    }

    async fn query_index(&self, index: &str, pk_name: &str, pk: &str) -> Vec<String> {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", pk_name)
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .send()
            .await
            .expect("query")
            .items()
            .iter()
            .map(|item| item["connectionId"].as_s().unwrap().clone())
            .collect()
    }
}

fn with_query(mut event: Value, query: Value) -> Value {
    let multi: serde_json::Map<String, Value> =
        query.as_object().unwrap().iter().map(|(k, v)| (k.clone(), json!([v]))).collect();
    event["queryStringParameters"] = query;
    event["multiValueQueryStringParameters"] = Value::Object(multi);
    event
}

fn without_authorizer(mut event: Value) -> Value {
    event["requestContext"].as_object_mut().unwrap().remove("authorizer");
    event
}

#[tokio::test]
async fn a_connect_records_every_attribute() {
    let h = Harness::new().await;

    let response = h.connect(sample_event()).await;

    assert_eq!(response["statusCode"], 200);
    insta::assert_json_snapshot!("item", item_json(&h.item(CONNECTION_ID).await.expect("item written")));
}

#[tokio::test]
async fn the_connection_is_found_by_conversation_and_by_user() {
    let h = Harness::new().await;
    h.connect(sample_event()).await;

    assert_eq!(h.query_index(keys::GSI1, keys::GSI1PK, "CONV#conv-123").await, [CONNECTION_ID]);
    assert_eq!(h.query_index(keys::GSI2, keys::GSI2PK, "USER#u-42").await, [CONNECTION_ID]);
}

#[tokio::test]
async fn a_replayed_connect_is_200_and_leaves_one_unchanged_item() {
    let h = Harness::new().await;
    h.connect(sample_event()).await;
    let first = h.item(CONNECTION_ID).await;

    // GIVEN the same connection id, now claiming another conversation
    let replay = with_query(sample_event(), json!({"correlationId": "conv-other"}));
    let response = h.connect(replay).await;

    assert_eq!(response["statusCode"], 200);
    assert_eq!(scan_all(&h.client, &h.table).await.len(), 1);
    assert_eq!(h.item(CONNECTION_ID).await, first, "the first record is never overwritten");
    let connected: Vec<u64> = h.metrics.json().iter().map(|m| m["Connected"].as_u64().unwrap()).collect();
    assert_eq!(connected, [1, 0], "a replay is not a new connection");
}

#[tokio::test]
async fn the_conversation_comes_from_correlation_id_then_conversation_id_then_the_authorizer_then_is_generated() {
    let h = Harness::new().await;
    let cases = [
        (
            "c1=",
            json!({"correlationId": "from-correlation", "conversationId": "from-conversation"}),
            true,
            "from-correlation",
        ),
        ("c2=", json!({"conversationId": "from-conversation"}), true, "from-conversation"),
        ("c3=", json!({}), true, "from-authorizer"),
        ("c4=", json!({}), false, "conv-00000000-0000-4000-8000-000000000001"),
    ];
    for (connection_id, query, authorizer_names_it, expected) in cases {
        let mut event = with_query(sample_event(), query);
        event["requestContext"]["connectionId"] = json!(connection_id);
        if authorizer_names_it {
            event["requestContext"]["authorizer"]["conversationId"] = json!("from-authorizer");
        }
        assert_eq!(h.connect(event).await["statusCode"], 200);
        assert_eq!(h.attr(connection_id, "conversationId").await.as_deref(), Some(expected), "{connection_id}");
        assert_eq!(h.attr(connection_id, "gsi1pk").await, Some(format!("CONV#{expected}")));
    }
}

#[tokio::test]
async fn the_authorizer_principal_is_the_user_and_a_contradicting_query_user_is_refused() {
    let h = Harness::new().await;

    let agreeing = with_query(sample_event(), json!({"userId": "u-42"}));
    assert_eq!(h.connect(agreeing).await["statusCode"], 200);
    assert_eq!(h.attr(CONNECTION_ID, "userId").await.as_deref(), Some("u-42"));

    let mut impostor = with_query(sample_event(), json!({"userId": "u-admin"}));
    impostor["requestContext"]["connectionId"] = json!("impostor=");
    let response = h.connect(impostor).await;

    assert_eq!(response, json!({"statusCode": 403, "body": "Forbidden"}));
    assert_eq!(h.item("impostor=").await, None, "nothing is recorded for a refused connect");
}

#[tokio::test]
async fn a_query_user_is_used_only_when_no_authorizer_ran() {
    let h = Harness::new().await;

    let anonymous = without_authorizer(with_query(sample_event(), json!({"userId": "u-7"})));
    assert_eq!(h.connect(anonymous).await["statusCode"], 200);

    assert_eq!(h.attr(CONNECTION_ID, "userId").await.as_deref(), Some("u-7"));
    assert_eq!(h.query_index(keys::GSI2, keys::GSI2PK, "USER#u-7").await, [CONNECTION_ID]);
}

#[tokio::test]
async fn a_connection_without_a_user_stays_out_of_the_user_index() {
    let h = Harness::new().await;

    assert_eq!(h.connect(without_authorizer(sample_event())).await["statusCode"], 200);

    let item = h.item(CONNECTION_ID).await.unwrap();
    for absent in ["userId", "gsi2pk", "gsi2sk"] {
        assert!(!item.contains_key(absent), "{absent} must be absent");
    }
}

#[tokio::test]
async fn an_invalid_identifier_is_a_400_with_a_generic_body_and_the_reason_in_the_log() {
    let h = Harness::new().await;
    let (logs, _guard) = capture_logs(ws_connect::SVC);

    let response = h.connect(with_query(sample_event(), json!({"correlationId": "conv#USER#u-1"}))).await;

    assert_eq!(response, json!({"statusCode": 400, "body": "Bad Request"}));
    assert_eq!(scan_all(&h.client, &h.table).await.len(), 0);
    let line = logs.json().pop().unwrap();
    assert_eq!(line["level"], "WARN");
    assert_eq!(
        line["reason"],
        "invalid identifier in the request: conversationId contains a character outside [A-Za-z0-9._:@=+-] at position 4"
    );
}

#[tokio::test]
async fn an_invalid_connection_id_or_principal_is_a_400() {
    let h = Harness::new().await;
    let mut bad_connection = sample_event();
    bad_connection["requestContext"]["connectionId"] = json!("a b");
    let mut bad_principal = sample_event();
    bad_principal["requestContext"]["authorizer"]["principalId"] = json!("auth0|123");

    assert_eq!(h.connect(bad_connection).await["statusCode"], 400);
    assert_eq!(h.connect(bad_principal).await["statusCode"], 400);
    assert_eq!(scan_all(&h.client, &h.table).await.len(), 0);
}

#[tokio::test]
async fn a_malformed_event_is_a_400_not_a_panic() {
    let h = Harness::new().await;
    let no_times = {
        let mut e = sample_event();
        e["requestContext"].as_object_mut().unwrap().remove("connectedAt");
        e
    };
    let no_connection_id = {
        let mut e = sample_event();
        e["requestContext"].as_object_mut().unwrap().remove("connectionId");
        e
    };
    for event in [json!(null), json!("hello"), json!({}), json!({"requestContext": 7}), no_times, no_connection_id] {
        assert_eq!(h.connect(event.clone()).await, json!({"statusCode": 400, "body": "Bad Request"}), "{event}");
    }
}

#[tokio::test]
async fn the_offered_subprotocol_is_echoed_and_a_token_entry_never_is() {
    let h = Harness::new().await;
    let mut event = sample_event();
    event["headers"]["Sec-WebSocket-Protocol"] = json!("bearer.eyJhbGciOiJSUzI1NiJ9.e30.sig, chat.v2");

    let response = h.connect(event).await;

    assert_eq!(response, json!({"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "chat.v2"}}));
}

#[tokio::test]
async fn no_subprotocol_offered_means_none_answered() {
    let h = Harness::new().await;
    let mut event = sample_event();
    event["headers"].as_object_mut().unwrap().remove("Sec-WebSocket-Protocol");
    event["multiValueHeaders"].as_object_mut().unwrap().remove("Sec-WebSocket-Protocol");

    assert_eq!(h.connect(event).await, json!({"statusCode": 200}));
}

#[tokio::test]
async fn the_record_expires_the_configured_minutes_after_the_connect() {
    let (client, table) = fresh_table("connect-ttl").await;
    let h = Harness::on_table(client, table, "15");

    h.connect(sample_event()).await;

    let ttl = h.item(CONNECTION_ID).await.unwrap()["ttl"].as_n().unwrap().parse::<i64>().unwrap();
    let now = FixedClock::default().0.timestamp();
    assert_eq!(ttl - now, 15 * 60);
}

#[tokio::test]
async fn a_store_failure_is_a_500_that_leaks_nothing_and_counts_an_error() {
    // GIVEN a handler whose table does not exist: DynamoDB answers ResourceNotFoundException
    let client = dynamodb_client(&dynamodb_endpoint());
    let h = Harness::on_table(client, "no-such-table".to_owned(), "180");
    let (logs, _guard) = capture_logs(ws_connect::SVC);

    let response = h.connect(sample_event()).await;

    assert_eq!(response, json!({"statusCode": 500, "body": "Internal Server Error"}));
    let line = logs.json().pop().unwrap();
    assert_eq!(line["level"], "ERROR");
    let error = line["error"].as_str().unwrap();
    assert!(
        error.starts_with("could not record the connection: DynamoDB PutItem on table no-such-table failed"),
        "{error}"
    );
    assert!(error.contains("ResourceNotFoundException"), "the log keeps the SDK's chain: {error}");
    let metrics = h.metrics.json();
    assert_eq!((metrics[0]["Connected"].as_u64(), metrics[0]["Errors"].as_u64()), (Some(0), Some(1)));
}

#[tokio::test]
async fn at_log_level_error_an_error_line_still_carries_the_invocation_fields() {
    let client = dynamodb_client(&dynamodb_endpoint());
    let h = Harness::on_table(client, "no-such-table".to_owned(), "180");
    let (logs, _guard) = capture_logs_at(ws_connect::SVC, tracing::Level::ERROR);

    h.connect(sample_event()).await;

    let lines = logs.json();
    assert_eq!(lines.len(), 1, "only the ERROR line at LOG_LEVEL=ERROR");
    assert_eq!(lines[0]["requestId"], "req-1");
    assert_eq!(lines[0]["connectionId"], CONNECTION_ID);
    assert_eq!(lines[0]["correlationId"], "conv-123");
}

#[tokio::test]
async fn logs_and_metrics_of_a_connect() {
    let h = Harness::new().await;
    let (logs, _guard) = capture_logs(ws_connect::SVC);

    h.connect(sample_event()).await;
    h.connect(sample_event()).await;

    insta::assert_json_snapshot!("logs", logs.json());
    insta::assert_json_snapshot!("metrics", h.metrics.json());
}

#[tokio::test]
async fn behind_the_edge_only_requests_with_the_origin_secret_connect() {
    let h = Harness::new().await;
    let handler = Connect::new(
        DynamoStore::new(&h.client, &h.table),
        &config_behind_the_edge(&h.table),
        Arc::new(Captured::default()),
    );
    let (logs, _guard) = capture_logs(ws_connect::SVC);
    let mut through_edge = sample_event();
    through_edge["headers"]["X-Origin-Verify"] = json!(ORIGIN_SECRET);
    let mut wrong = sample_event();
    wrong["headers"]["X-Origin-Verify"] = json!("edge-secret-0123456789abcdef012345678X");
    wrong["requestContext"]["connectionId"] = json!("wrong=");

    let around = serde_json::to_value(handler.handle(sample_event(), "r1", deadline_from_now(10_000)).await).unwrap();
    let guessed = serde_json::to_value(handler.handle(wrong, "r2", deadline_from_now(10_000)).await).unwrap();
    let through = serde_json::to_value(handler.handle(through_edge, "r3", deadline_from_now(10_000)).await).unwrap();

    assert_eq!(around, json!({"statusCode": 403, "body": "Forbidden"}));
    assert_eq!(guessed, json!({"statusCode": 403, "body": "Forbidden"}));
    assert_eq!(through["statusCode"], 200);
    assert_eq!(scan_all(&h.client, &h.table).await.len(), 1);
    assert!(!logs.raw().contains(ORIGIN_SECRET), "the secret leaked into the logs");
    let printed = format!("{:?} {handler:?}", config_behind_the_edge(&h.table));
    assert!(!printed.contains(ORIGIN_SECRET) && printed.contains("Secret(<redacted>)"), "{printed}");
    assert_eq!(
        logs.json()[0]["reason"],
        "the request did not come through the edge: x-origin-verify is missing or wrong"
    );
}

#[tokio::test]
async fn logs_never_carry_the_ip_the_user_agent_or_the_token() {
    let h = Harness::new().await;
    let (logs, _guard) = capture_logs(ws_connect::SVC);
    let event = sample_event();

    h.connect(event.clone()).await;
    h.connect(with_query(event.clone(), json!({"correlationId": "bad#id", "token": "eyJ.secret.token"}))).await;
    h.connect(without_authorizer(with_query(event.clone(), json!({"userId": "u#1"})))).await;

    let raw = logs.raw() + &h.metrics.raw();
    assert!(!raw.is_empty());
    for secret in ["198.51.100.23", "Mozilla", "Firefox", "eyJ", "secret.token"] {
        assert!(!raw.contains(secret), "{secret:?} leaked into: {raw}");
    }
}

#[tokio::test]
async fn client_info_decides_how_much_of_the_ip_and_user_agent_is_stored() {
    for value in ["full", "anonymized", "none"] {
        let h = Harness::with_env(&[("CLIENT_INFO", value)]).await;

        let response = h.connect(sample_event()).await;

        assert_eq!(response["statusCode"], 200, "{value}");
        let item = item_json(&h.item(CONNECTION_ID).await.expect("item written"));
        insta::assert_json_snapshot!(format!("item_client_info_{value}"), item);
    }
}

fn connect_of(user: &str, connection_id: &str) -> Value {
    let mut event = sample_event();
    event["requestContext"]["connectionId"] = json!(connection_id);
    event["requestContext"]["authorizer"]["principalId"] = json!(user);
    event
}

#[tokio::test]
async fn a_user_at_the_limit_is_refused_with_429_until_a_disconnect_frees_a_slot() {
    // GIVEN MAX_CONNECTIONS_PER_USER=2 and a user with two connections
    let h = Harness::with_env(&[("MAX_CONNECTIONS_PER_USER", "2")]).await;
    assert_eq!(h.connect(connect_of("u-limit", "first=")).await["statusCode"], 200);
    assert_eq!(h.connect(connect_of("u-limit", "second=")).await["statusCode"], 200);
    let (logs, _guard) = capture_logs(ws_connect::SVC);

    // WHEN the user connects a third time, another user connects, and a replay of the second arrives
    let third = h.connect(connect_of("u-limit", "third=")).await;
    let other = h.connect(connect_of("u-other", "other=")).await;
    let replay = h.connect(connect_of("u-limit", "second=")).await;

    // THEN the third is a 429 that writes nothing and counts Refused; the others are not limited
    assert_eq!(third, json!({"statusCode": 429, "body": "Too Many Requests"}));
    assert_eq!(h.item("third=").await, None, "a refused connect wrote a record");
    assert_eq!((other["statusCode"].as_u64(), replay["statusCode"].as_u64()), (Some(200), Some(200)));
    let metrics = h.metrics.json();
    let refused: Vec<u64> = metrics.iter().map(|m| m["Refused"].as_u64().unwrap()).collect();
    assert_eq!(refused, [0, 0, 1, 0, 0], "{metrics:?}");
    assert_eq!(metrics[2]["Errors"], 0);
    let line = logs.json().into_iter().find(|l| l["status"] == 429).expect("a refusal line");
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["reason"], "the user already has 2 connections (MAX_CONNECTIONS_PER_USER)");

    // AND once one of the two disconnects, the user may connect again
    let store = DynamoStore::new(&h.client, &h.table);
    let disconnection = Disconnection {
        connection_id: ConnectionId::parse("first=").unwrap(),
        at: FixedClock::default().0,
        close_code: Some(1000),
        close_reason: None,
        expires_at: FixedClock::default().0 + chrono::Duration::minutes(180),
    };
    store.mark_disconnected(&disconnection, &no_hurry()).await.expect("disconnected");
    assert_eq!(h.connect(connect_of("u-limit", "third=")).await["statusCode"], 200);
    assert_eq!(h.connect(connect_of("u-limit", "fourth=")).await["statusCode"], 429);
}

#[tokio::test]
async fn the_index_is_read_only_with_a_limit_and_an_unreadable_count_writes_nothing() {
    // GIVEN a store whose every index read fails (as without dynamodb:Query on GSI2)
    let proxy =
        FaultProxy::start(
            &dynamodb_endpoint(),
            |_, operation| {
                if operation == "Query" { Fault::InternalError } else { Fault::Pass }
            },
        )
        .await;
    let client = dynamodb_client(&proxy.endpoint());
    let (_, table) = fresh_table("connect-limit").await;
    let unlimited = Harness::on_config(client.clone(), table.clone(), &config_with(&table, &[]));
    let limited = Harness::on_config(client, table.clone(), &config_with(&table, &[("MAX_CONNECTIONS_PER_USER", "3")]));

    // WHEN a user connects five times without a limit, then once with one
    for i in 0..5 {
        assert_eq!(unlimited.connect(connect_of("u-many", &format!("many{i}="))).await["statusCode"], 200);
    }
    let answer = limited.connect(connect_of("u-x", "x=")).await;

    // THEN no limit never reads the index; with a limit, a count that cannot be read is a 500
    // and nothing is written unchecked
    assert_eq!(answer, json!({"statusCode": 500, "body": "Internal Server Error"}));
    assert_eq!(limited.item("x=").await, None);
    let queries = proxy.seen().iter().filter(|s| s.operation == "Query").count();
    assert!(queries > 0, "the limited connect never read the index");
    assert_eq!(proxy.seen().iter().take(5).filter(|s| s.operation == "Query").count(), 0);
}

#[tokio::test]
async fn the_token_expiry_from_the_authorizer_is_kept_on_the_record_and_indexed_for_the_sweep() {
    let h = Harness::new().await;
    // API Gateway hands authorizer context values on as strings; a number is accepted too.
    for (id, exp) in [("exp-text=", json!("1767225600")), ("exp-number=", json!(1_767_225_601))] {
        let mut event = sample_event();
        event["requestContext"]["connectionId"] = json!(id);
        event["requestContext"]["authorizer"]["exp"] = exp;
        assert_eq!(h.connect(event).await["statusCode"], 200, "{id}");
    }
    let item = h.item("exp-text=").await.unwrap();
    assert_eq!(item["tokenExp"].as_n().unwrap(), "1767225600");
    let shard = keys::expiry_shard(&ConnectionId::parse("exp-text=").unwrap());
    assert_eq!(item["gsi3pk"].as_s().unwrap(), &keys::expiry_partition(shard));
    assert_eq!(item["gsi3sk"].as_s().unwrap(), "001767225600#exp-text=");
    assert_eq!(h.item("exp-number=").await.unwrap()["tokenExp"].as_n().unwrap(), "1767225601");

    // No authorizer, or one that gives no exp: never swept, so no index entry.
    let mut anonymous = without_authorizer(with_query(sample_event(), json!({"userId": "u-anon"})));
    anonymous["requestContext"]["connectionId"] = json!("no-exp=");
    assert_eq!(h.connect(anonymous).await["statusCode"], 200);
    let item = h.item("no-exp=").await.unwrap();
    assert!(!item.contains_key("tokenExp") && !item.contains_key("gsi3pk"), "{item:?}");
}

#[tokio::test]
async fn an_authorizer_exp_that_is_not_epoch_seconds_is_refused_because_its_lifetime_could_not_be_enforced() {
    let h = Harness::new().await;
    for (i, exp) in [json!("soon"), json!("1767225600000"), json!(-5), json!("2026-01-01T00:00:00Z"), json!({"a": 1})]
        .into_iter()
        .enumerate()
    {
        let id = format!("bad-exp{i}=");
        let mut event = sample_event();
        event["requestContext"]["connectionId"] = json!(id);
        event["requestContext"]["authorizer"]["exp"] = exp.clone();
        assert_eq!(h.connect(event).await, json!({"statusCode": 403, "body": "Forbidden"}), "{exp}");
        assert_eq!(h.item(&id).await, None, "{exp}: nothing recorded");
    }
}

#[tokio::test]
async fn the_record_keeps_the_api_stage_and_region_the_connection_lives_in() {
    // Lambda sets AWS_REGION; requestContext carries the API id and the stage.
    let h = Harness::with_env(&[("AWS_REGION", "eu-west-1")]).await;
    assert_eq!(h.connect(sample_event()).await["statusCode"], 200);
    let item = h.item(CONNECTION_ID).await.unwrap();
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    assert_eq!(
        (text("apiId"), text("stage"), text("region")),
        (Some("abcd1234".into()), Some("prod".into()), Some("eu-west-1".into()))
    );
}
