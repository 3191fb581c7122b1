//! A fan-out through ws-local to many real WebSocket clients, driven as the sample state machine
//! drives it: invoke `WebSocketResponder`, continue with each answer's cursor until none.
//!
//! `WS_LOCAL_FANOUT_CLIENTS` sets how many clients connect: 2,000 by default (`scripts/test.sh`),
//! 10,000 in the nightly run (`scripts/nightly.sh`), where moto's slow index pages make the
//! responder continue with its cursor several times.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::json;
use support::{Stack, manifest_edited};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_continued_by_its_cursor_reaches_every_client_exactly_once() {
    let clients: usize = std::env::var("WS_LOCAL_FANOUT_CLIENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(2_000);
    // Each client is two sockets in this process (client and server side): raise the limit (root
    // may raise the hard one too), and fit the crowd to what the machine allows.
    let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, 65_536, 65_536);
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
    let fits = usize::try_from(limit.saturating_sub(1_000) / 2).unwrap_or(usize::MAX);
    if fits < clients {
        println!("open-file limit {limit}: {fits} clients instead of {clients}");
    }
    let clients = clients.min(fits);
    // GIVEN a responder with a 10 s timeout (moto reads a 10,000-entry index partition slowly)
    let manifest = manifest_edited(|manifest| {
        for function in manifest["functions"].as_array_mut().unwrap() {
            if function["name"] == "WebSocketResponder" {
                function["timeout_s"] = json!(10);
            }
        }
    });
    let stack = Stack::start(|settings| {
        settings.manifest = manifest;
        settings.authorizer = false;
    })
    .await;

    // AND `clients` real clients connected to one conversation, each counting what it receives
    let opened = Instant::now();
    let sockets: Vec<_> = futures_util::stream::iter(0..clients)
        .map(|_| async { stack.connect("correlationId=conv-crowd", &[]).await.expect("accepted").0 })
        .buffer_unordered(32)
        .collect()
        .await;
    println!("{clients} clients connected in {:.1} s", opened.elapsed().as_secs_f64());
    let received: Arc<Vec<AtomicUsize>> = Arc::new((0..clients).map(|_| AtomicUsize::new(0)).collect());
    let total = Arc::new(AtomicUsize::new(0));
    for (i, mut socket) in sockets.into_iter().enumerate() {
        let (received, total) = (Arc::clone(&received), Arc::clone(&total));
        tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                if let Message::Text(text) = message
                    && text.contains("\"crowd-notice\"")
                {
                    received[i].fetch_add(1, Ordering::Relaxed);
                    total.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }

    // WHEN the caller invokes the responder and continues with each cursor until there is none
    let started = Instant::now();
    let mut event = json!({"conversationId": "conv-crowd", "messageType": "crowd-notice", "payload": {"n": 1}});
    let mut answers = Vec::new();
    let mut retries = 0;
    loop {
        let (status, _, answer) = stack.invoke("WebSocketResponder", &event).await;
        assert_eq!(status, 200, "{answer}");
        // As the state machine: a 500 with a cursor (moto's index pages of a 10,000-entry
        // partition can take longer than an invocation) is retried from the cursor, a few times.
        if answer["statusCode"] == 500 && answer.get("cursor").is_some() && retries < 5 {
            retries += 1;
        } else {
            assert_eq!(answer["statusCode"], 200, "{answer}");
            retries = 0;
        }
        answers.push(answer.clone());
        match answer.get("cursor") {
            Some(cursor) => event["cursor"] = cursor.clone(),
            None => break,
        }
        assert!(answers.len() < 200, "the fan-out does not end: {answers:?}");
    }
    let posted: u64 = answers.iter().map(|a| a["posted"].as_u64().unwrap_or(0)).sum();
    println!(
        "fan-out to {clients}: {} invocations, {posted} posted in {:.2} s",
        answers.len(),
        started.elapsed().as_secs_f64()
    );

    // THEN every client got the message exactly once
    let waited = Instant::now();
    while total.load(Ordering::Relaxed) < clients && waited.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // a duplicate would be on its way by now
    assert_eq!(posted, clients as u64, "{answers:?}");
    let counts: Vec<usize> = received.iter().map(|n| n.load(Ordering::Relaxed)).collect();
    let missing = counts.iter().filter(|&&n| n == 0).count();
    let twice = counts.iter().filter(|&&n| n > 1).count();
    assert_eq!((missing, twice), (0, 0), "clients without the message, clients with it twice");
    stack.stop().await;
}
