//! API Gateway's WebSocket side: the handshake (`$connect` authorizer and route), the open
//! connection (messages to their route, limits, posts from the Management API) and its end
//! (`$disconnect` with the real close code and reason).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{SinkExt as _, StreamExt as _};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION,
};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, error::CapacityError};

use crate::events::{Decision, Handshake, evaluate_policy};
use crate::http::{self, Body};
use crate::lambda::InvokeError;
use crate::manifest::Trigger;
use crate::server::App;

/// What the Management API hands to an open connection.
#[derive(Debug)]
pub enum Outbound {
    Message(Message),
    Close(u16, String),
}

/// An open connection, as the Management API sees it.
#[derive(Debug)]
pub struct Connection {
    pub id: String,
    pub connected_at: DateTime<Utc>,
    pub source_ip: String,
    pub user_agent: String,
    last_active_ms: AtomicI64,
    outbound: mpsc::Sender<Outbound>,
}

impl Connection {
    pub fn last_active_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.last_active_ms.load(Ordering::Relaxed)).unwrap_or(self.connected_at)
    }

    fn touch(&self) {
        self.last_active_ms.store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    /// Queues `message` for the socket; `false` when the connection is closing.
    pub async fn send(&self, message: Outbound) -> bool {
        self.outbound.send(message).await.is_ok()
    }
}

/// The open connections by id.
#[derive(Debug, Default)]
pub struct Connections(RwLock<HashMap<String, Arc<Connection>>>);

impl Connections {
    pub fn get(&self, id: &str) -> Option<Arc<Connection>> {
        self.0.read().expect("connections").get(id).cloned()
    }

    pub fn len(&self) -> usize {
        self.0.read().expect("connections").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&self, connection: Arc<Connection>) {
        self.0.write().expect("connections").insert(connection.id.clone(), connection);
    }

    fn remove(&self, id: &str) {
        self.0.write().expect("connections").remove(id);
    }
}

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
        run(task_app, handshake, ws).await;
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

/// Why a connection ended: what `$disconnect` reports.
type Ending = (u16, String);

const GOING_AWAY: u16 = 1001;
const MESSAGE_TOO_BIG: u16 = 1009;

/// The open connection until it ends, then `$disconnect`.
async fn run(app: Arc<App>, handshake: Arc<Handshake>, ws: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>) {
    let (tx, mut rx) = mpsc::channel(256);
    let connection = Arc::new(Connection {
        id: handshake.connection_id.clone(),
        connected_at: handshake.connected_at,
        source_ip: handshake.source_ip.clone(),
        user_agent: handshake.user_agent.clone(),
        last_active_ms: AtomicI64::new(handshake.connected_at.timestamp_millis()),
        outbound: tx,
    });
    app.connections.insert(Arc::clone(&connection));
    let limits = app.settings.limits;
    let (mut sink, mut stream) = ws.split();
    let ends_at = Instant::now() + limits.max_duration;
    let mut idle_at = Instant::now() + limits.idle_timeout;
    let mut shutdown = app.shutdown_signal();

    let close = |code: u16, reason: &str| {
        Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.into() }))
    };
    let (code, reason): Ending = loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(message)) => {
                    idle_at = Instant::now() + limits.idle_timeout;
                    connection.touch();
                    match message {
                        Message::Text(text) => route(&app, &handshake, &connection, Bytes::from(text), false),
                        Message::Binary(data) => route(&app, &handshake, &connection, data, true),
                        Message::Close(frame) => {
                            break frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                        }
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    }
                }
                Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => {
                    let _ = sink.send(close(MESSAGE_TOO_BIG, "Message too big")).await;
                    break (MESSAGE_TOO_BIG, "Message too big".into());
                }
                Some(Err(_)) | None => break (1006, String::new()),
            },
            out = rx.recv() => match out {
                Some(Outbound::Message(message)) => {
                    // Write whatever else is queued before one flush: one syscall for a burst.
                    let mut result = sink.feed(message).await;
                    while result.is_ok() {
                        match rx.try_recv() {
                            Ok(Outbound::Message(more)) => result = sink.feed(more).await,
                            Ok(Outbound::Close(code, reason)) => {
                                let _ = sink.send(close(code, &reason)).await;
                                result = Err(WsError::ConnectionClosed);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    if result.is_err() || sink.flush().await.is_err() {
                        break (1006, String::new());
                    }
                }
                Some(Outbound::Close(code, reason)) => {
                    let _ = sink.send(close(code, &reason)).await;
                    break (code, reason);
                }
                None => break (1006, String::new()),
            },
            () = sleep_until(idle_at) => {
                let _ = sink.send(close(GOING_AWAY, "Going away")).await;
                break (GOING_AWAY, "Going away".into());
            }
            () = sleep_until(ends_at) => {
                let _ = sink.send(close(GOING_AWAY, "Going away")).await;
                break (GOING_AWAY, "Going away".into());
            }
            () = http::stopped(&mut shutdown) => {
                let _ = sink.send(close(GOING_AWAY, "Going away")).await;
                break (GOING_AWAY, "Going away".into());
            }
        }
    };
    app.connections.remove(&connection.id);
    // Finish the closing handshake briefly; the socket is gone either way.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let _ = sink.close().await;
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
    app.logs().local(&format!("closed {} ({code} {reason})", connection.id));
    disconnect(&app, &handshake, code, &reason).await;
}

async fn disconnect(app: &App, handshake: &Handshake, code: u16, reason: &str) {
    let Some(function) = app.manifest.route("$disconnect") else { return };
    let event = handshake.disconnect_event(code, reason, &http::random_id(), Utc::now());
    if let Some(Err(e)) = app.lambda.invoke(&function.name, Bytes::from(event.to_string())).await {
        // Best effort, as in API Gateway: nobody is left to tell.
        app.logs().local(&format!("$disconnect {} failed: {e}", handshake.connection_id));
    }
}

/// Sends a client's message to its route (`$request.body.action`, else `$default`) without
/// holding up the socket; no route → API Gateway's `Forbidden` frame.
fn route(app: &Arc<App>, handshake: &Arc<Handshake>, connection: &Arc<Connection>, body: Bytes, binary: bool) {
    let action = if binary {
        None
    } else {
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("action").and_then(Value::as_str).map(str::to_owned))
    };
    let function = action
        .filter(|a| !a.starts_with('$'))
        .and_then(|a| app.manifest.route(&a))
        .or_else(|| app.manifest.route("$default"))
        .cloned();
    let (app, handshake, connection) = (Arc::clone(app), Arc::clone(handshake), Arc::clone(connection));
    tokio::spawn(async move {
        let request_id = http::random_id();
        let error_frame = |message: &str| {
            Outbound::Message(Message::text(
                json!({ "message": message, "connectionId": connection.id, "requestId": request_id }).to_string(),
            ))
        };
        let Some(function) = function else {
            connection.send(error_frame("Forbidden")).await;
            return;
        };
        let Trigger::Route { route, route_response } = &function.trigger else { return };
        let event = handshake.message_event(route, &body, binary, &request_id, Utc::now());
        match app.lambda.invoke(&function.name, Bytes::from(event.to_string())).await {
            Some(Ok(output)) => {
                let output: Value = serde_json::from_slice(&output).unwrap_or(Value::Null);
                if *route_response && let Some(body) = output.get("body").and_then(Value::as_str) {
                    connection.send(Outbound::Message(Message::text(body))).await;
                }
            }
            Some(Err(e)) => {
                app.logs().local(&format!("route {route} for {} failed: {e}", connection.id));
                connection.send(error_frame("Internal server error")).await;
            }
            None => {}
        }
    });
}
