//! The issuer's signing keys: fetched once per process, cached, refetched on an unknown `kid` at
//! most once a minute.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use tokio::sync::Mutex;
use ws_shared::clock::Clock;
use ws_shared::deadline::Deadline;

/// Least time between two fetches when the cache already has keys (an unknown `kid` is more
/// often a forged token than a rotation; this bounds what forged tokens can make us fetch).
pub const REFETCH_INTERVAL: Duration = Duration::from_mins(1);
/// Least time between two fetches while the cache has no keys at all (the first fetch failed).
pub const RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// Longest a JWKS fetch may take; an authorizer has little time.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("fetching the JWKS from {url} failed")]
    Fetch {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    #[error("the JWKS at {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("the JWKS at {url} took longer than {FETCH_TIMEOUT:?}")]
    Timeout { url: String },
    #[error("the JWKS at {url} is not a JSON Web Key Set")]
    Invalid {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the JWKS at {url} is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge { url: String },
}

/// Where the key set comes from.
pub trait JwksSource: Send + Sync {
    /// The key set, within `budget` (the invocation's time left when the fetch starts).
    fn fetch(&self, budget: Duration) -> impl Future<Output = Result<JwkSet, JwksError>> + Send;
}

/// The key set over HTTPS (or `http://` for local issuers).
pub struct HttpJwks {
    url: String,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl std::fmt::Debug for HttpJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpJwks").field("url", &self.url).finish_non_exhaustive()
    }
}

impl HttpJwks {
    /// A client trusting the system's root certificates.
    pub fn new(url: impl Into<String>) -> std::io::Result<Self> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(Arc::new(rustls::crypto::ring::default_provider()))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self { url: url.into(), client: Client::builder(TokioExecutor::new()).build(https) })
    }
}

impl JwksSource for HttpJwks {
    async fn fetch(&self, budget: Duration) -> Result<JwkSet, JwksError> {
        let url = || self.url.clone();
        let uri = self.url.parse().map_err(|e| JwksError::Fetch { url: url(), source: Box::new(e) })?;
        let request = async {
            let response =
                self.client.get(uri).await.map_err(|e| JwksError::Fetch { url: url(), source: Box::new(e) })?;
            let status = response.status().as_u16();
            if status != 200 {
                return Err(JwksError::Status { url: url(), status });
            }
            let body = http_body_util::Limited::new(response.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
                .map_err(|_| JwksError::TooLarge { url: url() })?
                .to_bytes();
            serde_json::from_slice(&body).map_err(|source| JwksError::Invalid { url: url(), source })
        };
        // The invocation's time left bounds the fetch, and so does FETCH_TIMEOUT with a long one.
        tokio::time::timeout(FETCH_TIMEOUT.min(budget), request).await.map_err(|_| JwksError::Timeout { url: url() })?
    }
}

/// Why no key could be found for a `kid`.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no key with this kid in the JWKS")]
    UnknownKid,
    #[error("the JWKS is unavailable")]
    Unavailable(#[source] JwksError),
    #[error("the JWKS could not be fetched moments ago; not retrying for {RETRY_INTERVAL:?}")]
    CoolingDown,
}

struct State {
    keys: Option<JwkSet>,
    /// When an unknown `kid` last caused a refetch.
    last_refetch: Option<DateTime<Utc>>,
    /// When a fetch last failed while there were no keys at all.
    last_failure: Option<DateTime<Utc>>,
}

fn within(last: Option<DateTime<Utc>>, now: DateTime<Utc>, interval: Duration) -> bool {
    last.is_some_and(|last| now.signed_duration_since(last).to_std().map_or(true, |elapsed| elapsed < interval))
}

/// The cached key set of one issuer.
pub struct KeyCache<S> {
    source: S,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl<S> std::fmt::Debug for KeyCache<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache").finish_non_exhaustive()
    }
}

impl<S: JwksSource> KeyCache<S> {
    pub fn new(source: S, clock: Arc<dyn Clock>) -> Self {
        Self { source, clock, state: Mutex::new(State { keys: None, last_refetch: None, last_failure: None }) }
    }

    /// The key `kid` names: from the cache, else after one (rate-limited) fetch bounded by
    /// `deadline`.
    pub async fn key(&self, kid: &str, deadline: &Deadline) -> Result<Jwk, KeyError> {
        let mut state = self.state.lock().await;
        if let Some(key) = state.keys.as_ref().and_then(|keys| keys.find(kid)) {
            return Ok(key.clone());
        }
        let now = self.clock.now();
        if state.keys.is_some() {
            if within(state.last_refetch, now, REFETCH_INTERVAL) {
                return Err(KeyError::UnknownKid);
            }
            state.last_refetch = Some(now);
        } else if within(state.last_failure, now, RETRY_INTERVAL) {
            return Err(KeyError::CoolingDown);
        }
        match self.source.fetch(deadline.budget()).await {
            Ok(keys) => {
                let found = keys.find(kid).cloned();
                tracing::info!(keys = keys.keys.len(), "JWKS fetched");
                state.keys = Some(keys);
                found.ok_or(KeyError::UnknownKid)
            }
            // Keep serving the keys we have: a failed refetch says nothing about them.
            Err(err) if state.keys.is_some() => {
                tracing::warn!(error = ws_shared::log::error_chain(&err), "JWKS refetch failed");
                Err(KeyError::UnknownKid)
            }
            Err(err) => {
                state.last_failure = Some(now);
                Err(KeyError::Unavailable(err))
            }
        }
    }
}
