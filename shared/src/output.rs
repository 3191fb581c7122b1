//! Where log and metric lines go: stdout in Lambda (CloudWatch Logs reads it line by line), a
//! buffer in tests.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// Receives complete lines (without the trailing newline).
pub trait LineSink: Send + Sync + 'static {
    fn write_line(&self, line: &str);
}

/// Standard output, one `write` per line so concurrent lines never interleave.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stdout;

impl LineSink for Stdout {
    fn write_line(&self, line: &str) {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        // Nothing sensible to do if stdout is gone; Lambda always has it.
        let _ = std::io::stdout().lock().write_all(&buf);
    }
}

impl<S: LineSink + ?Sized> LineSink for Arc<S> {
    fn write_line(&self, line: &str) {
        (**self).write_line(line);
    }
}

/// Lines kept in memory: what tests read back (and, by its clones, share with the code under
/// test).
#[derive(Debug, Default, Clone)]
pub struct Captured(Arc<Mutex<Vec<String>>>);

impl LineSink for Captured {
    fn write_line(&self, line: &str) {
        self.0.lock().expect("not poisoned").push(line.to_owned());
    }
}

impl Captured {
    /// Every line so far, each parsed as one JSON value (panics on a line that is not JSON: the
    /// log format promises one object per line).
    pub fn json(&self) -> Vec<Value> {
        self.0
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON value ({e}): {line}")))
            .collect()
    }

    pub fn raw(&self) -> String {
        self.0.lock().expect("not poisoned").join("\n")
    }
}
