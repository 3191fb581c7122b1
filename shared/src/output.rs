//! Where log and metric lines go: stdout in Lambda (CloudWatch Logs reads it line by line), a
//! buffer in tests.

use std::io::Write;

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

impl<S: LineSink + ?Sized> LineSink for std::sync::Arc<S> {
    fn write_line(&self, line: &str) {
        (**self).write_line(line);
    }
}
