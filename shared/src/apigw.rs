//! API Gateway WebSocket events in, Lambda proxy responses out: what `$connect` and
//! `$disconnect` both need.

use std::collections::BTreeMap;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use serde::Serialize;
use serde_json::Value;

use crate::id::{ConnectionId, IdError};
use crate::log::error_chain;
use crate::metrics::{Counters, Metric};

/// Prefix of a `Sec-WebSocket-Protocol` entry that carries a bearer token
/// (`bearer.<jwt>`) rather than naming a protocol. Browsers cannot set `Authorization` on a
/// WebSocket, so this is how they send a token without putting it in the URL.
pub const TOKEN_PROTOCOL_PREFIX: &str = "bearer.";

/// Why an event cannot be handled. All of them are the caller's (or a misconfigured route's)
/// fault: 400.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the event is not an API Gateway WebSocket event: {0}")]
    Malformed(#[source] serde_json::Error),
    #[error("the event has no requestContext.connectionId")]
    MissingConnectionId,
    #[error("invalid requestContext.connectionId")]
    InvalidConnectionId(#[source] IdError),
}

/// Parses a raw event. Taken as a `Value` (not typed by the runtime) so that a malformed event
/// becomes our 400 instead of a runtime error.
pub fn parse_event(event: Value) -> Result<ApiGatewayWebsocketProxyRequest, EventError> {
    serde_json::from_value(event).map_err(EventError::Malformed)
}

/// The connection the event is about.
pub fn connection_id(event: &ApiGatewayWebsocketProxyRequest) -> Result<ConnectionId, EventError> {
    let raw = event.request_context.connection_id.as_deref().ok_or(EventError::MissingConnectionId)?;
    ConnectionId::parse(raw).map_err(EventError::InvalidConnectionId)
}

/// Every entry of the `Sec-WebSocket-Protocol` header(s), in the order offered.
pub fn offered_subprotocols(event: &ApiGatewayWebsocketProxyRequest) -> Vec<&str> {
    let single = protocols_in(&event.headers);
    if single.is_empty() { protocols_in(&event.multi_value_headers) } else { single }
}

fn protocols_in(map: &aws_lambda_events::http::HeaderMap) -> Vec<&str> {
    map.get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// The subprotocol to answer with: the first offered entry that is not a token carrier. A
/// browser that offered protocols drops the socket unless the handshake answers with one.
pub fn choose_subprotocol(event: &ApiGatewayWebsocketProxyRequest) -> Option<String> {
    offered_subprotocols(event)
        .into_iter()
        .find(|p| !p.starts_with(TOKEN_PROTOCOL_PREFIX) && is_subprotocol_token(p))
        .map(str::to_owned)
}

/// Longest subprotocol name echoed back; real ones are a few characters (`chat.v1`).
const MAX_SUBPROTOCOL_LEN: usize = 128;

/// A subprotocol is an HTTP token (RFC 6455 §4.1, RFC 9110 §5.6.2). Anything else, or an
/// oversized one, is never echoed: the answer must not carry arbitrary client bytes.
fn is_subprotocol_token(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= MAX_SUBPROTOCOL_LEN
        && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A Lambda proxy response as API Gateway's WebSocket routes read it. Error bodies are the
/// status's reason phrase only: never internals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WsResponse {
    pub status_code: u16,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl WsResponse {
    pub fn ok() -> Self {
        Self { status_code: 200, headers: BTreeMap::new(), body: None }
    }

    /// A refusal with a generic body.
    pub fn status(status_code: u16) -> Self {
        let reason = aws_lambda_events::http::StatusCode::from_u16(status_code)
            .ok()
            .and_then(|status| status.canonical_reason())
            .unwrap_or("Error");
        Self { status_code, headers: BTreeMap::new(), body: Some(reason.to_owned()) }
    }

    #[must_use]
    pub fn with_subprotocol(mut self, protocol: Option<String>) -> Self {
        if let Some(protocol) = protocol {
            self.headers.insert("Sec-WebSocket-Protocol".to_owned(), protocol);
        }
        self
    }
}

/// The response to a route invocation that failed with `status`: a 5xx counts `Errors` and logs
/// the whole error chain at ERROR, a 4xx logs the reason at WARN; the client sees only the
/// status's reason phrase. `route` names the route in the log message (`connect failed`).
pub fn failure<M: Metric>(
    route: &str,
    status: u16,
    error: &(dyn std::error::Error + 'static),
    counters: &mut Counters<'_, M>,
) -> WsResponse {
    if status >= 500 {
        counters.incr(M::ERRORS);
        tracing::error!(status, error = error_chain(error), "{route} failed");
    } else {
        tracing::warn!(status, reason = error_chain(error), "{route} refused");
    }
    WsResponse::status(status)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event_with(headers: &Value, multi: &Value) -> ApiGatewayWebsocketProxyRequest {
        parse_event(json!({
            "headers": headers,
            "multiValueHeaders": multi,
            "requestContext": {"connectionId": "abc=", "connectedAt": 1, "requestTimeEpoch": 1},
        }))
        .unwrap()
    }

    #[test]
    fn the_first_offered_protocol_that_is_not_a_token_is_chosen() {
        let event = event_with(&json!({"Sec-WebSocket-Protocol": "bearer.eyJ.x.y, chat.v2, chat.v1"}), &json!({}));
        assert_eq!(choose_subprotocol(&event).as_deref(), Some("chat.v2"));
    }

    #[test]
    fn multi_value_headers_are_read_when_the_single_ones_are_absent() {
        let event = event_with(&json!({}), &json!({"sec-websocket-protocol": ["chat.v1", "chat.v0"]}));
        assert_eq!(offered_subprotocols(&event), ["chat.v1", "chat.v0"]);
    }

    #[test]
    fn nothing_is_chosen_when_nothing_or_only_a_token_is_offered() {
        assert_eq!(choose_subprotocol(&event_with(&json!({}), &json!({}))), None);
        let only_token = event_with(&json!({"Sec-WebSocket-Protocol": "bearer.abc"}), &json!({}));
        assert_eq!(choose_subprotocol(&only_token), None);
    }

    #[test]
    fn a_missing_or_invalid_connection_id_is_an_event_error() {
        let no_id = parse_event(json!({"requestContext": {"connectedAt": 1, "requestTimeEpoch": 1}})).unwrap();
        assert!(matches!(connection_id(&no_id), Err(EventError::MissingConnectionId)));
        let bad =
            parse_event(json!({"requestContext": {"connectionId": "a#b", "connectedAt": 1, "requestTimeEpoch": 1}}))
                .unwrap();
        assert!(matches!(connection_id(&bad), Err(EventError::InvalidConnectionId(_))));
        assert!(matches!(parse_event(json!([1, 2])), Err(EventError::Malformed(_))));
    }

    #[test]
    fn error_responses_carry_only_the_reason_phrase() {
        assert_eq!(
            serde_json::to_value(WsResponse::status(500)).unwrap(),
            json!({"statusCode": 500, "body": "Internal Server Error"})
        );
        assert_eq!(
            serde_json::to_value(WsResponse::ok().with_subprotocol(Some("chat.v1".into()))).unwrap(),
            json!({"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "chat.v1"}})
        );
    }
}
