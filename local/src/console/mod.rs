//! The console at `/_console`: one plain HTML page (no build step, `index.html` next to this
//! file) that polls `/_console/api/state` for the live connections with their messages in and
//! out, the functions it can invoke and the log lines after the last it showed. Posting to a
//! connection and invoking a function go through the same Management and Invoke APIs as any
//! other client, so the page exercises them rather than a side door.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use bytes::Bytes;
use chrono::Utc;
use http_body_util::Full;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use crate::http::{self, Body};
use crate::manifest::Trigger;
use crate::state::App;

const PAGE: &str = include_str!("index.html");

/// `GET /_console`.
pub async fn page() -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(PAGE.as_bytes())));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /_console/api/state?after=N`: everything the page shows, log lines numbered `N` on.
pub async fn state(State(app): State<Arc<App>>, RawQuery(query): RawQuery) -> Response<Body> {
    let after = query
        .as_deref()
        .map(http::query_pairs)
        .unwrap_or_default()
        .into_iter()
        .find_map(|(name, value)| (name == "after").then_some(value))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    http::json(StatusCode::OK, &snapshot(&app, after))
}

fn snapshot(app: &App, after: u64) -> Value {
    let now = Utc::now();
    let connections: Vec<Value> = app
        .connections
        .all()
        .iter()
        .map(|c| {
            json!({
                "connectionId": c.id,
                "user": c.user(),
                "conversation": c.conversation(),
                "connectedAt": c.connected_at().timestamp_millis(),
                "connectedForSeconds": (now - c.connected_at()).num_seconds(),
                "lastActiveAt": c.last_active_at().timestamp_millis(),
                "sourceIp": c.handshake.source_ip,
                "userAgent": c.handshake.user_agent,
                "messages": c.journal(),
            })
        })
        .collect();
    let invocable: Vec<&str> = app
        .manifest
        .functions
        .iter()
        .filter(|f| matches!(f.trigger, Trigger::Direct))
        .map(|f| f.name.as_str())
        .collect();
    json!({
        "stage": app.settings.stage,
        "websocket": app.endpoints.websocket(),
        "management": app.endpoints.management(),
        "now": now.timestamp_millis(),
        "connections": connections,
        "invocable": invocable,
        "logs": app.logs().since(after),
        "events": app.lifecycle.list(),
    })
}

/// `POST /_console/api/connections/{id}/drop`: cuts a connection as a network would (no close
/// frame: 1006 for the client, `$disconnect` with 1006), so people and tests can try reconnects.
pub async fn drop_connection(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response<Body> {
    match app.connections.get(&id) {
        Some(connection) => {
            connection.send(crate::gateway::registry::Outbound::Drop).await;
            app.logs().local(&format!("dropping {id} as a network would (console)"));
            http::json(StatusCode::ACCEPTED, &json!({ "dropped": id }))
        }
        None => http::json(
            StatusCode::NOT_FOUND,
            &json!({ "message": format!("no open connection {id}; the console's state lists the open ones") }),
        ),
    }
}
