//! The small HTTP toolkit every ws-local API uses: serving a listener with hyper, reading a
//! bounded body, and building responses.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub type Body = Full<Bytes>;

/// Serves `listener` until `shutdown` turns true: one task per connection, HTTP/1.1 with
/// keep-alive and upgrades (WebSocket).
pub fn serve<S, F>(listener: TcpListener, state: Arc<S>, mut shutdown: watch::Receiver<bool>, handle: F)
where
    S: Send + Sync + 'static,
    F: Fn(
            Arc<S>,
            std::net::SocketAddr,
            Request<Incoming>,
        ) -> std::pin::Pin<Box<dyn Future<Output = Response<Body>> + Send>>
        + Send
        + Sync
        + Copy
        + 'static,
{
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = stopped(&mut shutdown) => return,
            };
            let Ok((stream, peer)) = accepted else {
                // Out of file descriptors or similar: wait a moment rather than spin.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let state = Arc::clone(&state);
                    async move { Ok::<_, Infallible>(handle(state, peer, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
}

/// Resolves once `shutdown` is true (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// The request body, at most `limit` bytes; `None` when it is larger or cannot be read.
pub async fn read_body(req: Request<Incoming>, limit: usize) -> Option<Bytes> {
    Limited::new(req.into_body(), limit).collect().await.ok().map(http_body_util::Collected::to_bytes)
}

pub fn json(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// An AWS-style error: `x-amzn-ErrorType` names the exception (what the SDKs read first) and
/// the body carries the message.
pub fn aws_error(status: StatusCode, error_type: &str, message: &str) -> Response<Body> {
    let mut response = json(status, &serde_json::json!({ "message": message, "Message": message, "Type": "User" }));
    if let Ok(value) = HeaderValue::from_str(error_type) {
        response.headers_mut().insert("x-amzn-ErrorType", value);
    }
    response
}

/// A percent-encoded path segment or query part, decoded (invalid UTF-8 replaced).
pub fn decode(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

/// A random id in the style of API Gateway's (`TWegAcC4EowCHnA=`): 10 random bytes, base64
/// with the URL-safe alphabet so it never holds a `/`.
pub fn random_id() -> String {
    use base64::Engine as _;
    let bytes = uuid::Uuid::new_v4().into_bytes();
    base64::engine::general_purpose::URL_SAFE.encode(&bytes[..10])
}
