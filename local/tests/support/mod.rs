//! A ws-local started in the test process against moto's DynamoDB (the `DYNAMODB_ENDPOINT` that
//! `scripts/test.sh` starts), with its own table, the real function binaries and a real
//! WebSocket client.

#![allow(dead_code)] // each test binary uses part of this

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use ws_local::issuer::TokenRequest;
use ws_local::{Logs, Running, Settings};
use ws_shared::testing::{dynamodb_endpoint, fresh_table, item_json, scan_all};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where cargo put this package's binary, and the functions' (one target directory).
pub fn bin_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_ws-local")).parent().unwrap().to_path_buf();
    for package in [
        "ws-connect",
        "ws-disconnect",
        "ws-responder",
        "ws-routes",
        "ws-authorizer",
        "ws-membership",
        "ws-local-fixture",
    ] {
        assert!(
            dir.join(package).is_file(),
            "{package} is not built in {}: run cargo build --workspace --bins (scripts/test.sh does)",
            dir.display()
        );
    }
    dir
}

/// A free port on loopback right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Stack {
    pub running: Option<Running>,
    pub table: String,
    pub dynamo: Client,
    pub logs: Logs,
    http: HttpClient<HttpConnector, Full<Bytes>>,
    /// A temporary manifest this stack runs, deleted when it stops.
    manifest: Option<PathBuf>,
}

impl Stack {
    /// A ws-local on a free port with the project's manifest; `configure` changes the settings.
    pub async fn start(configure: impl FnOnce(&mut Settings)) -> Self {
        let (dynamo, table) = fresh_table("ws-local").await;
        let mut settings = Settings::for_project(&root());
        settings.bin_dir = bin_dir();
        settings.table.clone_from(&table);
        settings.dynamodb_endpoint = Some(dynamodb_endpoint());
        settings.logs = Logs::capture();
        configure(&mut settings);
        let logs = settings.logs.clone();
        let running = ws_local::start(settings).await.expect("ws-local starts");
        let http = HttpClient::builder(TokioExecutor::new()).build_http();
        Self { running: Some(running), table, dynamo, logs, http, manifest: None }
    }

    /// A ws-local running the temporary manifest at `path` (from [`manifest_edited`]), which
    /// [`Stack::stop`] deletes.
    pub async fn with_manifest(path: PathBuf) -> Self {
        let mut stack = Self::start(|s| s.manifest.clone_from(&path)).await;
        stack.manifest = Some(path);
        stack
    }

    /// A ws-local running the project's manifest plus the fixture ([`manifest_with_fixture`]).
    pub async fn with_fixture() -> Self {
        Self::with_manifest(manifest_with_fixture()).await
    }

    /// A client of `user` (a token from the issuer) in `conversation` (`correlationId`).
    pub async fn open(&self, user: &str, conversation: &str) -> Socket {
        let query = format!("token={}&correlationId={conversation}", self.token(user));
        self.connect(&query, &[]).await.expect("the handshake succeeds").0
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    pub fn base(&self) -> String {
        self.running().endpoints().base.clone()
    }

    pub fn websocket(&self) -> String {
        self.running().endpoints().websocket()
    }

    pub fn management(&self) -> String {
        self.running().endpoints().management()
    }

    pub fn token(&self, sub: &str) -> String {
        self.running()
            .app
            .issuer
            .token(&TokenRequest { sub: sub.into(), ttl_seconds: None, claims: serde_json::Map::new() })
            .unwrap()
    }

    /// Opens a WebSocket with `query` and the offered subprotocols; `Err`: the handshake's HTTP status.
    pub async fn connect(&self, query: &str, protocols: &[&str]) -> Result<(Socket, Option<String>), u16> {
        let mut request = format!("{}?{query}", self.websocket()).into_client_request().unwrap();
        if !protocols.is_empty() {
            request.headers_mut().insert("sec-websocket-protocol", protocols.join(", ").parse().unwrap());
        }
        request.headers_mut().insert("user-agent", "ws-local-tests/1".parse().unwrap());
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, response)) => {
                let protocol = response.headers().get("sec-websocket-protocol").map(|v| v.to_str().unwrap().to_owned());
                Ok((socket, protocol))
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(e) => panic!("handshake failed without an HTTP answer: {e}"),
        }
    }

    /// Every item of this test's table, as `{attribute: value}` with plain values.
    pub async fn records(&self) -> Vec<Value> {
        scan_all(&self.dynamo, &self.table)
            .await
            .iter()
            .map(|item| {
                let Value::Object(map) = item_json(item) else { unreachable!() };
                map.into_iter().map(|(k, v)| (k, v.as_object().unwrap().values().next().unwrap().clone())).collect()
            })
            .collect()
    }

    /// The record of the only connection of `conversation`.
    pub async fn record_of_conversation(&self, conversation: &str) -> Option<Value> {
        self.records().await.into_iter().find(|r| r["conversationId"] == conversation)
    }

    /// Polls until the record of `conversation` satisfies `check` (the `$disconnect` runs after the close).
    pub async fn wait_for_record(&self, conversation: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let record = self.record_of_conversation(conversation).await;
            if let Some(record) = record.filter(|r| check(r)) {
                return record;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the record of {conversation} never got there: {:?}",
                self.records().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until a captured log line contains `needle`.
    pub async fn wait_for_log(&self, needle: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !self.logs.lines().iter().any(|l| l.contains(needle)) {
            assert!(tokio::time::Instant::now() < deadline, "no log line with {needle:?}: {:#?}", self.logs.lines());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An HTTP request to ws-local: status, headers, body.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, hyper::HeaderMap, Bytes) {
        let mut request = hyper::Request::builder().method(method).uri(format!("{}{path}", self.base()));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self.http.request(request.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, body)
    }

    /// Invokes a function through the Invoke API and returns its JSON result.
    pub async fn invoke(&self, function: &str, payload: &Value) -> (u16, hyper::HeaderMap, Value) {
        let (status, headers, body) = self
            .http("POST", &format!("/2015-03-31/functions/{function}/invocations"), &[], &payload.to_string())
            .await;
        (status, headers, serde_json::from_slice(&body).unwrap_or(json!(null)))
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown(Duration::from_secs(5)).await;
        }
        if let Some(manifest) = self.manifest.take() {
            std::fs::remove_file(manifest).unwrap();
        }
    }
}

/// The next text frame, skipping pings; panics after `secs` seconds.
pub async fn next_text(socket: &mut Socket, secs: u64) -> String {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(secs), socket.next()).await.expect("a frame in time");
        match frame.expect("the socket is open").expect("a frame") {
            Message::Text(text) => return text.to_string(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// The close frame the server sends (code, reason); panics after `secs` seconds.
pub async fn next_close(socket: &mut Socket, secs: u64) -> (u16, String) {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(secs), socket.next()).await.expect("a close in time");
        match frame {
            Some(Ok(Message::Close(Some(frame)))) => return (u16::from(frame.code), frame.reason.to_string()),
            Some(Ok(Message::Close(None))) => return (1005, String::new()),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// A manifest like the project's with the fixture function on `$default` (two-way, 1 s timeout)
/// and again as `EchoAction` on the route `echo`.
pub fn manifest_with_fixture() -> PathBuf {
    manifest_edited(add_fixture_routes)
}

/// Adds the fixture on `$default` and as `EchoAction` on `echo` to a manifest.
pub fn add_fixture_routes(manifest: &mut Value) {
    let functions = manifest["functions"].as_array_mut().unwrap();
    functions.push(json!({
        "name": "EchoFixture", "crate": root().join("local/fixture"), "svc": "fixture",
        "trigger": { "type": "route", "route": "$default", "route_response": true },
        "memory_mb": 128, "timeout_s": 1, "architecture": "arm64", "environment": {}
    }));
    functions.push(json!({
        "name": "EchoAction", "crate": root().join("local/fixture"), "svc": "fixture",
        "trigger": { "type": "route", "route": "echo", "route_response": true },
        "memory_mb": 128, "timeout_s": 1, "architecture": "arm64", "environment": {}
    }));
}

/// A copy of the project's manifest (crates made absolute) changed by `edit`, in a temporary file.
pub fn manifest_edited(edit: impl FnOnce(&mut Value)) -> PathBuf {
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("lambda.manifest.json")).unwrap()).unwrap();
    for f in manifest["functions"].as_array_mut().unwrap().iter_mut() {
        if let Some(krate) = f["crate"].as_str() {
            f["crate"] = json!(root().join(krate));
        }
    }
    edit(&mut manifest);
    let path = std::env::temp_dir().join(format!("ws-local-manifest-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, manifest.to_string()).unwrap();
    path
}
