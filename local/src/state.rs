//! What every request handler can reach: settings, the manifest, the functions, the open
//! connections, the token issuer, and the count of connection tasks a stop waits for.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, watch};

use crate::config::{Endpoints, Settings};
use crate::gateway::Connections;
use crate::issuer::Issuer;
use crate::lambda::Lambda;
use crate::lifecycle::Recent;
use crate::logs::Logs;
use crate::manifest::Manifest;

/// Everything a request handler can reach.
#[derive(Debug)]
pub struct App {
    pub settings: Settings,
    pub manifest: Manifest,
    pub lambda: Lambda,
    pub connections: Connections,
    pub issuer: Issuer,
    pub endpoints: Endpoints,
    /// The last lifecycle events, for the console.
    pub lifecycle: Recent,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) open_tasks: AtomicUsize,
    pub(crate) tasks_done: Notify,
}

impl App {
    pub fn logs(&self) -> &Logs {
        &self.settings.logs
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// Counts a connection's task until the guard drops, so a stop can wait for its `$disconnect`.
    pub fn connection_task(self: &Arc<Self>) -> TaskGuard {
        self.open_tasks.fetch_add(1, Ordering::SeqCst);
        TaskGuard(Arc::clone(self))
    }
}

#[derive(Debug)]
pub struct TaskGuard(Arc<App>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.open_tasks.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.tasks_done.notify_waiters();
        }
    }
}
