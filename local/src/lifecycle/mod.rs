//! Lifecycle events locally (docs/design.md §12): the events the deployed stack's pipes put on
//! its EventBridge bus, made here from the table so a developer sees and consumes them without
//! AWS. Every `every`, ws-local reads the table's connection records (a consistent Scan of
//! `sk = CONNECTION`, a few attributes) and turns what changed since the last read into events
//! ([`diff`]): each goes to the log (`[events] Connection opened {…}`), to the console's list,
//! and, with `--events-url`, as an EventBridge event (`version`, `id`, `detail-type`, `source`,
//! `account`, `time`, `region`, `resources`, `detail`) in a POST to that URL, in order, each
//! tried 3 times. With a `pipe` function in the manifest (`MembershipFunction`), ws-local plays
//! the membership pipe too: each read's changes go to it as one batch of stream records (the
//! pipe's shape, the same `eventID`s as the lifecycle events' `eventId`) and what it answers are
//! `Presence changed` events (a user joined or left a conversation).
//!
//! Reading instead of a stream: moto's server is the table and ws-local plays the AWS services
//! around it, not DynamoDB Streams. The events are the pipes' (same `detail-type`s, keys and
//! string values); a record created and deleted between two reads is not seen (records are
//! deleted by their TTL, hours later), and `eventId` is unique per event as a stream record's id
//! is.

pub mod diff;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::config::ACCOUNT;
use crate::http::Body;
use crate::logs::Logs;
use crate::manifest::Trigger;
use crate::state::App;
use diff::{Row, Snapshot};

/// The events' `source`, as the stack's `events` module names it by default.
pub const SOURCE: &str = "ws-connection";
/// The `detail-type` of the membership pipe's events.
pub const PRESENCE: &str = "Presence changed";
/// Events the console can still show.
const KEPT: usize = 200;
/// Events waiting for `--events-url` at most; more are dropped with a line saying so.
const QUEUE: usize = 10_000;
const ATTEMPTS: u32 = 3;
/// How long one POST to the events URL, or one read of the table, may take: a consumer or a
/// table that hangs holds the events up this long, never for good.
const PATIENCE: Duration = Duration::from_secs(10);

/// The last [`KEPT`] events, oldest first, for the console.
#[derive(Debug, Default, Clone)]
pub struct Recent(Arc<Mutex<VecDeque<Value>>>);

impl Recent {
    fn push(&self, event: Value) {
        let mut kept = self.0.lock().expect("events list");
        kept.push_back(event);
        if kept.len() > KEPT {
            kept.pop_front();
        }
    }

    pub fn list(&self) -> Vec<Value> {
        self.0.lock().expect("events list").iter().cloned().collect()
    }
}

/// Starts reading the table every `every` until ws-local stops. Without a DynamoDB endpoint
/// (moto's) there is nothing to read: a line says so.
pub fn spawn(app: &Arc<App>, every: Duration) {
    let Some(endpoint) = app.settings.dynamodb_endpoint.clone() else {
        app.logs().local("events: off (they are read from the table, and no --dynamodb-endpoint was given)");
        return;
    };
    let client = Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(app.settings.table_region.clone()))
            .credentials_provider(Credentials::new("local", "local", None, None, "ws-local"))
            .endpoint_url(endpoint)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .timeout_config(TimeoutConfig::builder().operation_timeout(PATIENCE).build())
            .build(),
    );
    let sender = app.settings.events_url.clone().map(|url| spawn_sender(app.logs().clone(), url, PATIENCE));
    // The manifest's pipe function (MembershipFunction): the presence events.
    let membership = app.manifest.functions.iter().find(|f| matches!(f.trigger, Trigger::Pipe)).map(|f| f.name.clone());
    let app = Arc::clone(app);
    let mut shutdown = app.shutdown_signal();
    tokio::spawn(async move {
        let mut before: Option<Snapshot> = None;
        let mut failing = false;
        loop {
            match read(&client, &app.settings.table).await {
                Ok(after) => {
                    if failing {
                        app.logs().local("events: the table can be read again");
                        failing = false;
                    }
                    if let Some(before) = &before {
                        let changes: Vec<(String, diff::Change)> = diff::changes(before, &after)
                            .into_iter()
                            .map(|change| (uuid::Uuid::new_v4().to_string(), change))
                            .collect();
                        for (id, change) in &changes {
                            if let Some(detail_type) = change.kind.detail_type() {
                                emit(&app, sender.as_ref(), detail_type, &change.detail(id));
                            }
                        }
                        if let Some(function) = &membership {
                            for detail in presence(&app, function, &changes).await {
                                emit(&app, sender.as_ref(), PRESENCE, &detail);
                            }
                        }
                    }
                    before = Some(after);
                }
                Err(why) if !failing => {
                    app.logs()
                        .local(&format!("events: cannot read the table {}: {why}; trying again", app.settings.table));
                    failing = true;
                }
                Err(_) => {}
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
        }
    });
}

/// Every connection record of the table, a page at a time.
async fn read(client: &Client, table: &str) -> Result<Snapshot, String> {
    let names = [
        ("#id", "connectionId"),
        ("#status", "status"),
        ("#conversation", "conversationId"),
        ("#user", "userId"),
        ("#region", "region"),
        ("#connectedAt", "connectedAt"),
        ("#updatedAt", "updatedAt"),
        ("#reason", "closeReason"),
        ("#code", "closeCode"),
        ("#sk", "sk"),
    ];
    let mut snapshot = Snapshot::new();
    let mut start = None;
    loop {
        let mut scan = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .filter_expression("#sk = :connection")
            .projection_expression(
                "#id, #status, #conversation, #user, #region, #connectedAt, #updatedAt, #reason, #code",
            )
            .expression_attribute_values(":connection", AttributeValue::S("CONNECTION".into()))
            .set_exclusive_start_key(start);
        for (placeholder, name) in names {
            scan = scan.expression_attribute_names(placeholder, name);
        }
        let page = scan.send().await.map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
        for item in page.items() {
            let text = |name: &str| match item.get(name) {
                Some(AttributeValue::S(s) | AttributeValue::N(s)) => s.clone(),
                _ => String::new(),
            };
            let id = text("connectionId");
            if id.is_empty() {
                continue;
            }
            snapshot.insert(
                id,
                Row {
                    status: text("status"),
                    conversation_id: text("conversationId"),
                    user_id: text("userId"),
                    region: text("region"),
                    connected_at: text("connectedAt"),
                    updated_at: text("updatedAt"),
                    close_reason: text("closeReason"),
                    close_code: text("closeCode"),
                },
            );
        }
        match page.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => return Ok(snapshot),
        }
    }
}

/// One event to the log, the console and the URL.
fn emit(app: &App, sender: Option<&mpsc::Sender<Value>>, detail_type: &str, detail: &Value) {
    app.logs().line("events", &format!("{detail_type} {detail}"));
    let event = json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": detail_type,
        "source": SOURCE,
        "account": ACCOUNT,
        "time": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        "region": app.settings.region,
        "resources": [],
        "detail": detail,
    });
    app.lifecycle.push(event.clone());
    if let Some(sender) = sender
        && sender.try_send(event).is_err()
    {
        app.logs().line("events", &format!("{QUEUE} events wait for the events URL already: this one is dropped"));
    }
}

/// The membership pipe, locally: the changes as stream records to `function` (the pipe's
/// enrichment) in one batch, and the details it answers. A failed batch is sent again, as a
/// pipe retries it, [`ATTEMPTS`] times in all; then a line says its presence events are lost.
async fn presence(app: &App, function: &str, changes: &[(String, diff::Change)]) -> Vec<Value> {
    if changes.is_empty() {
        return Vec::new();
    }
    let now = Utc::now();
    let batch: Vec<Value> = changes.iter().map(|(id, change)| diff::stream_record(change, id, now)).collect();
    let payload = Bytes::from(Value::Array(batch).to_string());
    let mut why = String::new();
    for attempt in 1..=ATTEMPTS {
        match app.lambda.invoke(function, payload.clone()).await {
            Some(Ok(answer)) => match serde_json::from_slice::<Value>(&answer) {
                Ok(Value::Array(details)) => return details,
                _ => why = format!("answered {}", String::from_utf8_lossy(&answer)),
            },
            Some(Err(err)) => why = err.to_string(),
            None => return Vec::new(),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
    }
    app.logs()
        .line("events", &format!("{function} failed a batch {ATTEMPTS} times ({why}): its presence events are lost"));
    Vec::new()
}

/// POSTs each event to `url`, in order, each try given `patience`; an event refused or unanswered
/// 3 times is dropped with a line that says why.
fn spawn_sender(logs: Logs, url: String, patience: Duration) -> mpsc::Sender<Value> {
    let (sender, mut events) = mpsc::channel::<Value>(QUEUE);
    tokio::spawn(async move {
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        while let Some(event) = events.recv().await {
            let body = Bytes::from(event.to_string());
            let mut outcome = String::new();
            for attempt in 1..=ATTEMPTS {
                let request = hyper::Request::post(&url)
                    .header(hyper::header::CONTENT_TYPE, "application/json")
                    .body(Body::new(body.clone()));
                outcome = match request {
                    Err(e) => format!("not a URL ({e})"),
                    Ok(request) => match tokio::time::timeout(patience, client.request(request)).await {
                        Ok(Ok(answer)) if answer.status().is_success() => {
                            outcome.clear();
                            break;
                        }
                        Ok(Ok(answer)) => format!("answered {}", answer.status()),
                        Ok(Err(e)) => format!("could not be reached ({e})"),
                        Err(_) => format!("did not answer within {} ms", patience.as_millis()),
                    },
                };
                if attempt < ATTEMPTS {
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
            if !outcome.is_empty() {
                logs.line("events", &format!("{url} {outcome} {ATTEMPTS} times: event {} dropped", event["id"]));
            }
        }
    });
    sender
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_consumer_that_never_answers_costs_each_event_its_patience_and_a_line() {
        // A listener that takes the connection and the request and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let logs = Logs::capture();
        let sender = spawn_sender(logs.clone(), url, Duration::from_millis(100));
        sender.send(json!({"id": "e1"})).await.unwrap();
        sender.send(json!({"id": "e2"})).await.unwrap();
        let dropped = async {
            while logs.lines().iter().filter(|l| l.contains("dropped")).count() < 2 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), dropped).await.expect("both events given up in time, in order");
        let lines = logs.lines();
        assert!(lines[0].contains("did not answer within 100 ms 3 times: event \"e1\" dropped"), "{lines:?}");
        assert!(lines[1].contains("event \"e2\" dropped"), "{lines:?}");
    }
}
