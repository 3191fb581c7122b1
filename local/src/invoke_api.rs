//! Lambda's Invoke API, `POST /2015-03-31/functions/{name}/invocations`, so `aws lambda invoke
//! --endpoint-url` and the SDKs can call the functions (the responder, above all).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};

use crate::http::{self, Body};
use crate::state::App;

const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
const MAX_ASYNC_PAYLOAD: usize = 256 * 1024;

/// The function a (decoded) path segment names: a name, `name:qualifier`, or an ARN.
fn function_name(segment: &str) -> String {
    let name = segment.rsplit_once(":function:").map_or(segment, |(_, rest)| rest);
    name.split(':').next().unwrap_or(name).to_owned()
}

/// `POST /2015-03-31/functions/{name}/invocations` (the name percent-decoded by the router).
pub async fn handle(State(app): State<Arc<App>>, Path(segment): Path<String>, req: Request) -> Response<Body> {
    let requested = function_name(&segment);
    let Some(config) = app.lambda.resolve(&requested) else {
        let name = requested;
        return http::aws_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!(
                "Function not found: arn:aws:lambda:{}:{}:function:{name}",
                crate::config::REGION,
                crate::config::ACCOUNT
            ),
        );
    };
    let (name, arn) = (config.name.clone(), config.arn());
    let invocation_type = req
        .headers()
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_owned();
    let limit = if invocation_type == "Event" { MAX_ASYNC_PAYLOAD } else { MAX_SYNC_PAYLOAD };
    let Some(payload) = http::read_body(req, limit).await else {
        return http::aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            &format!("Request must be smaller than {limit} bytes for the {invocation_type} invocation type"),
        );
    };
    let payload = if payload.is_empty() { Bytes::from_static(b"{}") } else { payload };
    if serde_json::from_slice::<serde_json::Value>(&payload).is_err() {
        return http::aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Could not parse request body into json: the payload must be a JSON document.",
        );
    }
    match invocation_type.as_str() {
        "RequestResponse" => {}
        "Event" => {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                if let Some(Err(e)) = app.lambda.invoke(&name, payload).await {
                    app.logs().local(&format!("asynchronous invocation of {name} failed: {e}"));
                }
            });
            return http::empty(StatusCode::ACCEPTED);
        }
        "DryRun" => return http::empty(StatusCode::NO_CONTENT),
        other => {
            return http::aws_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                &format!("X-Amz-Invocation-Type {other:?}: use RequestResponse, Event or DryRun."),
            );
        }
    }
    let outcome = app.lambda.invoke(&name, payload).await.expect("the function exists: checked above");
    let mut response = match outcome {
        Ok(result) => {
            let mut response = http::empty(StatusCode::OK);
            *response.body_mut() = Body::new(result);
            response
        }
        Err(e) => {
            let mut response = http::json(StatusCode::OK, &e.payload());
            response.headers_mut().insert("x-amz-function-error", HeaderValue::from_static("Unhandled"));
            response
        }
    };
    response.headers_mut().insert("x-amz-executed-version", HeaderValue::from_static("$LATEST"));
    if let Ok(arn) = HeaderValue::from_str(&arn) {
        response.headers_mut().insert("x-amzn-function-arn", arn);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::function_name;

    #[test]
    fn a_function_is_named_by_name_qualified_name_or_arn() {
        assert_eq!(function_name("WebSocketResponder"), "WebSocketResponder");
        assert_eq!(function_name("WebSocketResponder:$LATEST"), "WebSocketResponder");
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:000000000000:function:WebSocketResponder"),
            "WebSocketResponder"
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:000000000000:function:WebSocketResponder:live"),
            "WebSocketResponder"
        );
    }
}
