//! `resume` against moto's DynamoDB (`DYNAMODB_ENDPOINT`, started by scripts/test.sh): 300
//! messages come back in one answer, in order, read consistently. `RESUME_RUNS=n` repeats the
//! resume and prints its time and the read units it costs (scripts/bench.sh reads them).

use std::sync::Arc;
use std::time::Instant;

use chrono::Duration;
use serde_json::{Value, json};
use ws_routes::{Config, Routes};
use ws_shared::dynamo::DynamoStore;
use ws_shared::store::ConnectionStore;
use ws_shared::stream::{Append, MessageKey, StreamName, StreamStore};
use ws_shared::testing::{Captured, FixedClock, connection_record, deadline_from_now, fresh_table, no_hurry};

#[tokio::test]
async fn a_resume_of_three_hundred_messages_is_one_answer_in_order() {
    // GIVEN a connection of conv-b and 300 messages of ~200 bytes in its stream, on DynamoDB
    let (client, table) = fresh_table("resume").await;
    let store = DynamoStore::new(&client, &table);
    let now = FixedClock::default().0;
    let record = connection_record("b=", "conv-b", None, now);
    store.put_connection(&record, &no_hurry()).await.unwrap();
    let stream = StreamName::parse("conv/us-east-1/conv-b").unwrap();
    let mut bytes = 0;
    for i in 0..300 {
        let message = json!({"messageType": "progress", "correlationId": "run", "sequence": i, "isFinal": false,
                             "payload": {"text": "x".repeat(100)}})
        .to_string();
        bytes += message.len();
        let key = MessageKey::of_message_id(&format!("m{i}"));
        let append = Append {
            stream: &stream,
            key: &key,
            message: &message,
            at: now,
            retention: Duration::hours(24),
            new_epoch: "e",
        };
        store.append(append, &no_hurry()).await.unwrap();
    }
    let vars = std::collections::HashMap::from([("TABLE_CONNECTIONS".to_owned(), table.clone())]);
    let config = Config::from_env(&|n: &str| vars.get(n).cloned()).unwrap();
    let routes = Routes::new(store, &config, Arc::new(Captured::default())).with_clock(Arc::new(FixedClock::default()));
    let body = json!({"action": "resume", "streams": [{"stream": "conv/us-east-1/conv-b", "offset": 0, "epoch": "e"}]});
    let event = json!({"requestContext": {"routeKey": "resume", "eventType": "MESSAGE", "connectionId": "b=",
                                          "connectedAt": 1, "requestTimeEpoch": 1}, "body": body.to_string()});

    // WHEN the client resumes from offset 0
    let runs: usize = std::env::var("RESUME_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(1);
    for run in 0..runs {
        let started = Instant::now();
        let response =
            serde_json::to_value(routes.handle(event.clone(), "req", deadline_from_now(10_000)).await).unwrap();
        let elapsed = started.elapsed();
        let answer: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();

        // THEN all 300 come back in one answer, in offset order
        let offsets: Vec<u64> = answer["streams"][0]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["offset"].as_u64().unwrap())
            .collect();
        assert_eq!(offsets, (1..=300).collect::<Vec<_>>(), "{}", answer["more"]);
        assert!(answer.get("more").is_none());
        // Read units: the record (1), the head (1), and the entries read consistently, 1 per 4 KB
        // (each item: its message and ~90 bytes of keys and attributes).
        let entry_kb = (bytes + 300 * 90).div_ceil(4096);
        println!(
            "resume-300 run {run}: {:.1} ms, {} bytes answered, about {} read units",
            elapsed.as_secs_f64() * 1000.0,
            response["body"].as_str().unwrap().len(),
            2 + entry_kb
        );
    }
}
