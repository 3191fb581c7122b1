//! A fault proxy for tests: an HTTP server on loopback that forwards to an upstream (moto's
//! server, a JWKS server) and, by a plan the test gives, fails requests the ways AWS does:
//! throttling, a 500, a connection reset, a response lost after the request landed, or a stall
//! past the caller's deadline (after which the request may still land, as on AWS).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// One request the proxy saw: which operation (the `X-Amz-Target` suffix, else the path) and
/// what it did with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub operation: String,
    pub fault: Fault,
}

type Plan = dyn Fn(u64, &str) -> Fault + Send + Sync;

struct Shared {
    upstream: String,
    plan: Box<Plan>,
    next: AtomicU64,
    seen: Mutex<Vec<Seen>>,
    client: Client<HttpConnector, Full<Bytes>>,
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
            seen: Mutex::new(Vec::new()),
            client: Client::builder(TokioExecutor::new()).build_http(),
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
        self.shared.seen.lock().expect("not poisoned").clone()
    }
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
    let n = shared.next.fetch_add(1, Ordering::Relaxed);
    let fault = (shared.plan)(n, &operation);
    shared.seen.lock().expect("not poisoned").push(Seen { operation, fault });

    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| ResetOnPurpose)?.to_bytes();
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
        Fault::Pass => {
            let answer = shared.client.request(forward).await.map_err(|_| ResetOnPurpose)?;
            let (parts, body) = answer.into_parts();
            let body = body.collect().await.map_err(|_| ResetOnPurpose)?.to_bytes();
            Ok(Response::from_parts(parts, Full::new(body)))
        }
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
            let _ = shared.client.request(forward).await;
            Ok(dynamodb_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Internal server error"))
        }
        Fault::StallThenLand(stall) => {
            // Its own task: the caller gives up and closes, the request still lands.
            let landed = tokio::spawn(async move {
                tokio::time::sleep(stall).await;
                let _ = shared.client.request(forward).await;
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
