//! Where ws-local's own lines and the functions' output go: stdout, each line prefixed with the
//! time it arrived and its source (`23:12:05.118 [ws-local]`, `… [ConnectFunction]`), or a buffer
//! the tests read (source only). Either way the last lines are kept for the console
//! (`/_console`), numbered so a page can ask for what came after the last one it showed.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// An EMF line (`{"_aws": {...}, "Service": …, "Connected": 1, …}`) as one short line:
/// `EMF ws-connect Connected=1 Refused=0 Errors=0`; `None` for any other line.
fn fold_emf(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    let directives = value.get("_aws")?.get("CloudWatchMetrics")?.as_array()?;
    let names = directives.iter().filter_map(|d| d.get("Metrics")?.as_array()).flatten();
    let counts: Vec<String> = names
        .filter_map(|m| m.get("Name")?.as_str())
        .map(|name| format!("{name}={}", value.get(name).map_or_else(|| "?".to_owned(), ToString::to_string)))
        .collect();
    let service = value.get("Service").and_then(serde_json::Value::as_str).unwrap_or("?");
    Some(format!("EMF {service} {}", counts.join(" ")))
}

/// Lines the console can still show.
const FEED_LINES: usize = 2000;

#[derive(Debug, Clone, Default)]
pub struct Logs {
    sink: Sink,
    feed: Arc<Mutex<Feed>>,
    /// Keep a function's EMF lines as printed (`--raw-emf`); by default each is folded into one
    /// short line of its service and counts.
    raw_emf: bool,
}

#[derive(Debug, Clone, Default)]
enum Sink {
    /// Lines go to stdout as they come.
    #[default]
    Stdout,
    /// Lines are kept (tests).
    Capture(Arc<Mutex<Vec<String>>>),
}

/// The last [`FEED_LINES`] lines, the first numbered `first`.
#[derive(Debug, Default)]
struct Feed {
    first: u64,
    lines: VecDeque<String>,
}

/// Lines after a given number, and the number to ask after next.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FeedPage {
    pub next: u64,
    pub lines: Vec<String>,
}

impl Logs {
    pub fn capture() -> Self {
        Self { sink: Sink::Capture(Arc::default()), feed: Arc::default(), raw_emf: false }
    }

    /// The same logs, with EMF lines kept raw when `raw` (`ws-local serve --raw-emf`).
    #[must_use]
    pub fn with_raw_emf(mut self, raw: bool) -> Self {
        self.raw_emf = raw;
        self
    }

    /// Writes one line from `source`.
    pub fn line(&self, source: &str, line: &str) {
        let folded = if self.raw_emf { None } else { fold_emf(line) };
        let line = format!("[{source}] {}", folded.as_deref().unwrap_or(line).trim_end());
        let stamped = stamped(Utc::now(), &line);
        match &self.sink {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{stamped}");
            }
            Sink::Capture(lines) => lines.lock().expect("log buffer").push(line),
        }
        let mut feed = self.feed.lock().expect("log feed");
        feed.lines.push_back(stamped);
        if feed.lines.len() > FEED_LINES {
            feed.lines.pop_front();
            feed.first += 1;
        }
    }

    /// ws-local's own line.
    pub fn local(&self, line: &str) {
        self.line("ws-local", line);
    }

    /// The captured lines so far (empty when writing to stdout).
    pub fn lines(&self) -> Vec<String> {
        match &self.sink {
            Sink::Stdout => Vec::new(),
            Sink::Capture(lines) => lines.lock().expect("log buffer").clone(),
        }
    }

    /// The kept lines numbered `after` and later (each with its time), oldest first; lines
    /// already dropped are skipped.
    pub fn since(&self, after: u64) -> FeedPage {
        let feed = self.feed.lock().expect("log feed");
        let skip = usize::try_from(after.saturating_sub(feed.first)).unwrap_or(usize::MAX);
        FeedPage { next: feed.first + feed.lines.len() as u64, lines: feed.lines.iter().skip(skip).cloned().collect() }
    }
}

/// A line as the terminal shows it: the UTC time it arrived (milliseconds), then the line. The
/// functions' own JSON lines carry their `at` too; this one orders ws-local's and theirs.
fn stamped(at: DateTime<Utc>, line: &str) -> String {
    format!("{} {line}", at.format("%H:%M:%S%.3f"))
}

#[cfg(test)]
mod emf_tests {
    use super::*;

    #[test]
    fn an_emf_line_is_folded_into_its_service_and_counts_unless_raw_is_asked() {
        let emf = r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"ws-connection","Dimensions":[["Service"]],"Metrics":[{"Name":"Connected","Unit":"Count"},{"Name":"Errors","Unit":"Count"}]}]},"Service":"ws-connect","Connected":1,"Errors":0,"requestId":"r"}"#;
        let logs = Logs::capture();
        logs.line("ConnectFunction", emf);
        logs.line("ConnectFunction", r#"{"msg":"connection recorded"}"#);
        assert_eq!(
            logs.lines(),
            [
                "[ConnectFunction] EMF ws-connect Connected=1 Errors=0",
                r#"[ConnectFunction] {"msg":"connection recorded"}"#
            ]
        );
        let raw = Logs::capture().with_raw_emf(true);
        raw.line("ConnectFunction", emf);
        assert_eq!(raw.lines(), [format!("[ConnectFunction] {emf}")]);
    }
}

#[cfg(test)]
mod tests {
    use super::{FEED_LINES, Logs};

    #[test]
    fn a_terminal_line_starts_with_its_time() {
        let at = chrono::DateTime::from_timestamp_millis(1_707_503_007_396).unwrap();
        assert_eq!(super::stamped(at, "[ws-local] ready"), "18:23:27.396 [ws-local] ready");
    }

    #[test]
    fn the_feed_gives_what_came_after_a_number_and_keeps_the_last_lines() {
        let logs = Logs::capture();
        logs.local("one");
        logs.local("two");
        let page = logs.since(0);
        assert_eq!(page.next, 2);
        assert!(page.lines[1].ends_with("[ws-local] two"), "{page:?}");
        assert_eq!(logs.since(1).lines.len(), 1);
        assert!(logs.since(2).lines.is_empty());
        for n in 0..FEED_LINES {
            logs.local(&n.to_string());
        }
        let page = logs.since(0);
        assert_eq!((page.next, page.lines.len()), (FEED_LINES as u64 + 2, FEED_LINES));
        assert!(page.lines[0].ends_with("[ws-local] 0"));
    }
}
