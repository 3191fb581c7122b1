//! Where ws-local's own lines and the functions' output go: stdout, each line prefixed with its
//! source (`[ws-local]`, `[ConnectFunction]`), or a buffer the tests read.

use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default)]
pub enum Logs {
    /// Lines go to stdout as they come.
    #[default]
    Stdout,
    /// Lines are kept (tests).
    Capture(Arc<Mutex<Vec<String>>>),
}

impl Logs {
    pub fn capture() -> Self {
        Self::Capture(Arc::default())
    }

    /// Writes one line from `source`.
    pub fn line(&self, source: &str, line: &str) {
        let line = format!("[{source}] {}", line.trim_end());
        match self {
            Self::Stdout => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
            }
            Self::Capture(lines) => lines.lock().expect("log buffer").push(line),
        }
    }

    /// ws-local's own line.
    pub fn local(&self, line: &str) {
        self.line("ws-local", line);
    }

    /// The captured lines so far (empty when writing to stdout).
    pub fn lines(&self) -> Vec<String> {
        match self {
            Self::Stdout => Vec::new(),
            Self::Capture(lines) => lines.lock().expect("log buffer").clone(),
        }
    }
}
