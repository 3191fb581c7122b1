//! A broadcast through ws-local with real clients in several conversations (docs/design.md §13):
//! `{"all": true}` split into two segments, each continued with its cursor, reaches every live
//! client once and no client that left; `{"action":"disconnect","all":true}` closes them all with
//! its reason; with `BROADCAST=false` a broadcast is a clear 400 and `$connect` writes no GSI4 entry.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Socket, Stack, manifest_edited, next_close, next_text};
use tokio_tungstenite::tungstenite::Message;

/// Invokes the responder with `event` (split into `segments`), each segment to its end.
async fn run_segments(stack: &Stack, event: &Value, segments: u64) -> Vec<Value> {
    let mut answers = Vec::new();
    for k in 0..segments {
        let mut next = event.clone();
        next["segment"] = json!(k);
        next["segments"] = json!(segments);
        for _ in 0..20 {
            let (status, _, answer) = stack.invoke("WebSocketResponder", &next).await;
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["statusCode"], 200, "{answer}");
            if segments > 1 {
                assert_eq!((answer["segment"].as_u64(), answer["segments"].as_u64()), (Some(k), Some(segments)));
            }
            let cursor = answer.get("cursor").cloned();
            answers.push(answer);
            match cursor {
                Some(cursor) => next["cursor"] = cursor,
                None => break,
            }
        }
    }
    answers
}

/// Polls the table until `count` records are `DISCONNECTED` (each `$disconnect` runs after its close).
async fn wait_for_disconnected(stack: &Stack, count: usize) -> Vec<Value> {
    for _ in 0..200 {
        let records = stack.records().await;
        if records.iter().filter(|r| r["status"] == "DISCONNECTED").count() >= count {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never {count} disconnected: {:?}", stack.records().await);
}

/// Nothing more arrives on `socket` within `ms` (pings aside).
async fn quiet(socket: &mut Socket, ms: u64) -> bool {
    use futures_util::StreamExt as _;
    loop {
        match tokio::time::timeout(Duration::from_millis(ms), socket.next()).await {
            Err(_) => return true,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            Ok(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_in_segments_reaches_every_live_client_once_and_a_close_all_closes_them() {
    // GIVEN 9 clients in three conversations, and one more that left before the broadcast
    let stack = Stack::start(|_| {}).await;
    let mut clients = Vec::new();
    for (i, conversation) in ["conv-a", "conv-b", "conv-c"].iter().cycle().take(9).enumerate() {
        clients.push(stack.open(&format!("user-{i}"), conversation).await);
    }
    let mut left = stack.open("user-left", "conv-a").await;
    left.close(None).await.unwrap();
    let records = wait_for_disconnected(&stack, 1).await;
    let live = records.iter().filter(|r| r["status"] == "CONNECTED").count();
    assert_eq!(live, 9);
    assert!(
        records.iter().all(|r| (r["status"] == "CONNECTED") == r.get("gsi4pk").is_some()),
        "only live connections are in GSI4: {records:?}"
    );

    // WHEN a notice goes to everyone, in two segments
    let event = json!({"all": true, "messageType": "system", "payload": {"text": "maintenance in 10 minutes"}});
    let answers = run_segments(&stack, &event, 2).await;

    // THEN each live client receives it once, as sent (a broadcast has no stream), and the
    // segments' shares add up to the live connections
    let targets: u64 = answers.iter().map(|a| a["targets"].as_u64().unwrap()).sum();
    let posted: u64 = answers.iter().map(|a| a["posted"].as_u64().unwrap()).sum();
    assert_eq!((targets, posted), (9, 9), "{answers:?}");
    for socket in &mut clients {
        let message: Value = serde_json::from_str(&next_text(socket, 10).await).unwrap();
        assert_eq!(message["payload"]["text"], "maintenance in 10 minutes");
        assert!(message.get("stream").is_none() && message.get("offset").is_none(), "{message}");
        assert!(quiet(socket, 300).await, "a client got the broadcast twice");
    }

    // AND a close of everyone closes each with the reason kept on its record
    let close = json!({"action": "disconnect", "all": true, "reason": "deploy"});
    let answers = run_segments(&stack, &close, 1).await;
    assert_eq!(answers.iter().map(|a| a["closed"].as_u64().unwrap()).sum::<u64>(), 9, "{answers:?}");
    for socket in &mut clients {
        let (code, _) = next_close(socket, 10).await;
        assert_eq!(code, 1000);
    }
    let records = wait_for_disconnected(&stack, 10).await;
    let closed: Vec<&Value> = records.iter().filter(|r| r["closeReason"] == "deploy").collect();
    assert_eq!(closed.len(), 9, "{records:?}");
    assert!(records.iter().all(|r| r.get("gsi4pk").is_none()), "a closed connection leaves GSI4");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_broadcast_off_a_broadcast_is_a_clear_400_and_connects_write_no_live_entry() {
    let manifest = manifest_edited(|manifest| {
        for function in manifest["functions"].as_array_mut().unwrap() {
            if let Some(broadcast) = function["environment"].get_mut("BROADCAST") {
                broadcast["default"] = json!("false");
            }
        }
    });
    let stack = Stack::with_manifest(manifest).await;
    let mut client = stack.open("user-1", "conv-a").await;
    let record = stack.wait_for_record("conv-a", |r| r["status"] == "CONNECTED").await;
    assert!(record.get("gsi4pk").is_none(), "BROADCAST=false: no GSI4 entry: {record}");

    let (status, _, answer) =
        stack.invoke("WebSocketResponder", &json!({"all": true, "messageType": "system", "payload": {}})).await;
    assert_eq!((status, answer["statusCode"].as_u64()), (200, Some(400)), "{answer}");
    assert!(
        answer["error"].as_str().unwrap().starts_with("this stage does not broadcast (BROADCAST=false"),
        "{answer}"
    );
    // A post to the conversation still works.
    let (_, _, answer) = stack
        .invoke(
            "WebSocketResponder",
            &json!({"conversationId": "conv-a", "messageType": "system", "payload": {"n": 1}}),
        )
        .await;
    assert_eq!(answer["posted"], 1, "{answer}");
    let message: Value = serde_json::from_str(&next_text(&mut client, 10).await).unwrap();
    assert_eq!(message["payload"]["n"], 1);
    stack.stop().await;
}
