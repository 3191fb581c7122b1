//! Structured JSON logs: one object per line, fields in a fixed order (docs/design.md §4):
//!
//! ```json
//! {"at":"2024-02-09T18:23:27.396Z","level":"INFO","svc":"ws-connect","msg":"connection recorded",
//!  "requestId":"…","connectionId":"abc123=","correlationId":"conv-123","coldStart":true}
//! ```
//!
//! A [`tracing`] layer: handlers open an `invocation` span carrying `requestId`,
//! `connectionId`, `correlationId` and `coldStart`, and every event inside it (the SDK's too)
//! is written with those fields. Never pass a token, an IP address, a user agent or a message
//! payload as a field: nothing here can tell them apart from harmless strings.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

use crate::clock::{Clock, SystemClock, iso_millis};
use crate::output::{LineSink, Stdout};

/// Field names with a fixed place right after `msg`; anything else follows in recording order.
const CONTEXT_FIELDS: [&str; 4] = ["requestId", "connectionId", "correlationId", "coldStart"];

/// Writes every event as one JSON line to a [`LineSink`].
#[derive(Debug)]
pub struct JsonLayer<S, C = SystemClock> {
    svc: &'static str,
    sink: S,
    clock: C,
}

impl<S: LineSink> JsonLayer<S> {
    pub fn new(svc: &'static str, sink: S) -> Self {
        Self { svc, sink, clock: SystemClock }
    }
}

impl<S: LineSink, C: Clock> JsonLayer<S, C> {
    /// The same layer with another clock for `at` (tests).
    pub fn with_clock<C2: Clock>(self, clock: C2) -> JsonLayer<S, C2> {
        JsonLayer { svc: self.svc, sink: self.sink, clock }
    }
}

/// Fields recorded on a span, kept in its extensions.
struct SpanFields(Map<String, Value>);

impl<Sub, S, C> Layer<Sub> for JsonLayer<S, C>
where
    Sub: Subscriber + for<'a> LookupSpan<'a>,
    S: LineSink,
    C: Clock + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, Sub>) {
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, Sub>) {
        if let Some(span) = ctx.span(id)
            && let Some(SpanFields(fields)) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut JsonVisitor(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, Sub>) {
        // Outermost span first, so inner spans and the event itself override.
        let mut context = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    context.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut own = Map::new();
        event.record(&mut JsonVisitor(&mut own));
        let msg = own.remove("message").unwrap_or(Value::String(String::new()));
        context.extend(own);

        let mut line = Map::new();
        line.insert("at".into(), iso_millis(self.clock.now()).into());
        line.insert("level".into(), level_name(*event.metadata().level()).into());
        line.insert("svc".into(), self.svc.into());
        line.insert("msg".into(), msg);
        for key in CONTEXT_FIELDS {
            if let Some(value) = context.remove(key) {
                line.insert(key.into(), value);
            }
        }
        line.extend(context);
        self.sink.write_line(&Value::Object(line).to_string());
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), error_chain(value).into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
}

/// An error and all its sources, `outer: inner: root`: what the log needs and the client never
/// sees.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // The SDK's errors often repeat their source's text; keep the chain readable.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Our crates log at `level`; dependencies (the SDK, hyper, the runtime) only from WARN up,
/// unless `level` is quieter still.
pub fn filter(level: Level) -> Targets {
    Targets::new().with_default(level.min(Level::WARN)).with_target("ws_", level)
}

/// Installs the JSON layer on stdout as the global subscriber. Call once, first thing in `main`.
pub fn init(svc: &'static str, level: Level) {
    let subscriber = Registry::default().with(JsonLayer::new(svc, Stdout).with_filter(filter(level)));
    // Only fails when a subscriber is already set, which leaves logging working.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Ends the process because configuration is unusable: one JSON line on stdout (so it sits
/// with the function's logs) and the plain message on stderr, then exit status 1. Lambda
/// reports the failed init and retries it on the next invocation.
pub fn fail_init(svc: &'static str, error: &(dyn std::error::Error + 'static)) -> ! {
    let message = format!("configuration error: {}", error_chain(error));
    let line = serde_json::json!({
        "at": iso_millis(SystemClock.now()),
        "level": "ERROR",
        "svc": svc,
        "msg": message,
    });
    Stdout.write_line(&line.to_string());
    eprintln!("{svc}: {message}");
    std::process::exit(1);
}

#[cfg(test)]
mod tests {
    use tracing::{info, info_span, warn};

    use super::*;
    use crate::output::Captured;

    struct Fixed;
    impl Clock for Fixed {
        fn now(&self) -> chrono::DateTime<chrono::Utc> {
            crate::clock::from_epoch_millis(1_707_503_007_396).unwrap()
        }
    }

    fn capture(level: Level, body: impl FnOnce()) -> Vec<Value> {
        let lines = Captured::default();
        let layer = JsonLayer::new("ws-test", lines.clone()).with_clock(Fixed).with_filter(filter(level));
        tracing::subscriber::with_default(Registry::default().with(layer), body);
        lines.json()
    }

    #[test]
    fn span_fields_come_right_after_msg_in_a_fixed_order() {
        let lines = capture(Level::INFO, || {
            let span = info_span!(
                "invocation",
                requestId = "req-1",
                coldStart = true,
                connectionId = tracing::field::Empty,
                correlationId = tracing::field::Empty,
            );
            let _guard = span.enter();
            span.record("connectionId", "abc123=");
            info!(bytes = 42_u64, "message posted");
        });
        insta::assert_json_snapshot!(lines, @r#"
        [
          {
            "at": "2024-02-09T18:23:27.396Z",
            "level": "INFO",
            "svc": "ws-test",
            "msg": "message posted",
            "requestId": "req-1",
            "connectionId": "abc123=",
            "coldStart": true,
            "bytes": 42
          }
        ]
        "#);
    }

    #[test]
    fn the_level_filters_our_events_and_dependencies_stay_at_warn() {
        let lines = capture(Level::DEBUG, || {
            tracing::debug!(target: "ws_shared::x", "ours");
            tracing::debug!(target: "aws_smithy_runtime::client", "theirs");
            tracing::warn!(target: "aws_smithy_runtime::client", "theirs, loud");
        });
        let msgs: Vec<_> = lines.iter().map(|l| l["msg"].as_str().unwrap()).collect();
        assert_eq!(msgs, ["ours", "theirs, loud"]);

        let lines = capture(Level::ERROR, || warn!(target: "ws_shared::x", "quiet"));
        assert!(lines.is_empty());
    }

    #[test]
    fn errors_are_logged_with_their_whole_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("put failed")]
        struct Outer(#[source] std::io::Error);
        let err = Outer(std::io::Error::other("connection reset"));
        let lines = capture(Level::INFO, || {
            tracing::error!(error = &err as &(dyn std::error::Error + 'static), "store failed");
        });
        assert_eq!(lines[0]["error"], "put failed: connection reset");
    }
}
