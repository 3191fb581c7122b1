//! Load for `scripts/bench.sh local`: real WebSocket clients and HTTP callers against a running
//! ws-local. Each scenario prints one JSON line of figures.
//!
//!   load idle    --base URL --count 10000 --pid PID    sockets held open, ws-local's memory for them
//!   load posts   --base URL --sockets 64 --total 200000 --dynamodb URL --table T   @connections posts/s
//!   load connect --base URL --count 200                 handshake (authorizer + $connect + record) p50/p99
//!   load fanout  --base URL --count 1000 --runs 5       responder fan-out until every client has it

#![allow(clippy::cast_precision_loss)] // figures for a report

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use futures_util::{StreamExt as _, stream};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug, Parser)]
struct Cli {
    /// ws-local, e.g. `http://127.0.0.1:3001`
    #[arg(long, global = true, default_value = "http://127.0.0.1:3001")]
    base: String,
    #[arg(long, global = true, default_value = "local")]
    stage: String,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    Idle {
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// ws-local's process id, for its resident memory.
        #[arg(long)]
        pid: u32,
    },
    Posts {
        #[arg(long, default_value_t = 64)]
        sockets: usize,
        #[arg(long, default_value_t = 64)]
        senders: usize,
        #[arg(long, default_value_t = 200_000)]
        total: u64,
        #[arg(long)]
        dynamodb: String,
        #[arg(long)]
        table: String,
    },
    Connect {
        #[arg(long, default_value_t = 200)]
        count: usize,
    },
    Fanout {
        #[arg(long, default_value_t = 1000)]
        count: usize,
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
}

#[tokio::main]
async fn main() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let cli = Cli::parse();
    // Every client carries a token from the local issuer: the authorizer runs on every connect.
    let token =
        post_json(&cli.base, "/issuer/token", &json!({ "sub": "bench" })).await["token"].as_str().unwrap().to_owned();
    let ws = format!("{}/{}?token={token}&", cli.base.replacen("http://", "ws://", 1), cli.stage);
    let result = match cli.scenario {
        Scenario::Idle { count, concurrency, pid } => idle(&ws, count, concurrency, pid).await,
        Scenario::Posts { sockets, senders, total, dynamodb, table } => {
            posts(&cli.base, &cli.stage, &ws, sockets, senders, total, &dynamodb, &table).await
        }
        Scenario::Connect { count } => connect_latency(&ws, count).await,
        Scenario::Fanout { count, runs } => fanout(&cli.base, &ws, count, runs).await,
    };
    println!("{result}");
}

async fn open(url: &str) -> Socket {
    let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
    socket
}

async fn open_many(url: &str, count: usize, concurrency: usize) -> Vec<Socket> {
    stream::iter(0..count).map(|_| open(url)).buffer_unordered(concurrency).collect().await
}

fn rss_kib(pid: u32) -> u64 {
    ws_shared::process::status_kib(Some(pid), "VmRSS").expect("ws-local runs (VmRSS)")
}

async fn idle(ws: &str, count: usize, concurrency: usize, pid: u32) -> Value {
    let before = rss_kib(pid);
    let started = Instant::now();
    let mut sockets = open_many(&format!("{ws}correlationId=idle"), count, concurrency).await;
    let open_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(pid);
    // Every socket is still open: a ping each comes back as a pong.
    let mut alive = 0;
    for socket in &mut sockets {
        if futures_util::SinkExt::send(socket, Message::Ping(Bytes::new())).await.is_ok() {
            while let Ok(Some(Ok(message))) = tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
                if matches!(message, Message::Pong(_)) {
                    alive += 1;
                    break;
                }
            }
        }
    }
    json!({ "sockets": count, "alive": alive, "open_seconds": round(open_s), "connects_per_second": round(count as f64 / open_s),
            "rss_before_mib": round(before as f64 / 1024.0), "rss_after_mib": round(after as f64 / 1024.0),
            "kib_per_socket": round((after.saturating_sub(before)) as f64 / count as f64) })
}

#[allow(clippy::too_many_arguments)]
async fn posts(
    base: &str,
    stage: &str,
    ws: &str,
    sockets: usize,
    senders: usize,
    total: u64,
    dynamodb: &str,
    table: &str,
) -> Value {
    let conversation = format!("posts-{}", std::process::id());
    let opened = open_many(&format!("{ws}correlationId={conversation}"), sockets, 16).await;
    let ids = connection_ids(dynamodb, table, &conversation).await;
    assert_eq!(ids.len(), sockets, "every socket has its record");
    let received = Arc::new(AtomicU64::new(0));
    for mut socket in opened {
        let received = Arc::clone(&received);
        tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                if matches!(message, Message::Text(_)) {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(senders).build_http::<Full<Bytes>>();
    let urls: Arc<Vec<String>> =
        Arc::new(ids.iter().map(|id| format!("{base}/{stage}/@connections/{}", encode(id))).collect());
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..senders)
        .map(|_| {
            let (client, urls, sent) = (client.clone(), Arc::clone(&urls), Arc::clone(&sent));
            tokio::spawn(async move {
                loop {
                    let n = sent.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        break;
                    }
                    let url = &urls[usize::try_from(n).unwrap() % urls.len()];
                    let request = hyper::Request::post(url).body(Full::new(Bytes::from_static(b"{\"n\":1}"))).unwrap();
                    let response = client.request(request).await.expect("post");
                    assert_eq!(response.status(), 200);
                    let _ = response.into_body().collect().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let acked = started.elapsed().as_secs_f64();
    while received.load(Ordering::Relaxed) < total {
        assert!(
            started.elapsed() < Duration::from_mins(2),
            "only {} of {total} arrived",
            received.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delivered = started.elapsed().as_secs_f64();
    json!({ "posts": total, "sockets": sockets, "senders": senders, "acked_seconds": round(acked),
            "delivered_seconds": round(delivered), "posts_per_second": round(total as f64 / delivered) })
}

async fn connection_ids(dynamodb: &str, table: &str, conversation: &str) -> Vec<String> {
    let client = ws_shared::testing::dynamodb_client(dynamodb);
    ws_shared::testing::scan_all(&client, table)
        .await
        .iter()
        .map(ws_shared::testing::item_json)
        .filter(|item| item["conversationId"]["S"] == conversation)
        .map(|item| item["connectionId"]["S"].as_str().unwrap().to_owned())
        .collect()
}

fn encode(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn post_json(base: &str, path: &str, body: &Value) -> Value {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = hyper::Request::post(format!("{base}{path}")).body(Full::new(Bytes::from(body.to_string()))).unwrap();
    let response = client.request(request).await.expect("ws-local answers");
    serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap_or(Value::Null)
}

async fn connect_latency(ws: &str, count: usize) -> Value {
    let url = format!("{ws}correlationId=latency");
    drop(open(&url).await); // warm instances
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let mut socket = open(&url).await;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        let _ = socket.close(None).await;
    }
    times.sort_by(f64::total_cmp);
    json!({ "connects": count, "p50_ms": round(percentile(&times, 50)), "p99_ms": round(percentile(&times, 99)),
            "max_ms": round(times[times.len() - 1]), "samples_ms": times.iter().copied().map(round).collect::<Vec<_>>() })
}

async fn fanout(base: &str, ws: &str, count: usize, runs: usize) -> Value {
    let sockets = open_many(&format!("{ws}correlationId=fanout"), count, 32).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<i64>();
    let mut readers = Vec::new();
    for mut socket in sockets {
        let tx = tx.clone();
        readers.push(tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                if let Message::Text(text) = message {
                    let sequence = serde_json::from_str::<Value>(&text).ok().and_then(|v| v["sequence"].as_i64());
                    let _ = tx.send(sequence.unwrap_or(-1));
                }
            }
        }));
    }
    let mut times = Vec::new();
    let mut invocations = Vec::new();
    for run in 0..=runs {
        let started = Instant::now();
        let mut event = json!({ "conversationId": "fanout", "messageType": "progress", "sequence": run, "isFinal": false,
                                "payload": { "text": "fan-out" } });
        // As the sample state machine does: continue with each answer's cursor until none, and
        // retry a 500 that carries a cursor (at most 5 times in a row).
        let (mut calls, mut retries) = (0, 0);
        loop {
            calls += 1;
            let result = post_json(base, "/2015-03-31/functions/WebSocketResponder/invocations", &event).await;
            if result["statusCode"] == 500 && result.get("cursor").is_some() && retries < 5 {
                retries += 1;
            } else {
                assert_eq!(result["statusCode"], 200, "{result}");
                retries = 0;
            }
            match result.get("cursor") {
                Some(cursor) => event["cursor"] = cursor.clone(),
                None => break,
            }
        }
        let mut got = 0;
        while got < count {
            if rx.recv().await == Some(i64::try_from(run).unwrap()) {
                got += 1;
            }
        }
        if run > 0 {
            times.push(started.elapsed().as_secs_f64() * 1000.0); // run 0 warms the responder
            invocations.push(calls);
        }
    }
    // Close the clients (later scenarios open their own).
    for reader in readers {
        reader.abort();
    }
    times.sort_by(f64::total_cmp);
    let median = percentile(&times, 50);
    json!({ "connections": count, "runs": runs, "median_ms": round(median),
            "min_ms": round(times[0]), "max_ms": round(times[times.len() - 1]),
            "posts_per_second": round(count as f64 / (median / 1000.0)),
            "invocations": invocations, "samples_ms": times.iter().copied().map(round).collect::<Vec<_>>() })
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    let rank = (sorted.len() * p).div_ceil(100).max(1) - 1;
    sorted[rank.min(sorted.len() - 1)]
}

#[allow(clippy::cast_precision_loss)]
fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
