//! `$connect` and `$disconnect` through a fault proxy in front of moto that, by a seeded schedule,
//! throttles (`ProvisionedThroughputExceededException`, `ThrottlingException`), answers 500,
//! resets the connection, loses the response after the write landed, or stalls past the deadline
//! (and then lets the write land, as on AWS). Invariants:
//! - every answer comes before the invocation's deadline;
//! - a `$connect` answered 200 has its `CONNECTED` record; one answered 500 leaves no `CONNECTED`
//!   record (also after the stalled writes land) and says nothing internal;
//! - a `$disconnect` never leaves the record `CONNECTED`.
//!
//! `FAULT_SEED` picks the schedule (the default is fixed, so CI is repeatable); `FAULT_CASES` sets
//! how many connects and disconnects (default 60 each).

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::{Value, json};
use ws_properties::{Handlers, events};
use ws_shared::dynamo::DynamoStore;
use ws_shared::id::ConnectionId;
use ws_shared::record::ConnectionStatus;
use ws_shared::testing::faults::{Fault, FaultProxy, Seeded};
use ws_shared::testing::{ReadBack, deadline_in, dynamodb_client, dynamodb_endpoint, fresh_table, no_hurry};

/// The stall: longer than any deadline here (as in the measured failure: DynamoDB stalled 6 s).
const STALL: Duration = Duration::from_secs(6);
/// The functions' timeout in these tests.
const TIMEOUT_MS: u64 = 4_000;

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One fault in three requests, of every kind.
fn schedule(seed: u64) -> impl Fn(u64, &str) -> Fault + Send + Sync + 'static {
    let rng = std::sync::Mutex::new(Seeded::new(seed));
    move |_, _| match rng.lock().unwrap().below(30) {
        0..=1 => Fault::ProvisionedThroughput,
        2..=3 => Fault::Throttling,
        4..=5 => Fault::InternalError,
        6 => Fault::Reset,
        7..=8 => Fault::LostResponse,
        9 => Fault::StallThenLand(STALL),
        10 => Fault::Stall(STALL),
        _ => Fault::Pass,
    }
}

struct Table {
    direct: DynamoStore,
    name: String,
}

async fn table() -> Table {
    let (client, name) = fresh_table("faults").await;
    Table { direct: DynamoStore::new(&client, &name), name }
}

async fn status(table: &Table, id: &str) -> Option<ConnectionStatus> {
    table.direct.connection(&ConnectionId::parse(id).unwrap(), &no_hurry()).await.unwrap().map(|r| r.status)
}

/// Runs `count` invocations on connections `{prefix}000=`, `{prefix}001=`, …, four at a time:
/// each connection's id, its answer as JSON, and how long the answer took.
async fn timed<R, Fut>(count: u64, prefix: &str, invoke: impl Fn(String) -> Fut) -> Vec<(String, Value, Duration)>
where
    R: serde::Serialize,
    Fut: Future<Output = R>,
{
    futures_util::stream::iter(0..count)
        .map(|i| {
            let id = format!("{prefix}{i:03}=");
            let started = Instant::now();
            let answer = invoke(id.clone());
            async move {
                let answer = serde_json::to_value(answer.await).expect("answers serialize");
                (id, answer, started.elapsed())
            }
        })
        .buffer_unordered(4)
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulted_connects_answer_in_time_and_a_500_never_leaves_a_connected_record() {
    let seed = knob("FAULT_SEED", 12);
    let count = knob("FAULT_CASES", 60);
    let table = table().await;
    let proxy = FaultProxy::start(&dynamodb_endpoint(), schedule(seed)).await;
    let store = DynamoStore::new(&dynamodb_client(&proxy.endpoint()), &table.name);
    let handlers = Handlers::new(&store, &table.name);

    let answers = timed(count, "fc", |id| {
        handlers.connect.handle(
            events::connect(&id, "conv-f", "u-f", 1_707_503_000_000),
            "req",
            deadline_in(TIMEOUT_MS),
        )
    })
    .await;
    // The stalled writes land now, after their connects answered.
    tokio::time::sleep(STALL + Duration::from_millis(500)).await;

    let faults = proxy.seen().iter().filter(|s| s.fault != Fault::Pass).count();
    let mut refused = 0;
    for (id, answer, elapsed) in &answers {
        assert!(elapsed.as_millis() < u128::from(TIMEOUT_MS), "{id} answered after {elapsed:?}: {answer}");
        match answer["statusCode"].as_u64() {
            Some(200) => {
                assert_eq!(status(&table, id).await, Some(ConnectionStatus::Connected), "{id}: 200 without its record");
            }
            Some(500) => {
                refused += 1;
                assert_eq!(answer, &json!({"statusCode": 500, "body": "Internal Server Error"}), "{id}");
                assert_ne!(
                    status(&table, id).await,
                    Some(ConnectionStatus::Connected),
                    "{id}: orphan CONNECTED after a 500"
                );
            }
            _ => panic!("{id}: {answer}"),
        }
    }
    println!(
        "seed {seed}: {count} connects, {} requests, {faults} faults injected, {refused} answered 500",
        proxy.seen().len()
    );
    assert!(faults > 0, "the schedule injected no fault");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulted_disconnects_answer_in_time_and_never_leave_a_connected_record() {
    let seed = knob("FAULT_SEED", 12) + 1;
    let count = knob("FAULT_CASES", 60);
    let table = table().await;
    let setup = Handlers::new(&table.direct, &table.name);
    for i in 0..count {
        let id = format!("fd{i:03}=");
        setup.connect(events::connect(&id, "conv-f", "u-f", 1_707_503_000_000)).await;
    }
    let proxy = FaultProxy::start(&dynamodb_endpoint(), schedule(seed)).await;
    let store = DynamoStore::new(&dynamodb_client(&proxy.endpoint()), &table.name);
    let handlers = Handlers::new(&store, &table.name);

    let answers = timed(count, "fd", |id| {
        handlers.disconnect.handle(events::disconnect(&id, 1001, "away"), "req", deadline_in(TIMEOUT_MS))
    })
    .await;
    tokio::time::sleep(STALL + Duration::from_millis(500)).await;

    for (id, answer, elapsed) in &answers {
        assert!(elapsed.as_millis() < u128::from(TIMEOUT_MS), "{id} answered after {elapsed:?}: {answer}");
        assert_eq!(answer["statusCode"], 200, "{id}: {answer}");
        assert_eq!(status(&table, id).await, Some(ConnectionStatus::Disconnected), "{id} left CONNECTED");
    }
    let faults = proxy.seen().iter().filter(|s| s.fault != Fault::Pass).count();
    println!("seed {seed}: {count} disconnects, {} requests, {faults} faults injected", proxy.seen().len());
    assert!(faults > 0, "the schedule injected no fault");
}

/// API Gateway never redelivers a `$disconnect`: a burst of failures longer than the SDK's own
/// retries (5 attempts) must not leave the record `CONNECTED` while time is left.
#[tokio::test]
async fn a_disconnect_outlasts_a_burst_of_failures_longer_than_the_sdk_retries() {
    let table = table().await;
    Handlers::new(&table.direct, &table.name)
        .connect(events::connect("burst=", "conv-f", "u-f", 1_707_503_000_000))
        .await;
    let proxy =
        FaultProxy::start(&dynamodb_endpoint(), |n, _| if n < 8 { Fault::InternalError } else { Fault::Pass }).await;
    let store = DynamoStore::new(&dynamodb_client(&proxy.endpoint()), &table.name);
    let handlers = Handlers::new(&store, &table.name);

    let answer = handlers.disconnect(events::disconnect("burst=", 1001, "away")).await;

    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(status(&table, "burst=").await, Some(ConnectionStatus::Disconnected));
    assert!(proxy.seen().len() > 8, "{:?}", proxy.seen());
}
