//! The Management API: `POST|GET|DELETE /{stage}/@connections/{id}`, with the errors the AWS
//! SDKs parse (`GoneException` 410, `PayloadTooLargeException` 413). Requests signed with SigV4
//! are accepted unchanged: locally the signature is not checked.

use std::sync::Arc;

use axum::extract::ws::Message;
use axum::extract::{Path, Request, State};
use hyper::{Method, Response, StatusCode};
use serde_json::json;

use crate::gateway::Outbound;
use crate::http::{self, Body};
use crate::state::App;

/// What the client sees when the connection is deleted, and what `$disconnect` reports.
pub const DELETED: (u16, &str) = (1000, "Connection deleted");

/// Marks a call one instance handed to another, so it is never handed on again.
const FORWARDED: &str = "x-ws-local-forwarded";

/// `/{region}/{apiId}/{stage}/@connections/{id}`: the Management API of one API in one region,
/// as the responder's `WS_ENDPOINT_TEMPLATE` addresses it. This instance's own API is served here;
/// another's goes to the peers (`--peer`), each standing for its region, as on AWS each API has
/// its own endpoint. An API nobody serves is a 403 `ForbiddenException`, as API Gateway answers
/// for an unknown API.
pub async fn routed(
    State(app): State<Arc<App>>,
    Path((region, api, stage, id)): Path<(String, String, String, String)>,
    req: Request,
) -> Response<Body> {
    let settings = &app.settings;
    if region == settings.region && api == settings.api_id && stage == settings.stage {
        return handle(State(app), Path(id), req).await;
    }
    if req.headers().contains_key(FORWARDED) {
        return http::aws_error(StatusCode::FORBIDDEN, "ForbiddenException", "Forbidden");
    }
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, settings.limits.max_message_bytes + 1).await else {
        return http::aws_error(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException", "Message too large.");
    };
    let path = parts.uri.path();
    for peer in &settings.peers {
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let Ok(request) = hyper::Request::builder()
            .method(parts.method.clone())
            .uri(format!("{}{path}", peer.trim_end_matches('/')))
            .header(FORWARDED, "1")
            .body(Body::new(body.clone()))
        else {
            continue;
        };
        let Ok(answer) = client.request(request).await else { continue };
        if answer.status() == StatusCode::FORBIDDEN {
            continue; // not that peer's API
        }
        let (parts, body) = answer.into_parts();
        let Ok(body) = http_body_util::BodyExt::collect(body).await else { continue };
        return Response::from_parts(parts, Body::new(body.to_bytes()));
    }
    http::aws_error(StatusCode::FORBIDDEN, "ForbiddenException", "Forbidden")
}

/// `/{stage}/@connections/{id}` (the id percent-decoded by the router).
pub async fn handle(State(app): State<Arc<App>>, Path(id): Path<String>, req: Request) -> Response<Body> {
    let gone = || {
        http::aws_error(
            StatusCode::GONE,
            "GoneException",
            &format!("Connection {id} is gone (never connected, or closed)."),
        )
    };
    match *req.method() {
        Method::POST => {
            let limit = app.settings.limits.max_message_bytes;
            let Some(data) = http::read_body(req, limit).await else {
                return http::aws_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PayloadTooLargeException",
                    &format!("Message is larger than {limit} bytes."),
                );
            };
            let Some(connection) = app.connections.get(&id) else { return gone() };
            let message = match String::from_utf8(data.to_vec()) {
                Ok(text) => Message::text(text),
                Err(_) => Message::Binary(data),
            };
            if connection.send(Outbound::Message(message)).await { http::empty(StatusCode::OK) } else { gone() }
        }
        Method::GET => {
            let Some(connection) = app.connections.get(&id) else { return gone() };
            let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            http::json(
                StatusCode::OK,
                &json!({
                    "connectedAt": time(connection.connected_at()),
                    "identity": { "sourceIp": connection.handshake.source_ip, "userAgent": connection.handshake.user_agent },
                    "lastActiveAt": time(connection.last_active_at()),
                }),
            )
        }
        Method::DELETE => {
            let Some(connection) = app.connections.get(&id) else { return gone() };
            if connection.send(Outbound::Close(DELETED.0, DELETED.1.to_owned())).await {
                http::empty(StatusCode::NO_CONTENT)
            } else {
                gone()
            }
        }
        _ => http::aws_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "@connections/{id} takes POST (send), GET (describe) or DELETE (disconnect).",
        ),
    }
}
