//! The handshake on `/{stage}`: the `$connect` authorizer, then the `$connect` route, then 101
//! and the connection's task ([`super::socket`]).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION,
};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::events::{Decision, Handshake, evaluate_policy};
use crate::http::{self, Body};
use crate::lambda::InvokeError;
use crate::manifest::Trigger;
use crate::state::App;

/// A refused handshake: the status, and API Gateway's `{"message": …}` body.
fn refuse(status: StatusCode) -> Response<Body> {
    http::json(status, &json!({ "message": status.canonical_reason().unwrap_or("Error") }))
}

fn is_websocket_upgrade(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(hyper::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The handshake on `/{stage}`: authorizer, `$connect`, then 101 and the connection's task.
pub async fn handshake(app: Arc<App>, peer: SocketAddr, mut req: Request<Incoming>) -> Response<Body> {
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY).cloned() else {
        return http::json(
            StatusCode::UPGRADE_REQUIRED,
            &json!({ "message": "This is a WebSocket endpoint: connect with a WebSocket client (Upgrade: websocket)." }),
        );
    };
    if !is_websocket_upgrade(&req) || req.headers().get(SEC_WEBSOCKET_VERSION).is_none_or(|v| v != "13") {
        return http::json(
            StatusCode::BAD_REQUEST,
            &json!({ "message": "Bad WebSocket handshake: Upgrade: websocket and Sec-WebSocket-Version: 13 are required." }),
        );
    }
    let handshake = Arc::new(describe(&app, peer, &req));
    let id = handshake.connection_id.clone();

    let authorizer = match authorize(&app, &handshake).await {
        Ok(authorizer) => authorizer,
        Err(status) => {
            app.logs().local(&format!("$connect {id} refused by the authorizer: {status}"));
            return refuse(status);
        }
    };
    let protocol = match connect(&app, &handshake, authorizer).await {
        Ok(protocol) => protocol,
        Err(response) => {
            app.logs().local(&format!("$connect {id} refused: {}", response.status()));
            return response;
        }
    };

    let on_upgrade = hyper::upgrade::on(&mut req);
    let limits = app.settings.limits;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(limits.max_message_bytes))
        .max_frame_size(Some(limits.max_frame_bytes));
    let task_app = Arc::clone(&app);
    let guard = app.connection_task();
    tokio::spawn(async move {
        let _guard = guard;
        let Ok(upgraded) = on_upgrade.await else { return };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
        super::socket::run(task_app, handshake, ws).await;
    });

    let mut response = http::empty(StatusCode::SWITCHING_PROTOCOLS);
    let headers = response.headers_mut();
    headers.insert(hyper::header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(hyper::header::CONNECTION, HeaderValue::from_static("Upgrade"));
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    headers.insert(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&accept).expect("base64 is a valid header value"));
    if let Some(protocol) = protocol.and_then(|p| HeaderValue::from_str(&p).ok()) {
        headers.insert(SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    app.logs().local(&format!("$connect {id} accepted"));
    response
}

fn describe(app: &App, peer: SocketAddr, req: &Request<Incoming>) -> Handshake {
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .chain([
            ("X-Forwarded-For".to_owned(), peer.ip().to_string()),
            ("X-Forwarded-Port".to_owned(), app.endpoints.port().to_string()),
            ("X-Forwarded-Proto".to_owned(), "http".to_owned()),
        ])
        .collect();
    let query = req
        .uri()
        .query()
        .map(|q| {
            q.split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (http::decode(name), http::decode(value))
                })
                .collect()
        })
        .unwrap_or_default();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let host = header("host");
    Handshake {
        connection_id: http::random_id(),
        connected_at: Utc::now(),
        source_ip: peer.ip().to_string(),
        user_agent: header("user-agent"),
        domain_name: if host.is_empty() { app.endpoints.authority() } else { host },
        stage: app.settings.stage.clone(),
        api_id: app.settings.api_id.clone(),
        headers,
        query,
    }
}

/// Runs the `$connect` authorizer when there is one. `Ok(Some(context))`: allowed with
/// `requestContext.authorizer`; `Err`: the handshake's status (401, 403, 500).
async fn authorize(app: &App, handshake: &Handshake) -> Result<Option<Value>, StatusCode> {
    let Some(function) = app.settings.authorizer.then(|| app.manifest.authorizer()).flatten() else {
        return Ok(None);
    };
    if let Trigger::Authorizer { identity_sources } = &function.trigger
        && identity_sources.iter().any(|source| !has_identity_source(handshake, source))
    {
        // API Gateway answers 401 without calling the authorizer.
        return Err(StatusCode::UNAUTHORIZED);
    }
    let method_arn = handshake.method_arn(crate::config::REGION, crate::config::ACCOUNT);
    let event = handshake.authorizer_event(&method_arn, &http::random_id(), Utc::now());
    let started = std::time::Instant::now();
    let output = match app.lambda.invoke(&function.name, Bytes::from(event.to_string())).await {
        Some(Ok(output)) => output,
        Some(Err(InvokeError::Function { error_message, .. })) if error_message == "Unauthorized" => {
            return Err(StatusCode::UNAUTHORIZED);
        }
        Some(Err(e)) => {
            app.logs().local(&format!("authorizer failed: {e}"));
            return Err(StatusCode::INTERNAL_SERVER_ERROR);
        }
        None => return Ok(None),
    };
    let latency = started.elapsed().as_millis();
    let output: Value = serde_json::from_slice(&output).unwrap_or(Value::Null);
    match evaluate_policy(&output, &method_arn) {
        Ok(Decision::Allow(mut context)) => {
            context["integrationLatency"] = json!(latency);
            Ok(Some(context))
        }
        Ok(Decision::Deny) => Err(StatusCode::FORBIDDEN),
        Err(reason) => {
            app.logs().local(&format!("the authorizer's response is not valid ({reason}): 500"));
            Err(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

fn has_identity_source(handshake: &Handshake, source: &str) -> bool {
    let present = |pairs: &[(String, String)], name: &str| {
        pairs.iter().any(|(n, v)| n.eq_ignore_ascii_case(name) && !v.is_empty())
    };
    if let Some(name) = source.strip_prefix("route.request.querystring.") {
        present(&handshake.query, name)
    } else if let Some(name) = source.strip_prefix("route.request.header.") {
        present(&handshake.headers, name)
    } else {
        true
    }
}

/// Runs the `$connect` route. `Ok`: accepted, with the subprotocol the function chose;
/// `Err`: the refusal.
async fn connect(
    app: &App,
    handshake: &Handshake,
    authorizer: Option<Value>,
) -> Result<Option<String>, Response<Body>> {
    let Some(function) = app.manifest.route("$connect") else { return Ok(None) };
    let event = handshake.connect_event(authorizer, &http::random_id(), Utc::now());
    let output = match app.lambda.invoke(&function.name, Bytes::from(event.to_string())).await {
        Some(Ok(output)) => output,
        Some(Err(e)) => {
            app.logs().local(&format!("$connect {} failed: {e}", handshake.connection_id));
            return Err(refuse(StatusCode::INTERNAL_SERVER_ERROR));
        }
        None => return Ok(None),
    };
    let output: Value = serde_json::from_slice(&output).unwrap_or(Value::Null);
    let status = output
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    if !status.is_success() {
        let body = output.get("body").and_then(Value::as_str).unwrap_or_default();
        let mut response = http::empty(status);
        *response.body_mut() = Body::new(Bytes::from(body.to_owned()));
        return Err(response);
    }
    let protocol = output.get("headers").and_then(Value::as_object).and_then(|headers| {
        headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-protocol"))
            .and_then(|(_, value)| value.as_str().map(str::to_owned))
    });
    Ok(protocol)
}
