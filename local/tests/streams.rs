//! Streams through ws-local with real clients: a conversation's posts survive the client's
//! reconnects (`resume`), a client reads only its own streams, and two regions writing one
//! conversation never hand out one offset twice.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use support::{Socket, Stack, free_port, next_text};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

/// What a client delivered from one stream: its epoch and last offset, and the payloads in order.
#[derive(Debug, Default, Clone)]
struct Delivered {
    epoch: Option<String>,
    offset: u64,
    payloads: Vec<Value>,
    duplicates: usize,
}

/// The client's rule for one envelope: the next offset is delivered, an earlier one is a
/// duplicate, a later one is a gap (answer `true`: ask for a resume).
fn take(streams: &mut BTreeMap<String, Delivered>, envelope: &Value) -> bool {
    let stream = envelope["stream"].as_str().expect("a streamed envelope names its stream").to_owned();
    let offset = envelope["offset"].as_u64().expect("and its offset");
    let epoch = envelope["epoch"].as_str().expect("and its epoch").to_owned();
    let state = streams.entry(stream).or_default();
    if state.epoch.as_deref().is_some_and(|e| e != epoch) {
        return true;
    }
    state.epoch.get_or_insert(epoch);
    if offset <= state.offset {
        state.duplicates += 1;
        false
    } else if offset == state.offset + 1 {
        state.offset = offset;
        state.payloads.push(envelope["payload"].clone());
        false
    } else {
        true
    }
}

fn resume_request(streams: &BTreeMap<String, Delivered>, conversation_stream: &str) -> String {
    let mut asked: Vec<Value> =
        streams.iter().map(|(name, s)| json!({"stream": name, "offset": s.offset, "epoch": s.epoch})).collect();
    if !streams.contains_key(conversation_stream) {
        asked.push(json!({"stream": conversation_stream, "offset": 0}));
    }
    json!({"action": "resume", "streams": asked}).to_string()
}

/// Reads frames until `until`, applying live envelopes and resume answers; asks again on a gap or
/// `more`. Returns when the socket closes or the time is up.
async fn run_client(
    socket: &mut Socket,
    streams: &Arc<Mutex<BTreeMap<String, Delivered>>>,
    conversation_stream: &str,
    until: Instant,
) {
    let request = resume_request(&*streams.lock().await, conversation_stream);
    socket.send(Message::text(request)).await.unwrap();
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout(until.saturating_duration_since(Instant::now()), socket.next()).await
    {
        let Message::Text(text) = frame else { continue };
        let value: Value = serde_json::from_str(&text).unwrap();
        let mut ask = false;
        {
            let mut streams = streams.lock().await;
            if value["type"] == "resumed" {
                for stream in value["streams"].as_array().unwrap() {
                    let name = stream["stream"].as_str().unwrap().to_owned();
                    let state = streams.entry(name).or_default();
                    if stream["epoch"] != json!(state.epoch) {
                        assert!(state.epoch.is_none(), "the epoch never changes in this run: {stream}");
                        state.epoch = stream["epoch"].as_str().map(str::to_owned);
                    }
                    assert_eq!(stream["recovered"], true, "nothing expired: {stream}");
                    for message in stream["messages"].as_array().unwrap() {
                        ask |= take(&mut streams, message);
                    }
                    let state = streams.get_mut(stream["stream"].as_str().unwrap()).unwrap();
                    state.offset = state.offset.max(stream["to"].as_u64().unwrap());
                }
                ask |= value["more"] == true;
            } else if value.get("stream").is_some() {
                ask = take(&mut streams, &value);
            } else {
                panic!("an unexpected frame: {value}");
            }
        }
        if ask {
            let request = resume_request(&*streams.lock().await, conversation_stream);
            socket.send(Message::text(request)).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_dropped_three_times_ends_with_every_message_once_in_order() {
    // GIVEN a client in a conversation
    let stack = Stack::start(|_| {}).await;
    let conversation_stream = "conv/us-east-1/conv-drops";
    let streams: Arc<Mutex<BTreeMap<String, Delivered>>> = Arc::default();

    // WHEN 50 progress messages are posted at 20/s (the last isFinal), while the client's socket
    // drops (TCP cut, no close frame: 1006 for the server) for 2 s three times and comes back,
    // resuming from what it delivered
    let publisher = {
        let invoke_url = format!("{}/2015-03-31/functions/WebSocketResponder/invocations", stack.base());
        tokio::spawn(async move {
            let client = reqwest_like::Client::default();
            let started = Instant::now();
            let mut answers = Vec::new();
            for i in 0..50u64 {
                let due = started + Duration::from_millis(50 * i);
                tokio::time::sleep_until(due.into()).await;
                let event = json!({"conversationId": "conv-drops", "correlationId": "run-1", "sequence": i,
                                   "isFinal": i == 49, "messageType": "progress", "payload": {"i": i}});
                answers.push(client.post(&invoke_url, &event).await);
            }
            answers
        })
    };
    let mut socket = stack.open("dana", "conv-drops").await;
    let drops = 3;
    for _ in 0..drops {
        run_client(&mut socket, &streams, conversation_stream, Instant::now() + Duration::from_millis(400)).await;
        drop(socket); // the TCP connection is cut without a close frame
        tokio::time::sleep(Duration::from_secs(2)).await;
        socket = stack.open("dana", "conv-drops").await;
    }
    let end = Instant::now() + Duration::from_secs(15);
    while Instant::now() < end {
        run_client(&mut socket, &streams, conversation_stream, Instant::now() + Duration::from_millis(500)).await;
        if streams.lock().await.get(conversation_stream).is_some_and(|s| s.payloads.len() == 50) {
            break;
        }
    }
    let answers = publisher.await.unwrap();

    // THEN every post was appended once, at offsets 1-50, and the client delivered all 50 once,
    // in order, however many copies arrived
    let offsets: Vec<u64> = answers.iter().map(|a| a["offset"].as_u64().unwrap()).collect();
    assert_eq!(offsets, (1..=50).collect::<Vec<_>>(), "{answers:?}");
    let streams = streams.lock().await;
    let state = &streams[conversation_stream];
    let delivered: Vec<u64> = state.payloads.iter().map(|p| p["i"].as_u64().unwrap()).collect();
    assert_eq!(delivered, (0..50).collect::<Vec<_>>(), "duplicates dropped: {}", state.duplicates);
    println!("50 sent, {drops} drops of 2 s, 50 delivered once in order ({} duplicates dropped)", state.duplicates);
    stack.stop().await;
}

#[tokio::test]
async fn a_client_may_resume_its_own_streams_only() {
    let stack = Stack::start(|_| {}).await;
    let mut socket = stack.open("eve", "conv-eve").await;
    let asks = [
        (json!({"stream": "conv/us-east-1/conv-other"}), "streams[0] is not a stream this connection may read"),
        (json!({"stream": "user/us-east-1/mallory"}), "streams[0] is not a stream this connection may read"),
        (json!({"stream": "room/x"}), "streams[0].stream must name a stream"),
    ];
    for (ask, error) in asks {
        socket.send(Message::text(json!({"action": "resume", "streams": [ask]}).to_string())).await.unwrap();
        let answer: Value = serde_json::from_str(&next_text(&mut socket, 10).await).unwrap();
        assert_eq!(answer["type"], "error", "{answer}");
        assert!(answer["error"].as_str().unwrap().starts_with(error), "{answer}");
    }
    // Its own conversation's and its own user's streams are fine (any region's).
    let own = json!({"action": "resume", "streams": [{"stream": "conv/eu-west-1/conv-eve"}, {"stream": "user/us-east-1/eve"}]});
    socket.send(Message::text(own.to_string())).await.unwrap();
    let answer: Value = serde_json::from_str(&next_text(&mut socket, 10).await).unwrap();
    assert_eq!(answer["type"], "resumed", "{answer}");
    stack.stop().await;
}

#[tokio::test]
async fn a_ping_is_answered_by_the_gateway_itself() {
    let stack = Stack::start(|_| {}).await;
    let mut socket = stack.open("pat", "conv-ping").await;
    socket.send(Message::text(r#"{"action":"ping"}"#)).await.unwrap();
    let answer: Value = serde_json::from_str(&next_text(&mut socket, 10).await).unwrap();
    assert_eq!(answer["type"], "pong", "{answer}");
    assert!(answer["at"].as_i64().unwrap() > 1_700_000_000_000, "{answer}");
    assert!(!stack.logs.lines().iter().any(|l| l.contains("WebSocketRoutes")), "no function ran for a ping");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_regions_posting_to_one_conversation_write_two_streams_each_gap_free() {
    // GIVEN two ws-local instances (two regions) on one table and a client on each
    let (port_a, port_b) = (free_port(), free_port());
    let a = Stack::start(|s| {
        s.listen = ([127, 0, 0, 1], port_a).into();
        s.region = "us-east-1".into();
        s.api_id = "apiuse1".into();
        s.peers = vec![format!("http://127.0.0.1:{port_b}")];
    })
    .await;
    let table = a.table.clone();
    let b = Stack::start(|s| {
        s.listen = ([127, 0, 0, 1], port_b).into();
        s.region = "eu-west-1".into();
        s.api_id = "apieuw1".into();
        s.table.clone_from(&table);
        s.peers = vec![format!("http://127.0.0.1:{port_a}")];
    })
    .await;
    let mut on_a = a.open("ana", "conv-two").await;

    // WHEN both regions post 10 messages each to the conversation at the same time
    let post = |stack: &Stack, region: &'static str| {
        let url = format!("{}/2015-03-31/functions/WebSocketResponder/invocations", stack.base());
        async move {
            let client = reqwest_like::Client::default();
            let mut offsets = Vec::new();
            for i in 0..10 {
                let event =
                    json!({"conversationId": "conv-two", "messageType": "m", "payload": {"region": region, "i": i}});
                let answer = client.post(&url, &event).await;
                assert_eq!(answer["stream"], format!("conv/{region}/conv-two"), "{answer}");
                offsets.push(answer["offset"].as_u64().unwrap());
            }
            offsets
        }
    };
    let (from_a, from_b) = tokio::join!(post(&a, "us-east-1"), post(&b, "eu-west-1"));

    // THEN each region's stream has offsets 1-10, and the client gets 20 messages: 1-10 of each
    assert_eq!(from_a, (1..=10).collect::<Vec<_>>());
    assert_eq!(from_b, (1..=10).collect::<Vec<_>>());
    let mut streams: BTreeMap<String, Delivered> = BTreeMap::new();
    for _ in 0..20 {
        let envelope: Value = serde_json::from_str(&next_text(&mut on_a, 10).await).unwrap();
        // Live order across regions is free; within a stream a gap would be a lost message.
        assert!(!take(&mut streams, &envelope), "a gap in one region's stream: {envelope}");
    }
    let resume = json!({"action": "resume", "streams": [
        {"stream": "conv/us-east-1/conv-two", "offset": 0}, {"stream": "conv/eu-west-1/conv-two", "offset": 0}]});
    on_a.send(Message::text(resume.to_string())).await.unwrap();
    let answer: Value = serde_json::from_str(&next_text(&mut on_a, 10).await).unwrap();
    for stream in answer["streams"].as_array().unwrap() {
        let offsets: Vec<u64> =
            stream["messages"].as_array().unwrap().iter().map(|m| m["offset"].as_u64().unwrap()).collect();
        assert_eq!(offsets, (1..=10).collect::<Vec<_>>(), "{stream}");
    }
    b.stop().await;
    a.stop().await;
}

/// A small JSON-over-HTTP client for the Invoke API (what the test drives like Step Functions).
mod reqwest_like {
    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Full};
    use hyper_util::client::legacy::Client as HttpClient;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;
    use serde_json::Value;

    #[derive(Clone)]
    pub struct Client(HttpClient<HttpConnector, Full<Bytes>>);

    impl Default for Client {
        fn default() -> Self {
            Self(HttpClient::builder(TokioExecutor::new()).build_http())
        }
    }

    impl Client {
        pub async fn post(&self, url: &str, body: &Value) -> Value {
            let request = hyper::Request::post(url).body(Full::new(Bytes::from(body.to_string()))).unwrap();
            let response = self.0.request(request).await.unwrap();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            serde_json::from_slice(&bytes).unwrap()
        }
    }
}
