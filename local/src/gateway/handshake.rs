//! The handshake on `/{stage}`: the `$connect` authorizer, then the `$connect` route, then 101
//! and the connection's task ([`super::socket`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::response::{IntoResponse as _, Response};
use bytes::Bytes;
use chrono::Utc;
use hyper::header::{HeaderMap, HeaderValue, SEC_WEBSOCKET_KEY};
use hyper::{StatusCode, Uri};
use serde_json::{Value, json};

use crate::events::{Decision, Handshake, evaluate_policy};
use crate::http::{self, Body};
use crate::lambda::InvokeError;
use crate::manifest::Trigger;
use crate::state::App;

/// A refused handshake: the status, and API Gateway's `{"message": …}` body.
fn refuse(status: StatusCode) -> Response<Body> {
    http::json(status, &json!({ "message": status.canonical_reason().unwrap_or("Error") }))
}

/// The handshake on `/{stage}`: authorizer, `$connect`, then 101 and the connection's task.
///
/// axum checks the upgrade; the one API Gateway behaviour it would not give by itself is the
/// subprotocol: API Gateway puts in the 101 whatever `$connect` returned in
/// `Sec-WebSocket-Protocol`, offered by the client or not (a browser then drops the socket, as
/// against AWS), where axum's `protocols` picks only one the client offered. So the function's
/// choice is set with `set_selected_protocol`.
pub async fn handshake(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if !headers.contains_key(SEC_WEBSOCKET_KEY) {
        return http::json(
            StatusCode::UPGRADE_REQUIRED,
            &json!({ "message": "This is a WebSocket endpoint: connect with a WebSocket client (Upgrade: websocket)." }),
        )
        .into_response();
    }
    let Ok(mut upgrade) = upgrade else {
        return http::json(
            StatusCode::BAD_REQUEST,
            &json!({ "message": "Bad WebSocket handshake: Upgrade: websocket and Sec-WebSocket-Version: 13 are required." }),
        )
        .into_response();
    };
    let mut handshake = describe(&app, peer, &headers, &uri);
    let id = handshake.connection_id.clone();

    handshake.authorizer = match authorize(&app, &handshake).await {
        Ok(authorizer) => authorizer,
        Err(status) => {
            app.logs().local(&format!("$connect {id} refused by the authorizer: {status}"));
            return refuse(status).into_response();
        }
    };
    let handshake = Arc::new(handshake);
    let protocol = match connect(&app, &handshake).await {
        Ok(protocol) => protocol,
        Err(response) => {
            app.logs().local(&format!("$connect {id} refused: {}", response.status()));
            return response.into_response();
        }
    };

    if let Some(protocol) = protocol.and_then(|p| HeaderValue::from_str(&p).ok()) {
        upgrade.set_selected_protocol(protocol);
    }
    let limits = app.settings.limits;
    let task_app = Arc::clone(&app);
    let guard = app.connection_task();
    let response = upgrade
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_frame_bytes)
        .on_upgrade(async move |socket| {
            let _guard = guard;
            super::socket::run(task_app, handshake, socket).await;
        });
    app.logs().local(&format!("$connect {id} accepted"));
    if let Some(warning) = bearer_only(&headers) {
        app.logs().local(&format!("WARN $connect {id}: {warning}"));
    }
    response
}

fn describe(app: &App, peer: SocketAddr, request_headers: &HeaderMap, uri: &Uri) -> Handshake {
    let headers: Vec<(String, String)> = request_headers
        .iter()
        .filter_map(|(name, value)| Some((header_name(name.as_str()), value.to_str().ok()?.to_owned())))
        .chain([
            ("X-Forwarded-For".to_owned(), peer.ip().to_string()),
            ("X-Forwarded-Port".to_owned(), app.endpoints.port().to_string()),
            ("X-Forwarded-Proto".to_owned(), "http".to_owned()),
        ])
        .collect();
    let query = uri.query().map(http::query_pairs).unwrap_or_default();
    let header = |name: &str| request_headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let host = header("host");
    Handshake {
        connection_id: http::random_id(),
        connected_at: Utc::now(),
        source_ip: peer.ip().to_string(),
        user_agent: header("user-agent"),
        domain_name: domain_name(if host.is_empty() { app.endpoints.authority() } else { host }),
        stage: app.settings.stage.clone(),
        api_id: app.settings.api_id.clone(),
        headers,
        query,
        authorizer: None,
    }
}

/// `$context.domainName`: the API's domain name, as AWS's sample events give it
/// (`abcd1234.execute-api.us-east-1.amazonaws.com`), so the Host header without its port
/// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-data-transformations.html>).
fn domain_name(host: String) -> String {
    match host.rsplit_once(':') {
        Some((name, port))
            if port.bytes().all(|b| b.is_ascii_digit()) && (!name.contains(':') || name.ends_with(']')) =>
        {
            name.to_owned()
        }
        _ => host,
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
async fn connect(app: &App, handshake: &Handshake) -> Result<Option<String>, Response<Body>> {
    let Some(function) = app.manifest.route("$connect") else { return Ok(None) };
    let event = handshake.connect_event(&http::random_id(), Utc::now());
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

/// A header name as AWS's sample events spell it (`Sec-WebSocket-Key`, `User-Agent`,
/// `X-Amzn-Trace-Id`): the HTTP server hands names over lower-cased, clients send them
/// capitalised, and API Gateway passes the client's spelling on. Each dash-separated word is
/// capitalised; `websocket` is `WebSocket`, as browsers send it.
fn header_name(lower: &str) -> String {
    lower
        .split('-')
        .map(|word| {
            if word == "websocket" {
                return "WebSocket".to_owned();
            }
            let mut chars = word.chars();
            chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_names_are_spelt_as_in_aws_samples() {
        let sample: serde_json::Value = serde_json::from_str(include_str!("../../../events/connect.json")).unwrap();
        for name in sample["headers"].as_object().unwrap().keys() {
            assert_eq!(&super::header_name(&name.to_ascii_lowercase()), name);
        }
    }

    #[test]
    fn the_domain_name_drops_the_port_of_any_host() {
        for (host, domain) in [
            ("127.0.0.1:3001", "127.0.0.1"),
            ("localhost", "localhost"),
            ("abcd1234.execute-api.us-east-1.amazonaws.com", "abcd1234.execute-api.us-east-1.amazonaws.com"),
            ("[::1]:3001", "[::1]"),
            ("[::1]", "[::1]"),
        ] {
            assert_eq!(super::domain_name(host.to_owned()), domain, "{host}");
        }
    }
}

/// What a browser needs to hear when the only subprotocol it offered carries its token: the 101
/// then names no protocol it offered, and browsers drop the socket (1006).
fn bearer_only(headers: &HeaderMap) -> Option<&'static str> {
    let offered: Vec<&str> = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    (!offered.is_empty() && offered.iter().all(|p| p.starts_with("bearer."))).then_some(
        "the client offered only a bearer.<token> subprotocol; a browser drops such a socket (1006) because the \
         answer names no protocol it offered: offer an application protocol too, e.g. \
         new WebSocket(url, [\"chat.v1\", \"bearer.\" + token])",
    )
}

#[cfg(test)]
mod bearer_tests {
    use super::*;

    #[test]
    fn a_bearer_only_offer_is_warned_and_one_with_an_application_protocol_is_not() {
        let mut headers = HeaderMap::new();
        headers.insert("sec-websocket-protocol", HeaderValue::from_static("bearer.abc.def.ghi"));
        assert!(bearer_only(&headers).is_some_and(|w| w.contains("chat.v1")));
        headers.insert("sec-websocket-protocol", HeaderValue::from_static("chat.v1, bearer.abc"));
        assert_eq!(bearer_only(&headers), None);
        assert_eq!(bearer_only(&HeaderMap::new()), None, "no subprotocol at all is fine");
    }
}
