//! One function's instances: an invocation takes a warm idle one, or starts a new process while
//! fewer than `max_instances` are busy, or waits; a crash, init failure or timeout throws the
//! instance away.

use std::io::Read as _;
use std::os::fd::{AsFd as _, OwnedFd};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::net::unix::pipe;
use tokio::process::{ChildStderr, ChildStdout, Command};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};

use crate::http::{self};
use crate::logs::Logs;

use super::job::Job;
use super::runtime_api::RuntimeApi;
use super::{FunctionConfig, InvokeError};

#[derive(Debug)]
pub(super) struct Pool {
    pub(super) config: FunctionConfig,
    pub(super) logs: Logs,
    pub(super) idle: Mutex<Vec<Arc<Instance>>>,
    pub(super) busy: Semaphore,
    pub(super) next_id: AtomicU64,
    pub(super) alive: Arc<AtomicUsize>,
}

impl Pool {
    pub(super) fn new(config: FunctionConfig, logs: Logs) -> Self {
        let busy = Semaphore::new(config.max_instances.max(1));
        Self { config, logs, idle: Mutex::default(), busy, next_id: AtomicU64::new(1), alive: Arc::default() }
    }

    pub(super) async fn invoke(self: Arc<Self>, payload: Bytes) -> Result<Bytes, InvokeError> {
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
        instance.outputs.drain().await;
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

    pub(super) async fn start(&self) -> Result<Arc<Instance>, InvokeError> {
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
        http::serve(listener, super::runtime_api::router(Arc::clone(&runtime)), stop_rx.clone());

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
        // Its own process group: a terminal's Ctrl-C (SIGINT to the foreground group) is for
        // ws-local, which then closes every connection and still needs the instances to run the
        // closing $disconnects; it stops them itself.
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command.spawn().map_err(start_error)?;
        let pid = child.id();
        let outputs =
            [child.stdout.take().map(ChildStdout::into_owned_fd), child.stderr.take().map(ChildStderr::into_owned_fd)]
                .into_iter()
                .flatten()
                .map(|fd| {
                    forward_output(fd.map_err(start_error)?, self.logs.clone(), self.config.name.clone())
                        .map_err(start_error)
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Outputs)?;
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
        Ok(Arc::new(Instance { id, pid, jobs: jobs_tx, exited: exit_rx, kill, runtime, outputs }))
    }
}

/// The peak resident memory of a process so far (Linux `VmHWM`), in whole MB rounded up, as
/// Lambda's REPORT line gives `Max Memory Used`. (`ws_shared::process` reads the same for tests
/// and benches; ws-local itself does not depend on ws-shared.)
pub(super) fn peak_memory_mb(pid: u32) -> Option<u64> {
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

/// Asks an output forwarder to log every complete line written so far, and answers when it has.
type DrainRequest = oneshot::Sender<()>;

/// An instance's output forwarders (stdout and stderr).
#[derive(Debug)]
pub(super) struct Outputs(Vec<mpsc::Sender<DrainRequest>>);

impl Outputs {
    /// Waits until what the process has written so far is logged (bounded: a process that keeps
    /// writing cannot hold the invocation).
    pub(super) async fn drain(&self) {
        let acks = self.0.iter().filter_map(|output| {
            let (ack, done) = oneshot::channel();
            output.try_send(ack).ok().map(|()| done)
        });
        let _ = tokio::time::timeout(Duration::from_millis(200), futures_util::future::join_all(acks)).await;
    }
}

/// Copies one output pipe of an instance to the logs, line by line, and answers drain requests:
/// what a function printed before it answered is logged before Lambda's `END` line, as CloudWatch
/// shows it (a reader racing the invocation's end would print the last lines after `REPORT`).
fn forward_output(fd: OwnedFd, logs: Logs, name: String) -> std::io::Result<mpsc::Sender<DrainRequest>> {
    let pipe = pipe::Receiver::from_owned_fd(fd)?;
    // The same pipe, read directly when draining: tokio's `try_read` answers from the readiness
    // it last saw, which lags what the process has just written.
    let direct = std::fs::File::from(pipe.as_fd().try_clone_to_owned()?);
    let (drain_tx, mut drain_rx) = mpsc::channel::<DrainRequest>(4);
    tokio::spawn(async move {
        let (mut pending, mut buf) = (Vec::new(), vec![0_u8; 16 * 1024]);
        let (mut open, mut drains_open) = (true, true);
        while open {
            let ack = tokio::select! {
                ready = pipe.readable() => {
                    if ready.is_err() {
                        break;
                    }
                    None
                }
                ack = drain_rx.recv(), if drains_open => {
                    drains_open = ack.is_some();
                    ack
                }
            };
            // Everything the pipe holds now, without waiting for more.
            loop {
                let read = if ack.is_some() { (&direct).read(&mut buf) } else { pipe.try_read(&mut buf) };
                match read {
                    Ok(0) => {
                        open = false;
                        break;
                    }
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        open = false;
                        break;
                    }
                }
            }
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                logs.line(&name, &String::from_utf8_lossy(&pending[..end]));
                pending.drain(..=end);
            }
            if let Some(ack) = ack {
                let _ = ack.send(());
            }
        }
        if !pending.is_empty() {
            logs.line(&name, &String::from_utf8_lossy(&pending));
        }
    });
    Ok(drain_tx)
}

#[cfg(unix)]
pub(super) fn describe_exit(status: std::process::ExitStatus) -> String {
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
pub(super) fn describe_exit(status: std::process::ExitStatus) -> String {
    status.to_string()
}

#[derive(Debug)]
pub(super) struct Instance {
    pub(super) id: u64,
    /// The process, for its peak memory (Lambda's `Max Memory Used`).
    pub(super) pid: Option<u32>,
    pub(super) jobs: mpsc::Sender<Job>,
    pub(super) exited: watch::Receiver<Option<String>>,
    pub(super) kill: Arc<Notify>,
    pub(super) runtime: Arc<RuntimeApi>,
    /// The stdout and stderr forwarders.
    pub(super) outputs: Outputs,
}

impl Instance {
    pub(super) fn is_alive(&self) -> bool {
        self.exited.borrow().is_none()
    }

    pub(super) fn kill(&self) {
        self.kill.notify_one();
    }

    /// What to report when the process ended (or is ending) during an invocation.
    pub(super) fn exit_error(&self, function: &str) -> InvokeError {
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

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::os::fd::OwnedFd;

    use super::{Outputs, forward_output};
    use crate::logs::Logs;

    #[tokio::test(flavor = "current_thread")]
    async fn a_drain_returns_once_every_line_written_before_it_is_logged() {
        // One thread: without the drain's reading, the forwarder would not have run at all.
        let (reader, mut writer) = std::io::pipe().unwrap();
        let logs = Logs::capture();
        let outputs = Outputs(vec![forward_output(OwnedFd::from(reader), logs.clone(), "F".into()).unwrap()]);
        for line in 1..=50 {
            writeln!(writer, "line {line}").unwrap();
        }
        writer.write_all(b"no newline yet").unwrap();
        outputs.drain().await;
        let lines = logs.lines();
        assert_eq!(lines.len(), 50, "{lines:?}");
        assert_eq!(lines.last().unwrap(), "[F] line 50");
        // The unfinished line waits for its end (or the process's).
        drop(writer);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(logs.lines().last().unwrap(), "[F] no newline yet");
    }
}
