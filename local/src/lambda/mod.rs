//! Lambda, locally: every function runs as its real binary against an implementation of the
//! Lambda Runtime API (`/2018-06-01/runtime/...`) that ws-local serves to that instance alone.
//!
//! One pool per function: an invocation takes a warm idle instance, or starts a new one while
//! fewer than `max_instances` are busy, or waits for one. A crash, an init failure or a timeout
//! fails that invocation the way Lambda reports it (`Runtime.ExitError`, `Sandbox.Timedout`, ...)
//! and the instance is thrown away; the next invocation gets a fresh one.
//!
//! - [`pool`]: the instances of one function, started, reused and thrown away;
//! - [`runtime_api`]: the Runtime API one instance polls;
//! - [`job`]: one invocation handed from the pool to an instance's Runtime API.

mod job;
mod pool;
mod runtime_api;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::logs::Logs;

use self::pool::Pool;

/// Largest response a function may return (Lambda's synchronous limit).
const MAX_RESPONSE: usize = 6 * 1024 * 1024;

/// What a function instance is started with.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    pub name: String,
    pub binary: PathBuf,
    /// The whole environment of the process (nothing is inherited from ws-local).
    pub environment: BTreeMap<String, String>,
    pub timeout: Duration,
    pub memory_mb: u64,
    pub max_instances: usize,
    pub region: String,
    pub account: String,
}

impl FunctionConfig {
    pub fn arn(&self) -> String {
        format!("arn:aws:lambda:{}:{}:function:{}", self.region, self.account, self.name)
    }
}

/// Why an invocation produced no result. The `error_type`s are Lambda's.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("{function}: could not start {binary}: {source}")]
    Start {
        function: String,
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{function}: the runtime failed to start: {reason}")]
    Init { function: String, reason: String },
    #[error("{function}: runtime exited with error: {status}")]
    Exited { function: String, status: String },
    #[error("{function}: task timed out after {seconds:.2} seconds")]
    TimedOut { function: String, seconds: f64 },
    #[error("{function}: {error_type}: {error_message}")]
    Function { function: String, error_type: String, error_message: String },
}

impl InvokeError {
    /// The `errorType` Lambda reports for this failure.
    pub fn error_type(&self) -> String {
        match self {
            Self::Start { .. } | Self::Init { .. } => "Runtime.InitError".into(),
            Self::Exited { .. } => "Runtime.ExitError".into(),
            Self::TimedOut { .. } => "Sandbox.Timedout".into(),
            Self::Function { error_type, .. } => error_type.clone(),
        }
    }

    /// The body the Invoke API returns with `X-Amz-Function-Error: Unhandled`.
    pub fn payload(&self) -> Value {
        let message = match self {
            Self::Function { error_message, .. } => error_message.clone(),
            other => other.to_string(),
        };
        json!({ "errorMessage": message, "errorType": self.error_type() })
    }
}

/// Every function's pool, by name.
#[derive(Debug)]
pub struct Lambda {
    pools: HashMap<String, Arc<Pool>>,
}

impl Lambda {
    pub fn new(functions: Vec<FunctionConfig>, logs: &Logs) -> Self {
        let pools = functions.into_iter().map(|f| (f.name.clone(), Arc::new(Pool::new(f, logs.clone())))).collect();
        Self { pools }
    }

    pub fn config(&self, name: &str) -> Option<&FunctionConfig> {
        self.pools.get(name).map(|p| &p.config)
    }

    /// The function `name` means: a manifest name, or the name Terraform deploys it under
    /// (`<name_prefix>-<name>`, e.g. `ws-connection-local-WebSocketResponder`), so the same
    /// `aws lambda invoke --function-name` works against ws-local and the stack.
    pub fn resolve(&self, name: &str) -> Option<&FunctionConfig> {
        self.config(name).or_else(|| {
            self.pools
                .values()
                .map(|p| &p.config)
                .find(|c| name.strip_suffix(c.name.as_str()).is_some_and(|prefix| prefix.ends_with('-')))
        })
    }

    /// Invokes `name` with `payload` and waits for its result. `None`: no such function.
    pub async fn invoke(&self, name: &str, payload: Bytes) -> Option<Result<Bytes, InvokeError>> {
        let pool = Arc::clone(self.pools.get(name)?);
        Some(pool.invoke(payload).await)
    }

    /// Instances alive per function (idle or busy).
    pub fn instances(&self) -> BTreeMap<String, usize> {
        self.pools.iter().map(|(name, pool)| (name.clone(), pool.alive.load(Ordering::Relaxed))).collect()
    }

    /// Stops every instance.
    pub fn shutdown(&self) {
        for pool in self.pools.values() {
            for instance in pool.idle.lock().expect("idle instances").drain(..) {
                instance.kill();
            }
        }
    }
}
