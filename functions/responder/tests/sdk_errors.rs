//! Error mapping at the SDK boundary, with aws-smithy-mocks standing in for the Management API.

// The fan-out future (SDK calls inside the handler) nests deeper than the default limit of 128
// when the compiler computes its layout, as in main.rs.
#![recursion_limit = "256"]

use std::sync::Arc;

use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::{PostToConnectionError, PostToConnectionOutput};
use aws_sdk_apigatewaymanagement::types::error::GoneException;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use serde_json::{Value, json};
use ws_responder::management::{ManagementApi, retry_config};
use ws_responder::{Config, Responder};
use ws_shared::dynamo::DynamoStore;
use ws_shared::testing::{Captured, FixedClock};

fn responder(rule: &Rule) -> Responder<ManagementApi, DynamoStore> {
    let rule = rule.clone();
    let api = ManagementApi::with_factory(move |_endpoint| -> Client {
        mock_client!(aws_sdk_apigatewaymanagement, RuleMode::Sequential, [&rule], |c| c.retry_config(retry_config()))
    });
    let config = Config::from_env(&|_: &str| None).expect("defaults are valid");
    Responder::new(api, None, &config, Arc::new(Captured::default())).with_clock(Arc::new(FixedClock::default()))
}

fn event() -> Value {
    serde_json::from_str(include_str!("../../../events/responder.json")).unwrap()
}

async fn invoke(responder: &Responder<ManagementApi, DynamoStore>) -> Value {
    let deadline = u64::try_from(FixedClock::default().0.timestamp_millis()).unwrap() + 10_000;
    serde_json::to_value(responder.handle(event(), "req-1", deadline).await).unwrap()
}

#[tokio::test]
async fn gone_exception_is_a_410() {
    let rule = mock!(Client::post_to_connection)
        .then_error(|| PostToConnectionError::GoneException(GoneException::builder().build()));

    assert_eq!(invoke(&responder(&rule)).await, json!({"statusCode": 410}));
    assert_eq!(rule.num_calls(), 1, "gone is final: no retry");
}

#[tokio::test]
async fn throttling_is_retried_and_then_succeeds() {
    let rule = mock!(Client::post_to_connection)
        .sequence()
        .http_status(429, Some(r#"{"__type":"LimitExceededException","message":"slow down"}"#.into()))
        .output(|| PostToConnectionOutput::builder().build())
        .build();

    assert_eq!(invoke(&responder(&rule)).await, json!({"statusCode": 200}));
    assert_eq!(rule.num_calls(), 2, "one throttled attempt, one retry");
}

#[tokio::test]
async fn a_server_error_is_a_500_after_the_retries() {
    let rule = mock!(Client::post_to_connection).sequence().http_status(500, None).repeatedly().build();

    let result = invoke(&responder(&rule)).await;

    assert_eq!(result, json!({"statusCode": 500, "error": "the post failed; see the function's logs"}));
    assert_eq!(rule.num_calls(), 6, "every attempt the retry config allows");
}

#[tokio::test]
async fn the_client_is_built_once_per_endpoint() {
    let rule = mock!(Client::post_to_connection)
        .sequence()
        .output(|| PostToConnectionOutput::builder().build())
        .repeatedly()
        .build();
    let responder = responder(&rule);

    invoke(&responder).await;
    invoke(&responder).await;
    let mut other = event();
    other["wsEndpoint"] = json!("https://other.execute-api.us-east-1.amazonaws.com/prod");
    responder.handle(other, "req-2", u64::MAX).await;

    assert_eq!(rule.num_calls(), 3);
    assert_eq!(responder.poster().cached_clients(), 2);
}
