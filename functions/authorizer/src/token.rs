//! Where a `$connect` carries its token, in the order looked at:
//!
//! 1. the `token` query parameter (`wss://…/prod?token=<jwt>`), what most WebSocket clients can
//!    do;
//! 2. an `Authorization: Bearer <jwt>` header, for clients that can set headers (not browsers);
//! 3. a `Sec-WebSocket-Protocol` entry `bearer.<jwt>`, how a browser sends a token without
//!    putting it in the URL: `new WebSocket(url, ["chat.v1", "bearer." + jwt])`.
//!    `ConnectFunction` answers with the first non-`bearer.` entry, so offer one.
//!
//! Configure the authorizer's identity sources to match (e.g. `route.request.querystring.token`)
//! or leave them empty so every request reaches the function.

use ws_shared::apigw::TOKEN_PROTOCOL_PREFIX;

use crate::{AuthorizerEvent, Reason};

/// Longest token accepted, in bytes; anything longer is refused unparsed.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

fn header<'a>(event: &'a AuthorizerEvent, name: &str) -> Option<&'a str> {
    event.headers.as_ref()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The token of a request, or why there is none usable.
pub fn find(event: &AuthorizerEvent) -> Result<&str, Reason> {
    let from_query = event.query_string_parameters.as_ref().and_then(|q| q.get("token")).map(String::as_str);
    let from_header = || {
        header(event, "authorization").and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
    };
    let from_protocol = || {
        header(event, "sec-websocket-protocol")?
            .split(',')
            .map(str::trim)
            .find_map(|entry| entry.strip_prefix(TOKEN_PROTOCOL_PREFIX))
    };
    let token = from_query.or_else(from_header).or_else(from_protocol).filter(|t| !t.is_empty());
    match token {
        None => Err(Reason::MissingToken),
        Some(t) if t.len() > MAX_TOKEN_BYTES => Err(Reason::TokenTooLarge),
        Some(t) => Ok(t),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(value: serde_json::Value) -> AuthorizerEvent {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_query_wins_then_the_header_then_the_subprotocol() {
        let all = event(json!({
            "queryStringParameters": {"token": "q"},
            "headers": {"Authorization": "Bearer h", "Sec-WebSocket-Protocol": "chat.v1, bearer.p"}
        }));
        assert_eq!(find(&all), Ok("q"));
        let no_query = event(json!({"headers": {"authorization": "bearer h", "sec-websocket-protocol": "bearer.p"}}));
        assert_eq!(find(&no_query), Ok("h"));
        let protocol_only = event(json!({"headers": {"Sec-WebSocket-Protocol": "chat.v1, bearer.p"}}));
        assert_eq!(find(&protocol_only), Ok("p"));
    }

    #[test]
    fn no_usable_token_is_missing_and_an_overlong_one_is_refused_unparsed() {
        assert_eq!(find(&event(json!({}))), Err(Reason::MissingToken));
        assert_eq!(
            find(&event(json!({"headers": {"Authorization": "Basic dXNlcjpwdw=="}}))),
            Err(Reason::MissingToken)
        );
        assert_eq!(find(&event(json!({"queryStringParameters": {"token": ""}}))), Err(Reason::MissingToken));
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(find(&event(json!({"queryStringParameters": {"token": huge}}))), Err(Reason::TokenTooLarge));
    }
}
