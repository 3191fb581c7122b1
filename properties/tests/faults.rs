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
//! how many connects and disconnects (default 60 each). A failed assertion shows the proxy's log of
//! that connection's requests (arrival, fault, when it landed and what the table said, when the
//! proxy answered); with `FAULT_LOG_DIR` set, the whole log of a failed run is written there as
//! `<test>-seed<N>.log` (the nightly workflow uploads it).
//!
//! Each interleaving these found is kept below as a named test with a fixed schedule.

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

/// Checks every answer with `check`; on the first failure, writes the proxy's whole log to
/// `FAULT_LOG_DIR` (when set) and fails with the failing connection's own log.
fn verify(test: &str, seed: u64, proxy: &FaultProxy, failures: &[(String, String)]) {
    let Some((id, why)) = failures.first() else { return };
    if let Ok(dir) = std::env::var("FAULT_LOG_DIR") {
        let path = std::path::Path::new(&dir).join(format!("{test}-seed{seed}.log"));
        std::fs::create_dir_all(&dir).expect("FAULT_LOG_DIR can be created");
        std::fs::write(&path, proxy.log()).expect("the proxy log can be written");
        eprintln!("the proxy's whole log: {}", path.display());
    }
    let others = failures.len() - 1;
    panic!("seed {seed}: {why}\nproxy log of {id}:\n{}({others} other failures)", proxy.log_of(id));
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
    let mut failures = Vec::new();
    for (id, answer, elapsed) in &answers {
        let stored = status(&table, id).await;
        let why = if elapsed.as_millis() >= u128::from(TIMEOUT_MS) {
            Some(format!("{id} answered after {elapsed:?}: {answer}"))
        } else {
            match answer["statusCode"].as_u64() {
                Some(200) if stored != Some(ConnectionStatus::Connected) => {
                    Some(format!("{id}: 200 without its record ({stored:?})"))
                }
                Some(200) => None,
                Some(500) => {
                    refused += 1;
                    if answer != &json!({"statusCode": 500, "body": "Internal Server Error"}) {
                        Some(format!("{id}: {answer}"))
                    } else if stored == Some(ConnectionStatus::Connected) {
                        Some(format!("{id}: orphan CONNECTED after a 500"))
                    } else {
                        None
                    }
                }
                _ => Some(format!("{id}: {answer}")),
            }
        };
        failures.extend(why.map(|why| (id.clone(), why)));
    }
    println!(
        "seed {seed}: {count} connects, {} requests, {faults} faults injected, {refused} answered 500, {} failed",
        proxy.seen().len(),
        failures.len()
    );
    verify("connects", seed, &proxy, &failures);
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

    let mut failures = Vec::new();
    for (id, answer, elapsed) in &answers {
        let stored = status(&table, id).await;
        let why = if elapsed.as_millis() >= u128::from(TIMEOUT_MS) {
            Some(format!("{id} answered after {elapsed:?}: {answer}"))
        } else if answer["statusCode"] != 200 {
            Some(format!("{id}: {answer}"))
        } else if stored != Some(ConnectionStatus::Disconnected) {
            Some(format!("{id} left {stored:?}"))
        } else {
            None
        };
        failures.extend(why.map(|why| (id.clone(), why)));
    }
    let faults = proxy.seen().iter().filter(|s| s.fault != Fault::Pass).count();
    println!(
        "seed {seed}: {count} disconnects, {} requests, {faults} faults injected, {} failed",
        proxy.seen().len(),
        failures.len()
    );
    verify("disconnects", seed, &proxy, &failures);
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

/// A fixed schedule for one connection's requests, in order: the listed faults, then `Pass`.
fn fixed(faults: &'static [Fault]) -> impl Fn(u64, &str) -> Fault + Send + Sync + 'static {
    move |n, _| usize::try_from(n).ok().and_then(|n| faults.get(n)).copied().unwrap_or(Fault::Pass)
}

/// Found by the seeded suite (seed 101, `fc441=`): the put's two attempts stall (the first lands
/// 6 s later), then settling meets a throttle and two more stalls. With attempts cut only after a
/// second, the stalls ate the whole budget, the connect answered 500 without a tombstone, and the
/// stalled put landed afterwards: an orphan `CONNECTED` record. Stalled attempts are now cut
/// early enough that settling gets many tries, and the tombstone lands before the answer.
#[tokio::test]
async fn a_connect_whose_put_and_settling_meet_stalls_still_leaves_no_orphan_after_a_500() {
    const SCHEDULE: &[Fault] = &[
        Fault::StallThenLand(STALL),
        Fault::StallThenLand(STALL),
        Fault::ProvisionedThroughput,
        Fault::StallThenLand(STALL),
        Fault::Stall(STALL),
    ];
    let table = table().await;
    let proxy = FaultProxy::start(&dynamodb_endpoint(), fixed(SCHEDULE)).await;
    let store = DynamoStore::new(&dynamodb_client(&proxy.endpoint()), &table.name);
    let handlers = Handlers::new(&store, &table.name);

    let started = Instant::now();
    let answer = handlers
        .connect
        .handle(events::connect("orphan=", "conv-f", "u-f", 1_707_503_000_000), "req", deadline_in(TIMEOUT_MS))
        .await;
    let answer = serde_json::to_value(answer).unwrap();
    assert!(started.elapsed() < Duration::from_millis(TIMEOUT_MS), "answered after {:?}", started.elapsed());
    tokio::time::sleep(STALL + Duration::from_millis(500)).await;

    let stored = status(&table, "orphan=").await;
    let log = proxy.log();
    match answer["statusCode"].as_u64() {
        Some(500) => assert_ne!(stored, Some(ConnectionStatus::Connected), "orphan after a 500:\n{log}"),
        Some(200) => assert_eq!(stored, Some(ConnectionStatus::Connected), "200 without a record:\n{log}"),
        _ => panic!("{answer}\n{log}"),
    }
}

/// Seed 102's `fd231=` answered 500: its update met stalled attempts that, cut only after a second
/// (or a third of the time left), used the whole budget. Four stalls in a row now leave time for
/// the update to land.
#[tokio::test]
async fn a_disconnect_outlasts_four_stalled_attempts_in_a_row() {
    const SCHEDULE: &[Fault] =
        &[Fault::Stall(STALL), Fault::StallThenLand(STALL), Fault::Stall(STALL), Fault::Stall(STALL)];
    let table = table().await;
    Handlers::new(&table.direct, &table.name)
        .connect(events::connect("stalls=", "conv-f", "u-f", 1_707_503_000_000))
        .await;
    let proxy = FaultProxy::start(&dynamodb_endpoint(), fixed(SCHEDULE)).await;
    let store = DynamoStore::new(&dynamodb_client(&proxy.endpoint()), &table.name);
    let handlers = Handlers::new(&store, &table.name);

    let started = Instant::now();
    let answer =
        handlers.disconnect.handle(events::disconnect("stalls=", 1001, "away"), "req", deadline_in(TIMEOUT_MS)).await;
    let answer = serde_json::to_value(answer).unwrap();

    assert!(started.elapsed() < Duration::from_millis(TIMEOUT_MS), "answered after {:?}", started.elapsed());
    assert_eq!(answer["statusCode"], 200, "{answer}\n{}", proxy.log());
    assert_eq!(status(&table, "stalls=").await, Some(ConnectionStatus::Disconnected));
}
