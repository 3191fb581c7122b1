//! The notifier port ([`Poster`]) and its adapter ([`ManagementApi`]): API Gateway's Management
//! API, `PostToConnection` and `DeleteConnection`, as SigV4-signed HTTP/1.1 requests on a
//! kept-alive connection pool (hyper + rustls, the same stack and roots as the SDK clients).
//!
//! # Why not the SDK's client
//! A fan-out makes one call per connection, and the SDK's generic machinery cost more CPU than
//! the post: a profile of a 3,000-connection fan-out put the orchestrator (interceptors, config
//! bag, endpoint rules, identity resolution on every call) at a fifth of the process's time, and
//! its allocations and formatting at much of the rest — 190 µs of CPU per post against 80 µs
//! without it, 58 µs with the signer of [`crate::sigv4`] (BENCHMARKS.md, "Fan-out CPU
//! per post"). These two operations are small
//! and fixed (a path, a body, a status), so the adapter does what the SDK does for them:
//!
//! - the request: `POST {endpoint}/@connections/{id}` with the message as an
//!   `application/octet-stream` body, `DELETE` for a close; the id percent-encoded like a Smithy
//!   path label (everything but RFC 3986's unreserved characters);
//! - SigV4 as the SDK signs for `execute-api` ([`crate::sigv4`]: the canonical request of this
//!   one shape written directly and checked against `aws-sigv4`, the signing key kept per day),
//!   for the endpoint's region (else the function's); credentials from the SDK
//!   config's provider, cached until 10 s before they expire (15 minutes when they do not say),
//!   as the SDK's identity cache does;
//! - the SDK's standard retry of transient failures (a 500, 502, 503 or 504, a connection that
//!   could not be made or broke): at most [`MAX_ATTEMPTS`] attempts, exponential backoff with
//!   full jitter from 50 ms to 2 s; never of a `429`: retrying a throttled post at once hammers a
//!   quota shared by every fan-out (63 % of requests were refused that way when measured), so it
//!   goes back to the caller, which paces to the quota (`crate::pacing`);
//! - the answer: 2xx delivered, `410` [`PostError::Gone`], `429` [`PostError::Throttled`], any
//!   other status [`PostError::Failed`] with its `x-amzn-ErrorType` and message
//!   ([`CallError::Status`]).
//!
//! `tests/management.rs` checks each rule against an HTTP stand-in that verifies the signature.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::{ProvideCredentials as _, SharedCredentialsProvider};
use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use ws_shared::aws::Roots;
use ws_shared::id::ConnectionId;

use crate::endpoint::Endpoint;
use crate::sigv4::{Signer, Unsigned};

/// Why a post did not deliver.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// `GoneException` (410): the client is no longer connected.
    #[error("the connection is gone")]
    Gone,
    /// `LimitExceededException` (429): the account's Management API quota, or this client's full
    /// buffer. The message was not delivered; the caller paces and tries again.
    #[error("the Management API throttled the post (429 LimitExceededException)")]
    Throttled,
    /// Anything else, after the retries.
    #[error("posting to the connection failed")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// The Management API calls the responder makes on one connection.
pub trait Poster: Send + Sync {
    /// Posts `data` to `connection` through `endpoint` within `budget` (a 429 comes back as
    /// [`PostError::Throttled`], not retried).
    fn post(
        &self,
        endpoint: &Endpoint,
        connection: &ConnectionId,
        data: Bytes,
        budget: Duration,
    ) -> impl Future<Output = Result<(), PostError>> + Send;

    /// Closes `connection` (`DeleteConnection`); API Gateway then sends its `$disconnect`. The
    /// errors are a post's: 410 when it is already gone, a 429 is `Throttled`.
    fn close(
        &self,
        endpoint: &Endpoint,
        connection: &ConnectionId,
        budget: Duration,
    ) -> impl Future<Output = Result<(), PostError>> + Send;

    /// Asks whether API Gateway still has `connection` (`GetConnection`): `Ok` when it does,
    /// [`PostError::Gone`] (410) when it does not. A stand-in that does not model connections
    /// ending keeps this default: every connection is live.
    fn check(
        &self,
        endpoint: &Endpoint,
        connection: &ConnectionId,
        budget: Duration,
    ) -> impl Future<Output = Result<(), PostError>> + Send {
        let _ = (endpoint, connection, budget);
        std::future::ready(Ok(()))
    }
}

/// A Management API call that did not end within the time it was given: its outcome is unknown.
#[derive(Debug, thiserror::Error)]
#[error("the Management API call did not end within {0:?} (cut at the invocation's deadline; its outcome is unknown)")]
pub struct CutShort(pub Duration);

/// `call`, cut at `budget`.
async fn within<T>(budget: Duration, call: impl Future<Output = T>) -> Result<T, PostError> {
    tokio::time::timeout(budget, call).await.map_err(|_| PostError::Failed(Box::new(CutShort(budget))))
}

/// Attempts per call, the first included (the SDK's standard retry allows 3; the responder has
/// always allowed 6 for posts, bounded by the invocation's time).
pub const MAX_ATTEMPTS: u8 = 6;
/// How long before they expire cached credentials are fetched again (the SDK's identity cache's
/// buffer), and how long credentials that carry no expiry are kept.
const REFRESH_BEFORE: Duration = Duration::from_secs(10);
const KEEP_UNDATED: Duration = Duration::from_mins(15);
/// The SDK's default connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);
/// An error answer is read up to this many bytes (its message is short JSON).
const MAX_ERROR_BODY: usize = 16 * 1024;

/// How the connection id is encoded in the path: every character but RFC 3986's unreserved ones
/// (a connection id's `= + : @` become escapes, as the SDK encodes a path label).
pub(crate) const LABEL: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Why a Management API call failed, inside [`PostError::Failed`].
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The API answered a status that is neither success, 410 nor 429 (after the retries of 5xx).
    #[error("the Management API answered {status} {error_type}: {message}")]
    Status { status: u16, error_type: String, message: String },
    /// No answer: the connection could not be made or broke (after the retries).
    #[error("the request to the Management API did not get an answer")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No credentials to sign with.
    #[error(
        "no AWS credentials to sign the request with (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, as Lambda does)"
    )]
    Credentials(#[source] Option<Box<dyn std::error::Error + Send + Sync>>),
    /// No region to sign for: the endpoint does not name one and the function has none.
    #[error("no region to sign the request for {endpoint} (set AWS_REGION, as Lambda does)")]
    Region { endpoint: String },
    /// The request could not be built or signed (a malformed endpoint).
    #[error("the request to {uri} could not be built or signed (is the endpoint an https:// URL with a host?)")]
    Request {
        uri: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// Cached credentials (in their signer, which keeps their signing keys) and when to fetch them
/// again.
#[derive(Debug, Clone)]
struct Cached {
    signer: Arc<Signer>,
    refresh_at: SystemTime,
}

/// The Management API over signed HTTP (see the module's docs).
pub struct ManagementApi {
    http: Client<Https, Full<Bytes>>,
    credentials: Option<SharedCredentialsProvider>,
    cached: Mutex<Option<Cached>>,
    region: Option<String>,
}

impl std::fmt::Debug for ManagementApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementApi").field("region", &self.region).finish_non_exhaustive()
    }
}

impl ManagementApi {
    /// Credentials and the default region from `sdk`; HTTPS trusting `roots` (the SDK clients'
    /// roots), plain `http://` for local stacks.
    pub fn new(sdk: &SdkConfig, roots: Roots) -> Self {
        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(ws_shared::aws::tls_config(roots))
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Self {
            http: Client::builder(TokioExecutor::new()).build(https),
            credentials: sdk.credentials_provider(),
            cached: Mutex::new(None),
            region: sdk.region().map(ToString::to_string),
        }
    }

    /// The credentials to sign with: cached, or fetched when none are cached or they are about
    /// to expire (two calls may fetch at once; both get valid credentials).
    async fn signer(&self) -> Result<Arc<Signer>, CallError> {
        let now = SystemTime::now();
        if let Some(cached) = self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref()
            && now < cached.refresh_at
        {
            return Ok(Arc::clone(&cached.signer));
        }
        let provider = self.credentials.as_ref().ok_or(CallError::Credentials(None))?;
        let credentials =
            provider.provide_credentials().await.map_err(|e| CallError::Credentials(Some(Box::new(e))))?;
        let refresh_at = credentials
            .expiry()
            .map_or(now + KEEP_UNDATED, |expiry| expiry.checked_sub(REFRESH_BEFORE).unwrap_or(expiry));
        let signer = Arc::new(Signer::new(credentials));
        *self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(Cached { signer: Arc::clone(&signer), refresh_at });
        Ok(signer)
    }

    /// `method` on `connection` through `endpoint`, retried as the module's docs say.
    async fn call(
        &self,
        method: Method,
        endpoint: &Endpoint,
        connection: &ConnectionId,
        body: Bytes,
    ) -> Result<(), PostError> {
        let raw = format!("{endpoint}/@connections/{}", utf8_percent_encode(connection.as_str(), LABEL));
        let uri: Uri = raw.parse().map_err(|e| failed(CallError::Request { uri: raw.clone(), source: Box::new(e) }))?;
        let host = host_header(&uri)
            .ok_or_else(|| failed(CallError::Request { uri: raw.clone(), source: "no host".into() }))?;
        let region = endpoint
            .region()
            .or(self.region.as_deref())
            .ok_or_else(|| failed(CallError::Region { endpoint: endpoint.to_string() }))?;
        let mut attempt = 1;
        loop {
            let signer = self.signer().await.map_err(failed)?;
            let request = signed(&signer, &method, &uri, &host, &body, region).map_err(failed)?;
            let retry = match self.http.request(request).await {
                Ok(response) => {
                    let status = response.status();
                    let (parts, body) = response.into_parts();
                    // An error answer's message, for the log (a success has no body).
                    let body =
                        Limited::new(body, MAX_ERROR_BODY).collect().await.map(http_body_util::Collected::to_bytes);
                    match status.as_u16() {
                        200..=299 => return Ok(()),
                        410 => return Err(PostError::Gone),
                        429 => return Err(PostError::Throttled),
                        code => {
                            let error = status_error(status, &parts.headers, &body.unwrap_or_default());
                            if !matches!(code, 500 | 502 | 503 | 504) || attempt >= MAX_ATTEMPTS {
                                return Err(failed(error));
                            }
                            error
                        }
                    }
                }
                Err(error) if attempt >= MAX_ATTEMPTS => return Err(failed(CallError::Transport(Box::new(error)))),
                Err(error) => CallError::Transport(Box::new(error)),
            };
            tracing::debug!(attempt, error = %retry, "retrying a Management API call");
            // The fan-out's own backoff (50 ms doubling to 2 s, full jitter spread per connection).
            tokio::time::sleep(crate::pacing::retry_delay(attempt, crate::jitter(connection, attempt))).await;
            attempt += 1;
        }
    }
}

/// The request for `uri`, signed at this moment.
fn signed(
    signer: &Signer,
    method: &Method,
    uri: &Uri,
    host: &str,
    body: &Bytes,
    region: &str,
) -> Result<Request<Full<Bytes>>, CallError> {
    let content_type = (!body.is_empty()).then_some("application/octet-stream");
    let unsigned = Unsigned { method: method.as_str(), host, path: uri.path(), content_type, body };
    let headers = signer
        .sign(&unsigned, region, SystemTime::now())
        .map_err(|e| CallError::Request { uri: uri.to_string(), source: Box::new(e) })?;
    let mut request = Request::builder()
        .method(method.clone())
        .uri(uri.clone())
        .header(header::HOST, host)
        .header("x-amz-date", headers.x_amz_date)
        .header(header::AUTHORIZATION, headers.authorization);
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    if let Some(token) = headers.security_token {
        request = request.header("x-amz-security-token", token);
    }
    request.body(Full::new(body.clone())).map_err(|e| CallError::Request { uri: uri.to_string(), source: Box::new(e) })
}

/// The `Host` header of a request to `uri`: its host, and its port unless the scheme's own (as
/// hyper sends it, and as SigV4 signs it).
fn host_header(uri: &Uri) -> Option<String> {
    let host = uri.host()?;
    let default = match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    Some(match uri.port_u16() {
        Some(port) if port != default => format!("{host}:{port}"),
        _ => host.to_owned(),
    })
}

fn failed(error: CallError) -> PostError {
    PostError::Failed(Box::new(error))
}

/// A status's error: its `x-amzn-ErrorType` (up to the first `:`) and the body's `message`.
fn status_error(status: StatusCode, headers: &http::HeaderMap, body: &[u8]) -> CallError {
    let error_type = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(':').next().unwrap_or(v).to_owned())
        .unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").or_else(|| v.get("Message")).and_then(|m| m.as_str()).map(ToOwned::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
    CallError::Status { status: status.as_u16(), error_type, message }
}

impl Poster for ManagementApi {
    async fn post(
        &self,
        endpoint: &Endpoint,
        connection: &ConnectionId,
        data: Bytes,
        budget: Duration,
    ) -> Result<(), PostError> {
        within(budget, self.call(Method::POST, endpoint, connection, data)).await?
    }

    async fn close(&self, endpoint: &Endpoint, connection: &ConnectionId, budget: Duration) -> Result<(), PostError> {
        within(budget, self.call(Method::DELETE, endpoint, connection, Bytes::new())).await?
    }

    async fn check(&self, endpoint: &Endpoint, connection: &ConnectionId, budget: Duration) -> Result<(), PostError> {
        within(budget, self.call(Method::GET, endpoint, connection, Bytes::new())).await?
    }
}
