//! Where ws-local's own lines and the functions' output go: stdout, each line prefixed with the
//! time it arrived and its source (`23:12:05.118 [ws-local]`, `… [ConnectFunction]`), or a buffer
//! the tests read (source only).

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
                let _ = writeln!(out, "{}", stamped(chrono::Utc::now(), &line));
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

/// A line as the terminal shows it: the UTC time it arrived (milliseconds), then the line. The
/// functions' own JSON lines carry their `at` too; this one orders ws-local's and theirs.
fn stamped(at: chrono::DateTime<chrono::Utc>, line: &str) -> String {
    format!("{} {line}", at.format("%H:%M:%S%.3f"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_terminal_line_starts_with_its_time() {
        let at = chrono::DateTime::from_timestamp_millis(1_707_503_007_396).unwrap();
        assert_eq!(super::stamped(at, "[ws-local] ready"), "18:23:27.396 [ws-local] ready");
    }
}
