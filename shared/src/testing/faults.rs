//! A fault proxy for tests: an HTTP server on loopback that forwards to an upstream (moto's
//! server, a JWKS server) and, by a plan the test gives, fails requests the ways AWS does:
//! throttling, a 500, a connection reset, a response lost after the request landed, or a stall
//! past the caller's deadline (after which the request may still land, as on AWS).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::loopback::Loopback;

/// What the proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward it and return the answer.
    Pass,
    /// Answer 400 `ProvisionedThroughputExceededException` without forwarding.
    ProvisionedThroughput,
    /// Answer 400 `ThrottlingException` without forwarding.
    Throttling,
    /// Answer 500 `InternalServerError` without forwarding.
    InternalError,
    /// Close the connection without an answer, without forwarding.
    Reset,
    /// Forward it (it lands), then answer 500 as if the response was lost on the way back.
    LostResponse,
    /// Hold it for the duration, then forward it (it lands late) and close without an answer.
    StallThenLand(Duration),
    /// Hold it for the duration, then drop it.
    Stall(Duration),
}

impl Fault {
    /// True when the request reached the upstream (or will).
    pub fn lands(self) -> bool {
        matches!(self, Self::Pass | Self::LostResponse | Self::StallThenLand(_))
    }
}

/// One request the proxy saw: which operation (the `X-Amz-Target` suffix, else the path), what it
/// did with it, and when, so a failed assertion can show what happened to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The request's sequence number (from 0), as the plan was given it.
    pub n: u64,
    pub operation: String,
    pub fault: Fault,
    /// The connection the request is about: the first `CONN#<id>` in its body, if any.
    pub connection: Option<String>,
    /// When it arrived, from the proxy's start.
    pub arrived: Duration,
    /// When the upstream took it (for a fault that lands), from the proxy's start.
    pub landed: Option<Duration>,
    /// When the proxy answered or closed, from the proxy's start.
    pub ended: Option<Duration>,
    /// The upstream's status, when it answered (a landed write's own outcome: 400 is a failed condition).
    pub upstream_status: Option<u16>,
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Option<Duration>| d.map_or_else(|| "-".to_owned(), |d| format!("{}ms", d.as_millis()));
        write!(
            f,
            "#{:<5} {:>7} {:<12} {:<24} landed {:>7} upstream {:>3} ended {:>7}  {}",
            self.n,
            ms(Some(self.arrived)),
            self.operation,
            format!("{:?}", self.fault),
            ms(self.landed),
            self.upstream_status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
            ms(self.ended),
            self.connection.as_deref().unwrap_or("-"),
        )
    }
}

type Plan = dyn Fn(u64, &str) -> Fault + Send + Sync;

struct Shared {
    upstream: String,
    plan: Box<Plan>,
    next: AtomicU64,
    seen: Mutex<BTreeMap<u64, Seen>>,
    client: Client<HttpConnector, Full<Bytes>>,
    started: Instant,
}

impl Shared {
    fn update(&self, n: u64, change: impl FnOnce(&mut Seen, Duration)) {
        let now = self.started.elapsed();
        if let Some(seen) = self.seen.lock().expect("not poisoned").get_mut(&n) {
            change(seen, now);
        }
    }
}

/// The running proxy; stops when dropped.
pub struct FaultProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    _server: Loopback,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Starts on a free loopback port in front of `upstream` (`http://host:port`). `plan` gets
    /// each request's sequence number (from 0) and operation, and says what to do with it.
    pub async fn start(upstream: &str, plan: impl Fn(u64, &str) -> Fault + Send + Sync + 'static) -> Self {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            plan: Box::new(plan),
            next: AtomicU64::new(0),
            seen: Mutex::new(BTreeMap::new()),
            client: Client::builder(TokioExecutor::new()).build_http(),
            started: Instant::now(),
        });
        let state = Arc::clone(&shared);
        let server = Loopback::start(move |req| handle(Arc::clone(&state), req)).await;
        Self { addr: server.addr, shared, _server: server }
    }

    /// `http://127.0.0.1:{port}`: the endpoint to give the client under test.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("not poisoned").values().cloned().collect()
    }

    /// The log of the requests about `connection` (one line each), for an assertion's message.
    pub fn log_of(&self, connection: &str) -> String {
        self.seen().iter().filter(|s| s.connection.as_deref() == Some(connection)).fold(String::new(), |mut out, s| {
            let _ = writeln!(out, "  {s}");
            out
        })
    }

    /// The whole log, one line per request (what a nightly run uploads when it fails).
    pub fn log(&self) -> String {
        self.seen().iter().fold(String::new(), |mut out, s| {
            let _ = writeln!(out, "{s}");
            out
        })
    }
}

/// The connection id in a DynamoDB request body: the first `CONN#<id>` key value.
fn connection_in(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("CONN#")? + "CONN#".len();
    let rest = &text[start..];
    Some(rest[..rest.find('"').unwrap_or(rest.len())].to_owned())
}

/// Why the proxy closed a connection without an answer.
#[derive(Debug, thiserror::Error)]
#[error("fault proxy: connection reset on purpose")]
struct ResetOnPurpose;

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, ResetOnPurpose> {
    let operation = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|target| target.rsplit('.').next())
        .map_or_else(|| req.uri().path().to_owned(), str::to_owned);
    let arrived = shared.started.elapsed();
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| ResetOnPurpose)?.to_bytes();
    let n = shared.next.fetch_add(1, Ordering::Relaxed);
    let fault = (shared.plan)(n, &operation);
    let seen = Seen {
        n,
        operation,
        fault,
        connection: connection_in(&body),
        arrived,
        landed: None,
        ended: None,
        upstream_status: None,
    };
    shared.seen.lock().expect("not poisoned").insert(n, seen);
    let answer = respond(&shared, n, fault, parts, body).await;
    shared.update(n, |seen, now| seen.ended = Some(now));
    answer
}

/// Forwards `forward` to the upstream; notes when it landed and what the upstream said.
async fn forward_to_upstream(
    shared: &Shared,
    n: u64,
    forward: Request<Full<Bytes>>,
) -> Result<Response<Full<Bytes>>, ResetOnPurpose> {
    let answer = shared.client.request(forward).await.map_err(|_| ResetOnPurpose);
    let answer = match answer {
        Ok(answer) => {
            let (parts, body) = answer.into_parts();
            let body = body.collect().await.map_err(|_| ResetOnPurpose)?.to_bytes();
            Ok(Response::from_parts(parts, Full::new(body)))
        }
        Err(err) => Err(err),
    };
    let status = answer.as_ref().ok().map(|a| a.status().as_u16());
    shared.update(n, |seen, now| {
        seen.landed = Some(now);
        seen.upstream_status = status;
    });
    answer
}

async fn respond(
    shared: &Arc<Shared>,
    n: u64,
    fault: Fault,
    parts: hyper::http::request::Parts,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, ResetOnPurpose> {
    let mut forward = Request::builder().method(parts.method).uri(format!(
        "{}{}",
        shared.upstream,
        parts.uri.path_and_query().map_or("/", hyper::http::uri::PathAndQuery::as_str)
    ));
    for (name, value) in &parts.headers {
        if name != hyper::header::HOST {
            forward = forward.header(name, value);
        }
    }
    let forward = forward.body(Full::new(body)).expect("a request built from a valid one");

    match fault {
        Fault::Pass => forward_to_upstream(shared, n, forward).await,
        Fault::ProvisionedThroughput => Ok(dynamodb_error(
            StatusCode::BAD_REQUEST,
            "ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded.",
        )),
        Fault::Throttling => Ok(dynamodb_error(StatusCode::BAD_REQUEST, "ThrottlingException", "Rate exceeded")),
        Fault::InternalError => {
            Ok(dynamodb_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Internal server error"))
        }
        Fault::Reset => Err(ResetOnPurpose),
        Fault::LostResponse => {
            let _ = forward_to_upstream(shared, n, forward).await;
            Ok(dynamodb_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Internal server error"))
        }
        Fault::StallThenLand(stall) => {
            // Its own task: the caller gives up and closes, the request still lands.
            let shared = Arc::clone(shared);
            let landed = tokio::spawn(async move {
                tokio::time::sleep(stall).await;
                let _ = forward_to_upstream(&shared, n, forward).await;
            });
            let _ = landed.await;
            Err(ResetOnPurpose)
        }
        Fault::Stall(stall) => {
            tokio::time::sleep(stall).await;
            Err(ResetOnPurpose)
        }
    }
}

/// An error as DynamoDB sends it (`__type` in a JSON 1.0 body).
fn dynamodb_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-RequestId", "FAULTPROXY")
        .body(Full::new(Bytes::from(format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{message}"}}"#
        ))))
        .expect("a valid response")
}

/// A small seeded generator (`SplitMix64`) for fault schedules: the same seed, the same faults.
#[derive(Debug, Clone)]
pub struct Seeded(u64);

impl Seeded {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}
