//! Test helpers shared by this crate's and the functions' tests (feature `testing`).

pub mod faults;
pub mod loopback;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::clock::{Clock, IdSource, from_epoch_millis};
use crate::deadline::Deadline;
use crate::id::{ConnectionId, ConversationId, UserId};
use crate::record::{ConnectionRecord, ConnectionStatus, attr, keys};
use crate::store::StoreError;

/// A clock stopped at 2024-02-09T18:23:28.941Z (the sample events' `requestTimeEpoch`).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Default for FixedClock {
    fn default() -> Self {
        Self(from_epoch_millis(1_707_503_008_941).expect("valid time"))
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// A Lambda deadline (epoch milliseconds) `ms` after [`FixedClock`]'s time: what handlers on that
/// clock are given as `Context::deadline`.
pub fn deadline_in(ms: u64) -> u64 {
    u64::try_from(FixedClock::default().0.timestamp_millis()).expect("after 1970") + ms
}

/// A Lambda deadline `ms` from now on the system clock (handlers built without a test clock).
pub fn deadline_from_now(ms: u64) -> u64 {
    u64::try_from(Utc::now().timestamp_millis()).expect("after 1970") + ms
}

/// A generous deadline for calls in tests that are not about time.
pub fn no_hurry() -> Deadline {
    Deadline::after(std::time::Duration::from_secs(30))
}

/// What `$connect` records for `id` in `conversation` (of `user`, when given), accepted at `at`:
/// no client info, no API, no token expiry, kept 3 hours. Tests change what they need.
pub fn connection_record(id: &str, conversation: &str, user: Option<&str>, at: DateTime<Utc>) -> ConnectionRecord {
    ConnectionRecord {
        connection_id: ConnectionId::parse(id).expect("a valid connection id"),
        conversation_id: ConversationId::parse(conversation).expect("a valid conversation id"),
        user_id: user.map(|u| UserId::parse(u).expect("a valid user id")),
        connected_at: at,
        updated_at: at,
        ip: None,
        user_agent: None,
        domain_name: None,
        stage: None,
        expires_at: at + chrono::Duration::hours(3),
        token_expires_at: None,
        api_id: None,
        region: None,
    }
}

/// A record as stored, read back by tests (the functions themselves never read the table).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // one flag per index the record is in: what the tests check
pub struct StoredConnection {
    pub status: ConnectionStatus,
    /// Present only on a record `$connect` wrote (a tombstone has none).
    pub connected_at: Option<String>,
    pub conversation_id: Option<String>,
    pub user_id: Option<String>,
    pub disconnected_at: Option<String>,
    pub close_code: Option<i64>,
    pub close_reason: Option<String>,
    /// Epoch seconds.
    pub ttl: Option<i64>,
    /// In GSI1 / GSI2: the record carries that index's keys.
    pub in_conversation_index: bool,
    pub in_user_index: bool,
    /// The token's expiry (epoch seconds), when the connect had one.
    pub token_exp: Option<i64>,
    /// In GSI3 (live connections by token expiry).
    pub in_expiry_index: bool,
    /// In GSI4 (every live connection, for a broadcast).
    pub in_live_index: bool,
}

/// Reading a record back, for the store contract and the property tests; both adapters have it.
pub trait ReadBack {
    /// The record of a connection, read consistently.
    fn connection(
        &self,
        connection_id: &ConnectionId,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Option<StoredConnection>, StoreError>> + Send;
}

/// A stored item read back as a [`StoredConnection`].
pub fn stored<H: std::hash::BuildHasher>(
    item: &HashMap<String, AttributeValue, H>,
) -> Result<StoredConnection, crate::dynamo::MalformedItem> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<i64>().ok());
    let status = text(attr::STATUS)
        .and_then(|raw| ConnectionStatus::parse(&raw))
        .ok_or(crate::dynamo::MalformedItem("no known status"))?;
    Ok(StoredConnection {
        status,
        connected_at: text(attr::CONNECTED_AT),
        conversation_id: text(attr::CONVERSATION_ID),
        user_id: text(attr::USER_ID),
        disconnected_at: text(attr::DISCONNECTED_AT),
        close_code: number(attr::CLOSE_CODE),
        close_reason: text(attr::CLOSE_REASON),
        ttl: number(attr::TTL),
        in_conversation_index: item.contains_key(keys::GSI1PK),
        in_user_index: item.contains_key(keys::GSI2PK),
        token_exp: number(attr::TOKEN_EXP),
        in_expiry_index: item.contains_key(keys::GSI3PK),
        in_live_index: item.contains_key(keys::GSI4PK),
    })
}

/// UUIDs 00000000-0000-4000-8000-000000000001, …02, … in order.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl IdSource for SequentialIds {
    fn uuid(&self) -> uuid::Uuid {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        uuid::Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0000 | u128::from(n))
    }
}

pub use crate::output::Captured;

/// Tests read records back (the production functions never read: `$connect` may only put). Here,
/// not in the adapter, so the production module does not know the test helpers.
impl ReadBack for crate::dynamo::DynamoStore {
    async fn connection(
        &self,
        connection_id: &ConnectionId,
        deadline: &Deadline,
    ) -> Result<Option<StoredConnection>, StoreError> {
        let error = |source: Box<dyn std::error::Error + Send + Sync>| StoreError {
            operation: "GetItem",
            table: self.table().to_owned(),
            permanent: false,
            source,
        };
        let timeouts = aws_config::timeout::TimeoutConfig::builder().operation_timeout(deadline.budget()).build();
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(crate::dynamo::key(connection_id)))
            .consistent_read(true)
            .customize()
            .config_override(aws_sdk_dynamodb::Config::builder().timeout_config(timeouts))
            .send()
            .await
            .map_err(|err| error(Box::new(err)))?;
        output.item().map(|item| stored(item).map_err(|err| error(Box::new(err)))).transpose()
    }
}

/// A connection's item as stored (every attribute), read consistently; `None` when there is none.
pub async fn raw_item(client: &Client, table: &str, connection_id: &str) -> Option<HashMap<String, AttributeValue>> {
    let id = ConnectionId::parse(connection_id).expect("a valid connection id");
    client
        .get_item()
        .table_name(table)
        .set_key(Some(crate::dynamo::key(&id)))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
}

/// The endpoint of the DynamoDB API the integration tests use (moto's server, started by
/// `scripts/test.sh`).
pub fn dynamodb_endpoint() -> String {
    std::env::var("DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "DYNAMODB_ENDPOINT is not set: run the tests through scripts/test.sh, which starts \
             moto's server, or start one (moto_server -H 127.0.0.1 -p 5000) and export \
             DYNAMODB_ENDPOINT=http://127.0.0.1:5000"
        )
    })
}

/// The access key id every test SDK config signs with.
pub const TEST_ACCESS_KEY_ID: &str = "AKIDWSCONNECTIONTEST";

/// An SDK config as `aws::load_config` gives in Lambda, with fixed test credentials and region.
pub fn sdk_config() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(Credentials::new(
            TEST_ACCESS_KEY_ID,
            "test-secret",
            None,
            None,
            "tests",
        )))
        .http_client(crate::aws::http_client(crate::aws::Roots::Amazon))
        .build()
}

/// A DynamoDB client for `endpoint` with dummy credentials.
pub fn dynamodb_client(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .endpoint_url(endpoint)
        .http_client(crate::aws::http_client(crate::aws::Roots::Amazon))
        .build();
    Client::from_conf(config)
}

/// A table name no other test uses.
pub fn unique_table_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}-{}", std::process::id(), uuid::Uuid::new_v4().simple())
}

/// A client on moto and a new, empty connections table named after `prefix`.
pub async fn fresh_table(prefix: &str) -> (Client, String) {
    let client = dynamodb_client(&dynamodb_endpoint());
    let table = unique_table_name(prefix);
    create_connections_table(&client, &table).await;
    (client, table)
}

/// The connections table's schema as `terraform/modules/table` declares it (its `schema.json`):
/// keys, indexes with their projection, TTL attribute.
#[derive(Debug, serde::Deserialize)]
pub struct TableSchema {
    pub hash_key: String,
    pub range_key: String,
    pub indexes: BTreeMap<String, IndexSchema>,
    pub index_projection: Vec<String>,
    pub ttl_attribute: String,
}

#[derive(Debug, serde::Deserialize)]
pub struct IndexSchema {
    pub hash_key: String,
    pub range_key: String,
}

/// The schema Terraform builds the table from.
pub fn table_schema() -> TableSchema {
    serde_json::from_str(include_str!("../../terraform/modules/table/schema.json"))
        .expect("terraform/modules/table/schema.json is a table schema")
}

/// Creates a connections table from [`table_schema`], as `terraform/modules/table` does (on
/// demand: the tests' tables are short-lived).
pub async fn create_connections_table(client: &Client, name: &str) {
    let schema = table_schema();
    let string_attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("complete")
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder().attribute_name(name).key_type(kind).build().expect("complete")
    };
    let mut key_attributes = vec![schema.hash_key.as_str(), schema.range_key.as_str()];
    let mut indexes = Vec::new();
    for (index, keys) in &schema.indexes {
        key_attributes.extend([keys.hash_key.as_str(), keys.range_key.as_str()]);
        indexes.push(
            GlobalSecondaryIndex::builder()
                .index_name(index)
                .key_schema(key(&keys.hash_key, KeyType::Hash))
                .key_schema(key(&keys.range_key, KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .set_non_key_attributes(Some(schema.index_projection.clone()))
                        .build(),
                )
                .build()
                .expect("complete"),
        );
    }
    key_attributes.dedup();
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(key_attributes.into_iter().map(string_attr).collect()))
        .key_schema(key(&schema.hash_key, KeyType::Hash))
        .key_schema(key(&schema.range_key, KeyType::Range))
        .set_global_secondary_indexes(Some(indexes))
        .send()
        .await
        .unwrap_or_else(|e| panic!("create table {name}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e)));
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(&schema.ttl_attribute)
                .build()
                .expect("complete"),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("enable TTL on {name}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e)));
}

/// An item in DynamoDB's JSON notation with keys sorted, for snapshots and assertions.
pub fn item_json<H: std::hash::BuildHasher>(item: &HashMap<String, AttributeValue, H>) -> Value {
    let sorted: BTreeMap<&String, Value> = item.iter().map(|(k, v)| (k, attribute_json(v))).collect();
    json!(sorted)
}

fn attribute_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::M(m) => json!({ "M": item_json(m) }),
        AttributeValue::L(l) => json!({ "L": l.iter().map(attribute_json).collect::<Vec<_>>() }),
        other => json!({ "other": format!("{other:?}") }),
    }
}

/// Every item in `table` (a scan; test tables are small).
pub async fn scan_all(client: &Client, table: &str) -> Vec<HashMap<String, AttributeValue>> {
    client
        .scan()
        .table_name(table)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap_or_else(|e| panic!("scan {table}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))
}

/// Routes this thread's `tracing` events through the JSON layer into a buffer, at `INFO` with a
/// [`FixedClock`], until the guard drops. `#[tokio::test]` runs on one thread, so the whole
/// test is covered.
pub fn capture_logs(svc: &'static str) -> (Captured, tracing::subscriber::DefaultGuard) {
    capture_logs_at(svc, tracing::Level::INFO)
}

/// [`capture_logs`] with the filter `LOG_LEVEL=level` gives.
pub fn capture_logs_at(svc: &'static str, level: tracing::Level) -> (Captured, tracing::subscriber::DefaultGuard) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    let captured = Captured::default();
    let layer = crate::log::JsonLayer::new(svc, captured.clone())
        .with_clock(FixedClock::default())
        .with_filter(crate::log::filter(level));
    let guard = tracing::subscriber::set_default(tracing_subscriber::Registry::default().with(layer));
    (captured, guard)
}

/// What a process printed and how it ended.
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `binary` with exactly `env` (nothing inherited) and waits for it to exit.
pub fn run_with_env(binary: &str, env: &[(&str, &str)]) -> Exit {
    let output = std::process::Command::new(binary)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("could not run {binary}: {e}"));
    Exit {
        code: output.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A clock that stands still until told to move.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    pub fn advance(&self, by: chrono::Duration) {
        *self.0.lock().expect("not poisoned") += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("not poisoned")
    }
}

/// The start-up refusals every function on the table shares (`TABLE_CONNECTIONS`,
/// `CONNECTION_TTL_MINUTES`, `LOG_LEVEL`), as tests of `binary` (its `svc` in the line).
#[macro_export]
macro_rules! table_function_refuses_bad_configuration {
    ($binary:expr, $svc:expr) => {
        #[test]
        fn a_missing_table_name_fails_at_start_naming_the_variable() {
            $crate::testing::assert_refuses_to_start(
                $binary,
                $svc,
                &[],
                "configuration error: TABLE_CONNECTIONS is not set",
            );
        }

        #[test]
        fn a_non_numeric_ttl_fails_at_start_naming_the_variable() {
            let env = [("TABLE_CONNECTIONS", "connections"), ("CONNECTION_TTL_MINUTES", "3h")];
            let message = "CONNECTION_TTL_MINUTES=\"3h\" is invalid: use a positive whole number";
            $crate::testing::assert_refuses_to_start($binary, $svc, &env, message);
        }

        #[test]
        fn an_unknown_log_level_fails_at_start_naming_the_variable() {
            let env = [("TABLE_CONNECTIONS", "connections"), ("LOG_LEVEL", "verbose")];
            $crate::testing::assert_refuses_to_start($binary, $svc, &env, "LOG_LEVEL=\"verbose\" is invalid");
        }
    };
}

/// Asserts `binary` refuses to start with `env`: exit status 1, `message` on stderr, and one JSON
/// log line on stdout naming `svc`.
pub fn assert_refuses_to_start(binary: &str, svc: &str, env: &[(&str, &str)], message: &str) {
    let exit = run_with_env(binary, env);
    assert_eq!(exit.code, 1, "{binary} must exit 1; stderr: {}", exit.stderr);
    assert!(exit.stderr.contains(message), "stderr lacks {message:?}: {}", exit.stderr);
    let line: Value = serde_json::from_str(exit.stdout.trim()).expect("one JSON log line on stdout");
    assert_eq!((line["level"].as_str(), line["svc"].as_str()), (Some("ERROR"), Some(svc)));
}

/// How a stream record says a connection record changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamChange {
    /// `$connect` wrote it (`INSERT`, `CONNECTED`).
    Inserted,
    /// It left `CONNECTED` for this status (`MODIFY`: `DISCONNECTED` or `GONE`).
    Ended(ConnectionStatus),
    /// Its TTL deleted it while it still said `CONNECTED` (`REMOVE`).
    Expired,
}

/// A DynamoDB stream record (`NEW_AND_OLD_IMAGES`) of `record`'s change, as a pipe hands it to
/// its enrichment: the images are the items the DynamoDB adapter writes ([`crate::dynamo::record_item`]).
pub fn stream_record(event_id: &str, record: &ConnectionRecord, change: StreamChange) -> Value {
    let live = crate::dynamo::record_item(record);
    let (name, old, new) = match change {
        StreamChange::Inserted => ("INSERT", None, Some(item_json(&live))),
        StreamChange::Ended(status) => {
            let mut ended = live.clone();
            ended.insert(attr::STATUS.into(), AttributeValue::S(status.as_str().into()));
            ended.insert(attr::UPDATED_AT.into(), AttributeValue::S(crate::clock::iso_millis(record.updated_at)));
            ("MODIFY", Some(item_json(&live)), Some(item_json(&ended)))
        }
        StreamChange::Expired => ("REMOVE", Some(item_json(&live)), None),
    };
    let mut dynamodb =
        json!({"ApproximateCreationDateTime": record.updated_at.timestamp(), "StreamViewType": "NEW_AND_OLD_IMAGES"});
    if let Some(old) = old {
        dynamodb["OldImage"] = old;
    }
    if let Some(new) = new {
        dynamodb["NewImage"] = new;
    }
    json!({"eventID": event_id, "eventName": name, "eventSource": "aws:dynamodb", "dynamodb": dynamodb})
}
