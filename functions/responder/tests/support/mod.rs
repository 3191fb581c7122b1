//! A Management API stand-in for the responder's tests: a real HTTP server on loopback that
//! answers `POST /{stage}/@connections/{id}` with 200 for known ids and a `GoneException` 410
//! for others, closes a known one on `DELETE` (204, then gone), and records what it received. With a quota it behaves like an AWS account's
//! Management API: a token bucket of posts/s (with a burst), and every post past it answered
//! `429` `LimitExceededException` (not delivered); ids marked `full` are always refused the same
//! way (a client whose buffer is full). Like API Gateway it checks each request's SigV4 signature
//! (with the tests' secret key) and records whether it held; [`StandIn::answer_next`] scripts
//! error answers (a 500, a 403…) for the next requests.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use ws_shared::testing::loopback::Loopback;

/// One POST the stand-in received.
#[derive(Debug, Clone)]
pub struct Post {
    pub stage: String,
    /// The connection id, percent-decoded.
    pub connection_id: String,
    /// The path as sent (still percent-encoded).
    pub raw_path: String,
    pub body: Vec<u8>,
    pub authorization: Option<String>,
    pub amz_date: Option<String>,
    /// The signature is the one the request's own signed headers, path and body give with the
    /// tests' secret key (what API Gateway checks before anything else).
    pub signature_valid: bool,
    /// When the stand-in took it.
    pub at: std::time::Instant,
}

#[derive(Default)]
struct State {
    known: HashSet<String>,
    posts: Vec<Post>,
    /// How long each answer is held back.
    delay: std::time::Duration,
    quota: Option<Quota>,
    /// Always throttled.
    full: HashSet<String>,
    /// Requests answered 429, per connection, and when.
    refused: Vec<String>,
    refused_at: Vec<std::time::Instant>,
    /// Connections closed with `DELETE` (each then gone).
    closed: Vec<String>,
    /// Connections asked about with `GET` (`GetConnection`).
    checked: Vec<String>,
    /// Statuses to answer the next requests with, before anything else.
    script: std::collections::VecDeque<u16>,
    /// Every request received, answered or not.
    requests: usize,
}

/// A token bucket: `rate` posts/s, at most `burst` at once.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub rate: f64,
    pub burst: f64,
    tokens: f64,
    at: Option<std::time::Instant>,
}

impl Quota {
    pub fn new(rate: f64, burst: f64) -> Self {
        Self { rate, burst, tokens: burst, at: None }
    }

    fn take(&mut self) -> bool {
        let now = std::time::Instant::now();
        let elapsed = self.at.map_or(0.0, |at| now.duration_since(at).as_secs_f64());
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub struct StandIn {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: Loopback,
}

impl StandIn {
    /// Starts on a free loopback port; `known` ids are connected, every other id is gone.
    pub async fn start(known: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self::start_slow(known, std::time::Duration::ZERO).await
    }

    /// Like [`StandIn::start`], but every answer comes `delay` late.
    pub async fn start_slow(known: impl IntoIterator<Item = impl Into<String>>, delay: std::time::Duration) -> Self {
        let state = Arc::new(Mutex::new(State {
            known: known.into_iter().map(Into::into).collect(),
            posts: Vec::new(),
            delay,
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        let server = Loopback::start(move |req| answer(Arc::clone(&shared), req)).await;
        Self { addr: server.addr, state, server }
    }

    /// Like [`StandIn::start_slow`], behind an account quota; `full` ids are always throttled.
    pub async fn with_quota(
        known: impl IntoIterator<Item = impl Into<String>>,
        delay: std::time::Duration,
        quota: Quota,
        full: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let standin = Self::start_slow(known, delay).await;
        {
            let mut state = standin.state.lock().unwrap();
            state.quota = Some(quota);
            state.full = full.into_iter().map(Into::into).collect();
        }
        standin
    }

    /// The connection of every `GET` (is it live?), in order.
    pub fn checked(&self) -> Vec<String> {
        self.state.lock().unwrap().checked.clone()
    }

    /// The connection of every `DELETE` that closed one, in order.
    pub fn closed(&self) -> Vec<String> {
        self.state.lock().unwrap().closed.clone()
    }

    /// The connection of every request answered 429, in order.
    pub fn refused(&self) -> Vec<String> {
        self.state.lock().unwrap().refused.clone()
    }

    /// Posts taken and requests refused in each `bin` from `start`: `[[taken, refused], …]`.
    pub fn timeline(&self, start: std::time::Instant, bin: std::time::Duration) -> Vec<[u64; 2]> {
        let state = self.state.lock().unwrap();
        let index = |at: std::time::Instant| {
            usize::try_from(at.saturating_duration_since(start).as_nanos() / bin.as_nanos()).unwrap_or(usize::MAX)
        };
        let taken = state.posts.iter().map(|p| (index(p.at), 0));
        let refused = state.refused_at.iter().map(|&at| (index(at), 1));
        let mut bins = Vec::new();
        for (i, kind) in taken.chain(refused) {
            if bins.len() <= i {
                bins.resize(i + 1, [0, 0]);
            }
            bins[i][kind] += 1;
        }
        bins
    }

    /// `http://127.0.0.1:{port}/{stage}`: what the responder is given as its endpoint.
    pub fn endpoint(&self, stage: &str) -> String {
        format!("http://{}/{stage}", self.addr)
    }

    pub fn posts(&self) -> Vec<Post> {
        self.state.lock().unwrap().posts.clone()
    }

    /// Answers the next requests with `statuses`, in order (each with the error type API Gateway
    /// gives that status), before any other rule.
    pub fn answer_next(&self, statuses: impl IntoIterator<Item = u16>) {
        self.state.lock().unwrap().script.extend(statuses);
    }

    /// Every request received so far.
    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.server.connections()
    }
}

async fn answer(shared: Arc<Mutex<State>>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let raw_path = req.uri().path().to_owned();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (authorization, amz_date) = (header("authorization"), header("x-amz-date"));
    let method = req.method().clone();
    let headers = req.headers().clone();
    let body = req.into_body().collect().await?.to_bytes().to_vec();
    let signature_valid = verify_sigv4(method.as_str(), &raw_path, &headers, &body);
    if let Some(status) = {
        let mut recorded = shared.lock().unwrap();
        recorded.requests += 1;
        recorded.script.pop_front()
    } {
        return Ok(scripted(status));
    }
    // `/{stage}/@connections/{id}`, or any prefix before `/@connections/` (a template's
    // `/{region}/{apiId}/{stage}`), recorded as the post's `stage`.
    let Some((stage, id)) = raw_path.trim_start_matches('/').split_once("/@connections/") else {
        return Ok(reply(StatusCode::NOT_FOUND, "NotFoundException", "no such route"));
    };
    if method != hyper::Method::POST && method != hyper::Method::DELETE && method != hyper::Method::GET {
        return Ok(reply(StatusCode::NOT_FOUND, "NotFoundException", "no such route"));
    }
    let connection_id = percent_decode(id);
    // A request over the quota (or to a full client) is refused at once, as a throttle is answered
    // before any work; what is taken costs the stand-in's delay.
    let delay = {
        let mut recorded = shared.lock().unwrap();
        let over_quota = recorded.quota.as_mut().is_some_and(|quota| !quota.take());
        if over_quota || recorded.full.contains(&connection_id) {
            recorded.refused.push(connection_id);
            recorded.refused_at.push(std::time::Instant::now());
            return Ok(reply(StatusCode::TOO_MANY_REQUESTS, "LimitExceededException", "Rate exceeded"));
        }
        recorded.delay
    };
    tokio::time::sleep(delay).await;
    let mut recorded = shared.lock().unwrap();
    if method == hyper::Method::GET {
        // GetConnection: 200 with the connection's times for a known one, else 410.
        recorded.checked.push(connection_id.clone());
        return Ok(if recorded.known.contains(&connection_id) {
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(
                    br#"{"connectedAt":"2026-01-01T00:00:00.000Z","lastActiveAt":"2026-01-01T00:00:00.000Z"}"#,
                )))
                .unwrap()
        } else {
            reply(StatusCode::GONE, "GoneException", "the connection is gone")
        });
    }
    if method == hyper::Method::DELETE {
        // As API Gateway: 204 and the connection is gone (its $disconnect follows), else 410.
        return Ok(if recorded.known.remove(&connection_id) {
            recorded.closed.push(connection_id);
            Response::builder().status(StatusCode::NO_CONTENT).body(Full::new(Bytes::new())).unwrap()
        } else {
            reply(StatusCode::GONE, "GoneException", "the connection is gone")
        });
    }
    let known = recorded.known.contains(&connection_id);
    recorded.posts.push(Post {
        stage: stage.to_owned(),
        connection_id,
        raw_path: raw_path.clone(),
        body,
        authorization,
        amz_date,
        signature_valid,
        at: std::time::Instant::now(),
    });
    Ok(if known {
        Response::new(Full::new(Bytes::new()))
    } else {
        reply(StatusCode::GONE, "GoneException", "the connection is gone")
    })
}

/// An error the way API Gateway sends it: the type in `x-amzn-ErrorType`, a JSON message.
fn reply(status: StatusCode, error_type: &str, message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-ErrorType", error_type)
        .body(Full::new(Bytes::from(format!(r#"{{"message":"{message}"}}"#))))
        .unwrap()
}

/// A scripted answer: `status` with the error type API Gateway gives it.
fn scripted(status: u16) -> Response<Full<Bytes>> {
    let (error_type, message) = match status {
        403 => ("ForbiddenException", "Forbidden"),
        410 => ("GoneException", "the connection is gone"),
        429 => ("LimitExceededException", "Rate exceeded"),
        500 => ("InternalServerErrorException", "Internal server error"),
        502 => ("BadGatewayException", "Bad gateway"),
        503 => ("ServiceUnavailableException", "Service unavailable"),
        _ => ("UnknownException", "scripted"),
    };
    reply(StatusCode::from_u16(status).expect("a valid status"), error_type, message)
}

/// Checks a SigV4 `authorization` header as API Gateway does: the signature the tests' secret key
/// gives over the request as received (its method, path, the headers it names, its body, its
/// date, region and service) must be the one sent.
fn verify_sigv4(method: &str, path: &str, headers: &hyper::HeaderMap, body: &[u8]) -> bool {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(auth), Some(date), Some(host)) = (text("authorization"), text("x-amz-date"), text("host")) else {
        return false;
    };
    let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 ") else { return false };
    let parts: Vec<&str> = rest.split(", ").collect();
    let [credential, signed, signature] = parts.as_slice() else { return false };
    let scope: Vec<&str> = credential.trim_start_matches("Credential=").split('/').collect();
    let [key, _day, region, service, "aws4_request"] = scope.as_slice() else { return false };
    let Ok(time) = chrono::NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ") else { return false };
    let token = text("x-amz-security-token");
    let identity =
        aws_credential_types::Credentials::new(*key, "test-secret", token.map(str::to_owned), None, "verify");
    let identity = identity.into();
    let Ok(params) = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time.and_utc().into())
        .settings(SigningSettings::default())
        .build()
    else {
        return false;
    };
    let named: Vec<&str> = signed.trim_start_matches("SignedHeaders=").split(';').collect();
    let signed_headers = headers
        .iter()
        .filter(|(name, _)| named.contains(&name.as_str()) && name.as_str() != "x-amz-security-token")
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
    let uri = format!("http://{host}{path}");
    let Ok(request) = SignableRequest::new(method, uri, signed_headers, SignableBody::Bytes(body)) else {
        return false;
    };
    let Ok(output) = sign(request, &params.into()) else { return false };
    output.signature() == signature.trim_start_matches("Signature=")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The region a SigV4 `authorization` header was signed for (its credential scope).
pub fn signed_region(post: &Post) -> Option<String> {
    let scope = post.authorization.as_deref()?.split("Credential=").nth(1)?.split(',').next()?;
    scope.split('/').nth(2).map(str::to_owned)
}

/// True when `authorization` is a valid SigV4 header (see [`Post::signature_valid`]) for
/// execute-api in us-east-1, signed by the tests' access key over at least `host` and
/// `x-amz-date`.
pub fn is_sigv4(post: &Post) -> bool {
    let (Some(auth), Some(date)) = (&post.authorization, &post.amz_date) else { return false };
    let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 ") else { return false };
    let parts: Vec<&str> = rest.split(", ").collect();
    let [credential, signed, signature] = parts.as_slice() else { return false };
    let scope = format!("{}/{}/us-east-1/execute-api/aws4_request", ws_shared::testing::TEST_ACCESS_KEY_ID, &date[..8]);
    let signed_headers: Vec<&str> = signed.trim_start_matches("SignedHeaders=").split(';').collect();
    let signature = signature.trim_start_matches("Signature=");
    post.signature_valid
        && credential.strip_prefix("Credential=") == Some(scope.as_str())
        && signed_headers.contains(&"host")
        && signed_headers.contains(&"x-amz-date")
        && signature.len() == 64
        && signature.bytes().all(|b| b.is_ascii_hexdigit())
}
