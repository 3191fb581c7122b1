//! The Lambda Runtime API (`/2018-06-01/runtime/...`) one instance polls: next invocation,
//! its response or error, init errors.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::routing::{get, post};
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::http::{self, Body};

use super::job::Job;
use super::{InvokeError, MAX_RESPONSE};

/// The Runtime API one instance talks to.
#[derive(Debug)]
pub(super) struct RuntimeApi {
    pub(super) jobs: tokio::sync::Mutex<mpsc::Receiver<Job>>,
    pub(super) in_flight: Mutex<HashMap<String, oneshot::Sender<Result<Bytes, InvokeError>>>>,
    pub(super) init_error: Mutex<Option<String>>,
    /// The runtime asked for an invocation at least once (its init finished).
    pub(super) asked: AtomicBool,
    pub(super) function: String,
    pub(super) arn: String,
}

/// The Runtime API's routes, on this instance's own listener.
pub(super) fn router(api: Arc<RuntimeApi>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(async |State(api): State<Arc<RuntimeApi>>| api.next().await))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .fallback(async || {
            http::json(
                StatusCode::NOT_FOUND,
                &json!({ "errorMessage": "unknown Runtime API path", "errorType": "InvalidRequest" }),
            )
        })
        .with_state(api)
}

async fn response(State(api): State<Arc<RuntimeApi>>, Path(id): Path<String>, req: Request) -> Response<Body> {
    let body = http::read_body(req, MAX_RESPONSE).await;
    let too_large = || InvokeError::Function {
        function: api.function.clone(),
        error_type: "Function.ResponseSizeTooLarge".into(),
        error_message: format!("Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE} bytes)."),
    };
    api.complete(&id, body.ok_or_else(too_large))
}

async fn error(State(api): State<Arc<RuntimeApi>>, Path(id): Path<String>, req: Request) -> Response<Body> {
    let header_type =
        req.headers().get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = http::read_body(req, MAX_RESPONSE).await.unwrap_or_default();
    let (error_type, error_message) = reported_error(&body, header_type);
    api.complete(&id, Err(InvokeError::Function { function: api.function.clone(), error_type, error_message }))
}

async fn init_error(State(api): State<Arc<RuntimeApi>>, req: Request) -> Response<Body> {
    let body = http::read_body(req, MAX_RESPONSE).await.unwrap_or_default();
    let (error_type, message) = reported_error(&body, None);
    *api.init_error.lock().expect("init error") = Some(format!("{error_type}: {message}"));
    http::json(StatusCode::ACCEPTED, &json!({ "status": "OK" }))
}

impl RuntimeApi {
    pub(super) async fn next(&self) -> Response<Body> {
        self.asked.store(true, Ordering::Relaxed);
        let job = self.jobs.lock().await.recv().await;
        let Some(job) = job else {
            // The pool is gone: ws-local is stopping.
            return http::empty(StatusCode::GONE);
        };
        self.in_flight.lock().expect("in flight").insert(job.request_id.clone(), job.respond);
        let mut response = Response::new(Body::new(job.payload));
        let headers = response.headers_mut();
        let mut set = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        };
        set("content-type", "application/json");
        set("lambda-runtime-aws-request-id", &job.request_id);
        set("lambda-runtime-deadline-ms", &job.deadline_ms.to_string());
        set("lambda-runtime-invoked-function-arn", &self.arn);
        set(
            "lambda-runtime-trace-id",
            &format!("Root=1-{:08x}-{}", chrono::Utc::now().timestamp(), &job.request_id.replace('-', "")[..24]),
        );
        response
    }

    pub(super) fn complete(&self, id: &str, outcome: Result<Bytes, InvokeError>) -> Response<Body> {
        let Some(respond) = self.in_flight.lock().expect("in flight").remove(id) else {
            return http::json(
                StatusCode::BAD_REQUEST,
                &json!({ "errorMessage": format!("no invocation {id} in flight"), "errorType": "InvalidRequestID" }),
            );
        };
        let _ = respond.send(outcome);
        http::json(StatusCode::ACCEPTED, &json!({ "status": "OK" }))
    }
}

/// `errorType` and `errorMessage` of an error the runtime reported.
pub(super) fn reported_error(body: &[u8], header_type: Option<String>) -> (String, String) {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let field = |name: &str| parsed.get(name).and_then(Value::as_str).map(str::to_owned);
    let error_type = field("errorType").or(header_type).unwrap_or_else(|| "Unhandled".into());
    let message = field("errorMessage").unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    (error_type, message)
}
