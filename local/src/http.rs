//! The small HTTP toolkit every ws-local API uses: serving a router with axum, reading a
//! bounded body, and building responses.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::Request;
use axum::serve::ListenerExt as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub type Body = Full<Bytes>;

/// Serves `router` on `listener` until `shutdown` turns true (axum: HTTP/1.1, keep-alive,
/// upgrades; the peer address as `ConnectInfo<SocketAddr>`; no Nagle delay on small frames).
pub fn serve(listener: TcpListener, router: Router, mut shutdown: watch::Receiver<bool>) {
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        let _ =
            axum::serve(listener, service).with_graceful_shutdown(async move { stopped(&mut shutdown).await }).await;
    });
}

/// Resolves once `shutdown` is true (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// The request body, at most `limit` bytes; `None` when it is larger or cannot be read.
pub async fn read_body(req: Request, limit: usize) -> Option<Bytes> {
    axum::body::to_bytes(req.into_body(), limit).await.ok()
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

/// A query string's `name=value` pairs, percent-decoded, in order (a name without `=` has an
/// empty value).
pub fn query_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// A random id in the shape of API Gateway's (`TWegAcC4EowCHnA=`: 16 characters, one `=`): 11 random bytes, base64
/// with the URL-safe alphabet so it never holds a `/`.
pub fn random_id() -> String {
    use base64::Engine as _;
    let bytes = uuid::Uuid::new_v4().into_bytes();
    base64::engine::general_purpose::URL_SAFE.encode(&bytes[..11])
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_id_has_the_shape_of_api_gateways() {
        for _ in 0..100 {
            let id = super::random_id();
            assert_eq!(id.len(), 16, "{id}");
            assert!(id.ends_with('=') && !id.ends_with("=="), "{id}");
            assert!(!id.contains('/'), "{id}");
        }
    }
}
