//! Lifecycle events through ws-local with real clients (docs/design.md §12): a connect, a client
//! close, a ban and a lost `$disconnect` produce the events the deployed pipes put on the bus,
//! in a consumer listening on `--events-url` (an EventBridge event per POST), in the log and in
//! the console's state.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};
use support::{Socket, Stack};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Received = Arc<Mutex<Vec<Value>>>;

/// A consumer: keeps the body of every POST; its URL.
async fn consumer() -> (String, Received) {
    let received = Received::default();
    let app = axum::Router::new()
        .route(
            "/events",
            post(async |State(received): State<Received>, body: String| {
                received.lock().unwrap().push(serde_json::from_str(&body).expect("each event is JSON"));
                "ok"
            }),
        )
        .with_state(Arc::clone(&received));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

/// A stack that reads its table every 200 ms and posts its events to a consumer.
async fn watched(lose_disconnects: bool) -> (Stack, Received) {
    let (url, received) = consumer().await;
    let stack = Stack::start(|s| {
        s.events_every = Some(Duration::from_millis(200));
        s.events_url = Some(url);
        s.lose_disconnects = lose_disconnects;
    })
    .await;
    (stack, received)
}

/// Waits until the consumer has an event of `detail_type` for the connection of `user`.
async fn event_of(received: &Received, detail_type: &str, user: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let found = received
            .lock()
            .unwrap()
            .iter()
            .find(|e| e["detail-type"] == detail_type && e["detail"]["userId"] == user)
            .cloned();
        if let Some(event) = found {
            return event;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {detail_type} event for {user}: {:#?}",
            received.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn close(mut socket: Socket, code: u16, reason: &str) {
    let frame = CloseFrame { code: CloseCode::from(code), reason: reason.to_owned().into() };
    socket.close(Some(frame)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_a_client_close_and_a_ban_are_events_in_a_consumer_the_log_and_the_console() {
    let (stack, received) = watched(false).await;

    // A connect, then the client's own close.
    let ana = stack.open("ana", "conv-events").await;
    let opened = event_of(&received, "Connection opened", "ana").await;
    close(ana, 4000, "leaving").await;
    let closed = event_of(&received, "Connection closed", "ana").await;

    // A ban: the service closes bo's connection.
    let _bo = stack.open("bo", "conv-events").await;
    event_of(&received, "Connection opened", "bo").await;
    let (status, _, answer) =
        stack.invoke("WebSocketResponder", &json!({"action": "disconnect", "userId": "bo", "reason": "banned"})).await;
    assert_eq!(status, 200, "{answer}");
    let banned = event_of(&received, "Connection closed", "bo").await;

    // An EventBridge event: its envelope, and the detail the pipes' templates give.
    assert_eq!((opened["source"].as_str(), opened["version"].as_str()), (Some("ws-connection"), Some("0")));
    let id = opened["detail"]["connectionId"].as_str().unwrap();
    assert_eq!(
        opened["detail"],
        json!({"event": "connected", "eventId": opened["detail"]["eventId"], "connectionId": id, "conversationId": "conv-events",
               "userId": "ana", "region": "us-east-1", "at": opened["detail"]["at"]})
    );
    let d = &closed["detail"];
    assert_eq!((d["event"].as_str(), d["connectionId"].as_str()), (Some("disconnected"), Some(id)));
    assert_eq!(
        (d["status"].as_str(), d["reason"].as_str(), d["closeCode"].as_str()),
        (Some("DISCONNECTED"), Some("leaving"), Some("4000"))
    );
    let d = &banned["detail"];
    assert_eq!((d["status"].as_str(), d["reason"].as_str()), (Some("DISCONNECTED"), Some("banned")), "{banned}");

    // Each change once, with the membership function's presence events after each read's
    // lifecycle events; nothing of the client's handshake (IP, user agent, token) in any event.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let all = received.lock().unwrap().clone();
    for event in &all {
        println!("{} {}", event["detail-type"], event["detail"]);
    }
    let kinds: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|e| {
            let detail = &e["detail"];
            (detail["userId"].as_str().unwrap(), e["detail-type"].as_str().unwrap(), detail["event"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("ana", "Connection opened", "connected"),
            ("ana", "Presence changed", "joined"),
            ("ana", "Connection closed", "disconnected"),
            ("ana", "Presence changed", "left"),
            ("bo", "Connection opened", "connected"),
            ("bo", "Presence changed", "joined"),
            ("bo", "Connection closed", "disconnected"),
            ("bo", "Presence changed", "left"),
        ]
    );
    // A presence event names the lifecycle change that made it (the same stream record).
    let joined = &all[1]["detail"];
    assert_eq!(
        joined["eventId"].as_str(),
        Some(format!("{}-1", opened["detail"]["eventId"].as_str().unwrap()).as_str())
    );
    assert_eq!((joined["conversationId"].as_str(), joined["connectionId"].as_str()), (Some("conv-events"), Some(id)));
    let text = serde_json::to_string(&all).unwrap();
    for secret in ["127.0.0.1", "ws-local-tests", "token", "eyJ"] {
        assert!(!text.contains(secret), "{secret} in an event: {text}");
    }

    // The same events in the log and the console's state.
    stack.wait_for_log("[events] Connection closed").await;
    let (_, _, state) = stack.http("GET", "/_console/api/state", &[], "").await;
    let state: Value = serde_json::from_slice(&state).unwrap();
    assert_eq!(state["events"].as_array().map(Vec::len), Some(8), "{}", state["events"]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_disconnect_is_a_close_once_a_post_finds_the_connection_gone() {
    // GIVEN ws-local losing every $disconnect, and carl's connection open
    let (stack, received) = watched(true).await;
    let carl = stack.open("carl", "conv-lost").await;
    event_of(&received, "Connection opened", "carl").await;

    // WHEN the client goes without its $disconnect: no event, the record still says CONNECTED
    close(carl, 1000, "").await;
    stack.wait_for_log("lost on purpose").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let so_far: Vec<Value> = received.lock().unwrap().clone();
    let types: Vec<&str> = so_far.iter().map(|e| e["detail-type"].as_str().unwrap()).collect();
    assert_eq!(types, ["Connection opened", "Presence changed"], "only the open and the join");

    // THEN a post to the conversation meets the 410 and marks it GONE: that is the close
    let (status, _, answer) = stack
        .invoke("WebSocketResponder", &json!({"conversationId": "conv-lost", "messageType": "notice", "payload": {}}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let gone = event_of(&received, "Connection closed", "carl").await;
    assert_eq!(gone["detail"]["status"], "GONE", "{gone}");
    // AND carl has left the conversation
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let so_far: Vec<Value> = received.lock().unwrap().clone();
        if so_far.iter().any(|e| e["detail"]["event"] == "left") {
            for event in &so_far {
                println!("{} {}", event["detail-type"], event["detail"]);
            }
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "carl never left: {so_far:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_with_two_connections_leaves_when_the_last_one_closes() {
    let (stack, received) = watched(false).await;
    let first = stack.open("dee", "conv-two").await;
    let second = stack.open("dee", "conv-two").await;
    let presence = || -> Vec<String> {
        received
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["detail-type"] == "Presence changed")
            .map(|e| e["detail"]["event"].as_str().unwrap().to_owned())
            .collect()
    };
    let opened = || received.lock().unwrap().iter().filter(|e| e["detail-type"] == "Connection opened").count();
    let closed = || received.lock().unwrap().iter().filter(|e| e["detail-type"] == "Connection closed").count();
    let until = async |what: &str, done: &dyn Fn() -> bool| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "{what}: {:#?}", received.lock().unwrap());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    until("both opened", &|| opened() == 2).await;
    close(first, 1000, "").await;
    until("the first closed", &|| closed() == 1).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(presence(), ["joined"], "one join for two connections, no leave while one is open");
    close(second, 1000, "").await;
    until("the second closed", &|| closed() == 2).await;
    until("dee left", &|| presence().len() == 2).await;
    assert_eq!(presence(), ["joined", "left"]);
    stack.stop().await;
}
