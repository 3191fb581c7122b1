//! Presence through ws-local with real clients (docs/design.md §12): a client asks on the
//! `presence` route who is online in its conversation and gets each user with their connections;
//! asking about another conversation is refused; the responder's `presence` action answers the
//! same.

mod support;

use futures_util::SinkExt as _;
use serde_json::{Value, json};
use support::{Stack, next_text};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_asks_who_is_online_in_its_conversation_and_nowhere_else() {
    // GIVEN ana twice and bo in conv-a, carl in conv-b
    let stack = Stack::start(|_| {}).await;
    let mut ana = stack.open("ana", "conv-a").await;
    let _ana_again = stack.open("ana", "conv-a").await;
    let _bo = stack.open("bo", "conv-a").await;
    let _carl = stack.open("carl", "conv-b").await;

    // WHEN ana asks on the presence route
    ana.send(Message::text(json!({"action": "presence"}).to_string())).await.unwrap();
    let answer: Value = serde_json::from_str(&next_text(&mut ana, 10).await).unwrap();

    // THEN ana (2) and bo (1) are online there
    assert_eq!((answer["type"].as_str(), answer["conversationId"].as_str()), (Some("presence"), Some("conv-a")));
    let users: Vec<(&str, u64)> = answer["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["userId"].as_str().unwrap(), u["connections"].as_u64().unwrap()))
        .collect();
    assert_eq!(users, [("ana", 2), ("bo", 1)], "{answer}");
    println!("the presence route answered: {answer}");

    // AND conv-b is not hers to see
    ana.send(Message::text(json!({"action": "presence", "conversationId": "conv-b"}).to_string())).await.unwrap();
    let refused: Value = serde_json::from_str(&next_text(&mut ana, 10).await).unwrap();
    assert_eq!((refused["type"].as_str(), refused["action"].as_str()), (Some("error"), Some("presence")), "{refused}");

    // AND the responder's presence action (a backend's question) answers conv-b
    let (_, _, backend) =
        stack.invoke("WebSocketResponder", &json!({"action": "presence", "conversationId": "conv-b"})).await;
    println!("the responder's presence answered: {backend}");
    assert_eq!(backend["users"], json!([{"userId": "carl", "connections": 1, "since": backend["users"][0]["since"]}]));
    stack.stop().await;
}
