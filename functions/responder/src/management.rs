//! The notifier port and its adapter: the API Gateway Management API through the AWS SDK.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::operation::delete_connection::DeleteConnectionError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_apigatewaymanagement::{Client, config};
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};
use ws_shared::id::ConnectionId;

use crate::endpoint::Endpoint;

/// Why a post did not deliver.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// `GoneException` (410): the client is no longer connected.
    #[error("the connection is gone")]
    Gone,
    /// `LimitExceededException` (429): the account's Management API quota, or this client's full
    /// buffer. The message was not delivered; the caller paces and tries again.
    #[error("the Management API throttled the post (429 LimitExceededException)")]
    Throttled,
    /// Anything else, after the SDK's retries.
    #[error("posting to the connection failed")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// The Management API calls the responder makes on one connection.
pub trait Poster: Send + Sync {
    /// Posts `data` to `connection` through `endpoint` within `budget` (a 429 comes back as
    /// [`PostError::Throttled`], not retried).
    fn post(
        &self,
        endpoint: &Endpoint,
        connection: &ConnectionId,
        data: Vec<u8>,
        budget: Duration,
    ) -> impl Future<Output = Result<(), PostError>> + Send;

    /// Closes `connection` (`DeleteConnection`); API Gateway then sends its `$disconnect`. The
    /// errors are a post's: 410 when it is already gone, a 429 is `Throttled`.
    fn close(
        &self,
        endpoint: &Endpoint,
        connection: &ConnectionId,
        budget: Duration,
    ) -> impl Future<Output = Result<(), PostError>> + Send;
}

/// A Management API call that did not end within the time it was given: its outcome is unknown.
#[derive(Debug, thiserror::Error)]
#[error("the Management API call did not end within {0:?} (cut at the invocation's deadline; its outcome is unknown)")]
pub struct CutShort(pub Duration);

/// `call`, cut at `budget` (the SDK's operation timeout, without a per-call config override:
/// an override rebuilds the operation's runtime components on every call, which the profile of a
/// fan-out showed among the costs of each post).
async fn within<T, E>(budget: Duration, call: impl Future<Output = Result<T, E>>) -> Result<Result<T, E>, PostError> {
    // Boxed: the SDK call is a large future, and it would otherwise sit inside every fan-out future.
    tokio::time::timeout(budget, Box::pin(call)).await.map_err(|_| PostError::Failed(Box::new(CutShort(budget))))
}

/// A failed Management API call as a [`PostError`]: 410 → `Gone`, 429 → `Throttled`.
fn classify<E>(
    err: aws_sdk_apigatewaymanagement::error::SdkError<E, HttpResponse>,
    gone: bool,
    throttled: bool,
) -> PostError
where
    E: std::error::Error + Send + Sync + 'static,
{
    if gone {
        PostError::Gone
    } else if throttled || err.raw_response().is_some_and(|r| r.status().as_u16() == 429) {
        PostError::Throttled
    } else {
        PostError::Failed(Box::new(err))
    }
}

type ClientFactory = dyn Fn(&Endpoint) -> Client + Send + Sync;

/// The Management API, with one SDK client per endpoint (and so per API and region, each signed
/// for its region), built on first use and kept for the life of the process (each holds its own
/// connection pool).
pub struct ManagementApi {
    make_client: Arc<ClientFactory>,
    clients: Mutex<HashMap<Endpoint, Client>>,
}

impl std::fmt::Debug for ManagementApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let endpoints: Vec<String> =
            self.clients.lock().map(|c| c.keys().map(ToString::to_string).collect()).unwrap_or_default();
        f.debug_struct("ManagementApi").field("endpoints", &endpoints).finish_non_exhaustive()
    }
}

/// Retries for posts: the SDK's standard strategy (exponential backoff with jitter) retries
/// transient errors, but never throttling ([`NoThrottleRetries`]): a 429 goes back to the caller,
/// which paces the fan-out to the quota (`crate::pacing`) and tries the post again later. Attempts
/// are capped here; the invocation's remaining time caps the total (see [`Poster::post`]).
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(6)
        .with_initial_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_secs(2))
}

/// Forbids the SDK's own retry of a `429`: retrying a throttled post at once, inside the SDK,
/// hammers a quota shared by every fan-out (issue 21 measured 63% of requests refused that way).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoThrottleRetries;

impl ClassifyRetry for NoThrottleRetries {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.response() {
            Some(response) if response.status().as_u16() == 429 => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "no retries of throttled posts"
    }
}

impl ManagementApi {
    /// Clients from the process's SDK config (region, credentials, HTTP client) with `endpoint`.
    pub fn new(sdk: &SdkConfig) -> Self {
        let base = config::Builder::from(sdk).retry_config(retry_config()).retry_classifier(NoThrottleRetries);
        Self::with_factory(move |endpoint: &Endpoint| {
            let mut config = base.clone().endpoint_url(endpoint.as_str());
            // Signed for the region of the API the endpoint reaches (another region's API
            // refuses a signature for this one).
            if let Some(region) = endpoint.region() {
                config = config.region(aws_config::Region::new(region.to_owned()));
            }
            Client::from_conf(config.build())
        })
    }

    /// Clients from `make_client` (tests pass mocked clients).
    pub fn with_factory(make_client: impl Fn(&Endpoint) -> Client + Send + Sync + 'static) -> Self {
        Self { make_client: Arc::new(make_client), clients: Mutex::new(HashMap::new()) }
    }

    fn client(&self, endpoint: &Endpoint) -> Client {
        // A poisoned lock only means another post panicked mid-insert; the map is still usable.
        let mut clients = self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        clients.entry(endpoint.clone()).or_insert_with(|| (self.make_client)(endpoint)).clone()
    }

    /// How many endpoints have a client (tests).
    pub fn cached_clients(&self) -> usize {
        self.clients.lock().map(|c| c.len()).unwrap_or_default()
    }
}

impl Poster for ManagementApi {
    async fn post(
        &self,
        endpoint: &Endpoint,
        connection: &ConnectionId,
        data: Vec<u8>,
        budget: Duration,
    ) -> Result<(), PostError> {
        let call =
            self.client(endpoint).post_to_connection().connection_id(connection.as_str()).data(Blob::new(data)).send();
        within(budget, call).await?.map(|_| ()).map_err(|err| {
            let gone = matches!(err.as_service_error(), Some(PostToConnectionError::GoneException(_)));
            let throttled = matches!(err.as_service_error(), Some(PostToConnectionError::LimitExceededException(_)));
            classify(err, gone, throttled)
        })
    }

    async fn close(&self, endpoint: &Endpoint, connection: &ConnectionId, budget: Duration) -> Result<(), PostError> {
        let call = self.client(endpoint).delete_connection().connection_id(connection.as_str()).send();
        within(budget, call).await?.map(|_| ()).map_err(|err| {
            let gone = matches!(err.as_service_error(), Some(DeleteConnectionError::GoneException(_)));
            let throttled = matches!(err.as_service_error(), Some(DeleteConnectionError::LimitExceededException(_)));
            classify(err, gone, throttled)
        })
    }
}
