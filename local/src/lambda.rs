//! Lambda, locally: every function runs as its real binary against an implementation of the
//! Lambda Runtime API (`/2018-06-01/runtime/...`) that ws-local serves to that instance alone.
//!
//! One pool per function: an invocation takes a warm idle instance, or starts a new one while
//! fewer than `max_instances` are busy, or waits for one. A crash, an init failure or a timeout
//! fails that invocation the way Lambda reports it (`Runtime.ExitError`, `Sandbox.Timedout`, ...)
//! and the instance is thrown away; the next invocation gets a fresh one.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};

use crate::http::{self, Body};
use crate::logs::Logs;

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

#[derive(Debug)]
struct Pool {
    config: FunctionConfig,
    logs: Logs,
    idle: Mutex<Vec<Arc<Instance>>>,
    busy: Semaphore,
    next_id: AtomicU64,
    alive: Arc<AtomicUsize>,
}

impl Pool {
    fn new(config: FunctionConfig, logs: Logs) -> Self {
        let busy = Semaphore::new(config.max_instances.max(1));
        Self { config, logs, idle: Mutex::default(), busy, next_id: AtomicU64::new(1), alive: Arc::default() }
    }

    async fn invoke(self: Arc<Self>, payload: Bytes) -> Result<Bytes, InvokeError> {
        let _permit = self.busy.acquire().await.expect("the pool's semaphore is never closed");
        let warm = loop {
            let candidate = self.idle.lock().expect("idle instances").pop();
            match candidate {
                Some(instance) if instance.is_alive() => break Some(instance),
                Some(_) => {}
                None => break None,
            }
        };
        let instance = match warm {
            Some(instance) => instance,
            None => self.start().await?,
        };

        let request_id = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let deadline = chrono::Utc::now() + self.config.timeout;
        let (respond, result) = oneshot::channel();
        let job = Job { request_id: request_id.clone(), payload, deadline_ms: deadline.timestamp_millis(), respond };
        self.logs.line(&self.config.name, &format!("START RequestId: {request_id} Instance: {}", instance.id));
        let outcome = if instance.jobs.send(job).await.is_err() {
            Err(instance.exit_error(&self.config.name))
        } else {
            let mut exited = instance.exited.clone();
            tokio::select! {
                biased;
                result = result => match result {
                    Ok(outcome) => outcome,
                    Err(_) => Err(instance.exit_error(&self.config.name)),
                },
                _ = exited.wait_for(Option::is_some) => Err(instance.exit_error(&self.config.name)),
                () = tokio::time::sleep(self.config.timeout) => Err(InvokeError::TimedOut {
                    function: self.config.name.clone(),
                    seconds: self.config.timeout.as_secs_f64(),
                }),
            }
        };
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        self.logs.line(&self.config.name, &format!("END RequestId: {request_id}"));
        let status = match &outcome {
            Ok(_) => String::new(),
            Err(e) => format!(" Status: error ({})", e.error_type()),
        };
        self.logs.line(
            &self.config.name,
            &format!(
                "REPORT RequestId: {request_id} Duration: {elapsed:.2} ms Memory Size: {} MB{}{status}",
                self.config.memory_mb,
                instance
                    .pid
                    .and_then(peak_memory_mb)
                    .map_or_else(String::new, |mb| format!(" Max Memory Used: {mb} MB")),
            ),
        );
        match &outcome {
            // The runtime answered (a result or a handled error): the instance stays warm.
            Ok(_) | Err(InvokeError::Function { .. }) => self.idle.lock().expect("idle instances").push(instance),
            Err(_) => instance.kill(),
        }
        outcome
    }

    async fn start(&self) -> Result<Arc<Instance>, InvokeError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let start_error = |source| InvokeError::Start {
            function: self.config.name.clone(),
            binary: self.config.binary.clone(),
            source,
        };
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(start_error)?;
        let runtime_api = listener.local_addr().map_err(start_error)?;
        let (jobs_tx, jobs_rx) = mpsc::channel(1);
        let (exit_tx, exit_rx) = watch::channel(None);
        let (stop_tx, stop_rx) = watch::channel(false);
        let runtime = Arc::new(RuntimeApi {
            jobs: tokio::sync::Mutex::new(jobs_rx),
            in_flight: Mutex::default(),
            init_error: Mutex::default(),
            asked: AtomicBool::new(false),
            function: self.config.name.clone(),
            arn: self.config.arn(),
        });
        http::serve(listener, Arc::clone(&runtime), stop_rx.clone(), |api, _, req| Box::pin(api.handle(req)));

        let mut command = Command::new(&self.config.binary);
        command
            .env_clear()
            .envs(&self.config.environment)
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("{}/[$LATEST]{id:032x}", chrono::Utc::now().format("%Y/%m/%d")))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(start_error)?;
        let pid = child.id();
        for output in [child.stdout.take().map(boxed), child.stderr.take().map(boxed)].into_iter().flatten() {
            let (logs, name) = (self.logs.clone(), self.config.name.clone());
            tokio::spawn(async move {
                let mut lines = BufReader::new(output).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    logs.line(&name, &line);
                }
            });
        }
        let kill = Arc::new(Notify::new());
        let alive = Arc::clone(&self.alive);
        alive.fetch_add(1, Ordering::Relaxed);
        let (waiter_kill, logs, name) = (Arc::clone(&kill), self.logs.clone(), self.config.name.clone());
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status.map_or_else(|e| e.to_string(), describe_exit),
                () = waiter_kill.notified() => {
                    let _ = child.kill().await;
                    "killed by ws-local".to_owned()
                }
            };
            alive.fetch_sub(1, Ordering::Relaxed);
            let _ = stop_tx.send(true);
            logs.line(&name, &format!("instance {id} stopped: {status}"));
            let _ = exit_tx.send(Some(status));
        });
        Ok(Arc::new(Instance { id, pid, jobs: jobs_tx, exited: exit_rx, kill, runtime }))
    }
}

/// The peak resident memory of a process so far (Linux `VmHWM`), in whole MB rounded up, as
/// Lambda's REPORT line gives `Max Memory Used`.
fn peak_memory_mb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib.div_ceil(1024))
}

fn boxed(output: impl AsyncRead + Send + Unpin + 'static) -> Box<dyn AsyncRead + Send + Unpin> {
    Box::new(output)
}

#[cfg(unix)]
fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(6)) => "signal: aborted".to_owned(),
        (None, Some(9)) => "signal: killed".to_owned(),
        (None, Some(signal)) => format!("signal: {signal}"),
        (None, None) => status.to_string(),
    }
}

#[cfg(not(unix))]
fn describe_exit(status: std::process::ExitStatus) -> String {
    status.to_string()
}

#[derive(Debug)]
struct Job {
    request_id: String,
    payload: Bytes,
    deadline_ms: i64,
    respond: oneshot::Sender<Result<Bytes, InvokeError>>,
}

#[derive(Debug)]
struct Instance {
    id: u64,
    /// The process, for its peak memory (Lambda's `Max Memory Used`).
    pid: Option<u32>,
    jobs: mpsc::Sender<Job>,
    exited: watch::Receiver<Option<String>>,
    kill: Arc<Notify>,
    runtime: Arc<RuntimeApi>,
}

impl Instance {
    fn is_alive(&self) -> bool {
        self.exited.borrow().is_none()
    }

    fn kill(&self) {
        self.kill.notify_one();
    }

    /// What to report when the process ended (or is ending) during an invocation.
    fn exit_error(&self, function: &str) -> InvokeError {
        let status = self.exited.borrow().clone().unwrap_or_else(|| "the runtime stopped answering".into());
        if let Some(reason) = self.runtime.init_error.lock().expect("init error").clone() {
            return InvokeError::Init { function: function.into(), reason };
        }
        if self.runtime.asked.load(Ordering::Relaxed) {
            InvokeError::Exited { function: function.into(), status }
        } else {
            InvokeError::Init {
                function: function.into(),
                reason: format!("exited before asking for an invocation ({status})"),
            }
        }
    }
}

/// The Runtime API one instance talks to.
#[derive(Debug)]
struct RuntimeApi {
    jobs: tokio::sync::Mutex<mpsc::Receiver<Job>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Result<Bytes, InvokeError>>>>,
    init_error: Mutex<Option<String>>,
    /// The runtime asked for an invocation at least once (its init finished).
    asked: AtomicBool,
    function: String,
    arn: String,
}

const PREFIX: &str = "/2018-06-01/runtime/";

impl RuntimeApi {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let Some(rest) = path.strip_prefix(PREFIX) else {
            return http::json(
                StatusCode::NOT_FOUND,
                &json!({ "errorMessage": "unknown Runtime API path", "errorType": "InvalidRequest" }),
            );
        };
        let parts: Vec<&str> = rest.split('/').collect();
        match (req.method(), parts.as_slice()) {
            (&Method::GET, ["invocation", "next"]) => self.next().await,
            (&Method::POST, ["invocation", id, "response"]) => {
                let id = (*id).to_owned();
                let body = http::read_body(req, MAX_RESPONSE).await;
                self.complete(
                    &id,
                    body.ok_or_else(|| InvokeError::Function {
                        function: self.function.clone(),
                        error_type: "Function.ResponseSizeTooLarge".into(),
                        error_message: format!(
                            "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE} bytes)."
                        ),
                    }),
                )
            }
            (&Method::POST, ["invocation", id, "error"]) => {
                let id = (*id).to_owned();
                let header_type = req
                    .headers()
                    .get("lambda-runtime-function-error-type")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = http::read_body(req, MAX_RESPONSE).await.unwrap_or_default();
                let (error_type, error_message) = reported_error(&body, header_type);
                self.complete(
                    &id,
                    Err(InvokeError::Function { function: self.function.clone(), error_type, error_message }),
                )
            }
            (&Method::POST, ["init", "error"]) => {
                let body = http::read_body(req, MAX_RESPONSE).await.unwrap_or_default();
                let (error_type, message) = reported_error(&body, None);
                *self.init_error.lock().expect("init error") = Some(format!("{error_type}: {message}"));
                http::json(StatusCode::ACCEPTED, &json!({ "status": "OK" }))
            }
            _ => http::json(
                StatusCode::NOT_FOUND,
                &json!({ "errorMessage": "unknown Runtime API path", "errorType": "InvalidRequest" }),
            ),
        }
    }

    async fn next(&self) -> Response<Body> {
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

    fn complete(&self, id: &str, outcome: Result<Bytes, InvokeError>) -> Response<Body> {
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
fn reported_error(body: &[u8], header_type: Option<String>) -> (String, String) {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let field = |name: &str| parsed.get(name).and_then(Value::as_str).map(str::to_owned);
    let error_type = field("errorType").or(header_type).unwrap_or_else(|| "Unhandled".into());
    let message = field("errorMessage").unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    (error_type, message)
}
