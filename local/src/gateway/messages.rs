//! A client's message to its route: `$request.body.action`, else `$default`; no route is API
//! Gateway's `Forbidden` frame; a two-way route's answer goes back to the client.

use std::sync::Arc;

use axum::extract::ws::Message;
use bytes::Bytes;
use chrono::Utc;
use serde_json::{Value, json};

use super::registry::{Connection, Outbound};
use crate::events::Handshake;
use crate::http;
use crate::manifest::Trigger;
use crate::state::App;

/// Sends a client's message to its route (by the manifest's `route_selection_expression`,
/// `$request.body.action` unless it says otherwise; else `$default`) without
/// holding up the socket; no route → API Gateway's `Forbidden` frame.
pub(super) fn route(app: &Arc<App>, handshake: &Arc<Handshake>, connection: &Arc<Connection>, body: String) {
    let action = app.manifest.route_key(&body);
    if let Some(template) = action.as_deref().and_then(|a| app.manifest.mock_routes.get(a)) {
        // A MOCK integration: API Gateway answers from the route's template, no function runs.
        let answer = mock_answer(template, &connection.id, &http::random_id(), Utc::now().timestamp_millis());
        let connection = Arc::clone(connection);
        tokio::spawn(async move { connection.send(Outbound::Message(Message::text(answer))).await });
        return;
    }
    let function = action
        .clone()
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
            // API Gateway says only "Forbidden"; the local stack says why and what to do.
            let key = action.as_deref().map_or_else(|| "none".to_owned(), |a| format!("{a:?}"));
            app.logs().local(&format!(
                "message from {} answered Forbidden: no route for its selection key ({key}) and no $default \
                 route; add a function with \"trigger\": {{\"type\": \"route\", \"route\": \"…\"}} to the manifest",
                connection.id
            ));
            connection.send(error_frame("Forbidden")).await;
            return;
        };
        let Trigger::Route { route_response, .. } = &function.trigger else { return };
        let route = action.as_deref().filter(|a| function.trigger.is_route(a)).unwrap_or("$default");
        let event = handshake.message_event(route, &body, &request_id, Utc::now());
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

/// A MOCK route's answer: its template with API Gateway's `$context` values that ws-local knows
/// (`connectionId`, `requestId`, `requestTimeEpoch`) put in.
fn mock_answer(template: &str, connection_id: &str, request_id: &str, at_ms: i64) -> String {
    template
        .replace("$context.requestTimeEpoch", &at_ms.to_string())
        .replace("$context.connectionId", connection_id)
        .replace("$context.requestId", request_id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_mock_answer_fills_in_the_context_it_names() {
        let template = r#"{"type":"pong","at":$context.requestTimeEpoch,"id":"$context.connectionId"}"#;
        assert_eq!(super::mock_answer(template, "abc=", "r1", 17), r#"{"type":"pong","at":17,"id":"abc="}"#);
    }
}
