//! Which lifecycle events a change of the table makes: the deployed pipes' filters
//! (`terraform/modules/events`), applied to two successive reads of the table's connection
//! records instead of its stream.
//!
//! A pipe sees every change of a record; a read every so often sees where each record stands.
//! The events are the same: a record that appears `CONNECTED` is a connection opened; one that was
//! `CONNECTED` and is now `DISCONNECTED` or `GONE` is a connection closed; one that appeared and
//! ended between two reads is both, in that order. A tombstone (a `$disconnect` that overtook its
//! `$connect`: no `connectedAt`), a replayed `$disconnect` (closed to closed) and a deleted record
//! are none, as a pipe's filter drops them. A `CONNECTED` record deleted (its TTL) is no lifecycle
//! event but is a change for the membership pipe ([`Kind::Removed`]), as its filter keeps it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

pub const CONNECTED: &str = "CONNECTED";
pub const DISCONNECTED: &str = "DISCONNECTED";
pub const GONE: &str = "GONE";

/// A connection record as read, each attribute as a string ("" when the record has none), as the
/// pipes' input templates render them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    pub status: String,
    pub conversation_id: String,
    pub user_id: String,
    pub region: String,
    pub connected_at: String,
    pub updated_at: String,
    pub close_reason: String,
    pub close_code: String,
}

impl Row {
    /// The record as it was while the connection was open (a stream's old image of a close).
    fn as_connected(&self) -> Self {
        Self { status: CONNECTED.into(), close_reason: String::new(), close_code: String::new(), ..self.clone() }
    }

    fn is_closed(&self) -> bool {
        self.status == DISCONNECTED || self.status == GONE
    }
}

/// The connection records at one moment, by connection id.
pub type Snapshot = BTreeMap<String, Row>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Opened,
    Closed,
    /// A `CONNECTED` record deleted by its TTL: for membership only.
    Removed,
}

impl Kind {
    /// The lifecycle event's `detail-type` (docs/design.md §12); `None` for a removal.
    pub fn detail_type(self) -> Option<&'static str> {
        match self {
            Self::Opened => Some("Connection opened"),
            Self::Closed => Some("Connection closed"),
            Self::Removed => None,
        }
    }

    /// The stream record's `eventName`.
    pub fn event_name(self) -> &'static str {
        match self {
            Self::Opened => "INSERT",
            Self::Closed => "MODIFY",
            Self::Removed => "REMOVE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: Kind,
    pub connection_id: String,
    pub row: Row,
}

impl Change {
    /// The event's `detail`: the keys and string values the pipes' templates give. `event_id`
    /// stands in for the stream record's id.
    pub fn detail(&self, event_id: &str) -> Value {
        let r = &self.row;
        match self.kind {
            Kind::Opened => json!({
                "event": "connected",
                "eventId": event_id,
                "connectionId": self.connection_id,
                "conversationId": r.conversation_id,
                "userId": r.user_id,
                "region": r.region,
                "at": r.connected_at,
            }),
            Kind::Closed | Kind::Removed => json!({
                "event": "disconnected",
                "eventId": event_id,
                "connectionId": self.connection_id,
                "conversationId": r.conversation_id,
                "userId": r.user_id,
                "region": r.region,
                "status": r.status,
                "reason": r.close_reason,
                "closeCode": r.close_code,
                "at": r.updated_at,
            }),
        }
    }
}

/// The events between two reads of the table, in connection id order (a pipe keeps order per
/// connection only).
pub fn changes(before: &Snapshot, after: &Snapshot) -> Vec<Change> {
    let mut out = Vec::new();
    for (id, row) in after {
        let change = |kind| Change { kind, connection_id: id.clone(), row: row.clone() };
        match before.get(id) {
            None if row.status == CONNECTED => out.push(change(Kind::Opened)),
            None if row.is_closed() && !row.connected_at.is_empty() => {
                let opened = row.as_connected();
                out.push(Change { kind: Kind::Opened, connection_id: id.clone(), row: opened });
                out.push(change(Kind::Closed));
            }
            Some(was) if was.status == CONNECTED && row.is_closed() => out.push(change(Kind::Closed)),
            _ => {}
        }
    }
    for (id, was) in before {
        if was.status == CONNECTED && !after.contains_key(id) {
            out.push(Change { kind: Kind::Removed, connection_id: id.clone(), row: was.clone() });
        }
    }
    out
}

/// A change as a DynamoDB stream record (`NEW_AND_OLD_IMAGES`) in the pipe's shape, for the
/// membership function: the images hold what was read (`sk`, `status`, ids, region, times, close).
pub fn stream_record(change: &Change, event_id: &str, now: chrono::DateTime<chrono::Utc>) -> Value {
    let image = |row: &Row| {
        let mut image = serde_json::Map::new();
        image.insert("sk".into(), json!({"S": "CONNECTION"}));
        image.insert("connectionId".into(), json!({"S": change.connection_id}));
        for (name, value) in [
            ("status", &row.status),
            ("conversationId", &row.conversation_id),
            ("userId", &row.user_id),
            ("region", &row.region),
            ("connectedAt", &row.connected_at),
            ("updatedAt", &row.updated_at),
            ("closeReason", &row.close_reason),
        ] {
            if !value.is_empty() {
                image.insert(name.into(), json!({"S": value}));
            }
        }
        if !row.close_code.is_empty() {
            image.insert("closeCode".into(), json!({"N": row.close_code}));
        }
        Value::Object(image)
    };
    let connected = change.row.as_connected();
    let mut dynamodb = json!({"ApproximateCreationDateTime": now.timestamp(), "StreamViewType": "NEW_AND_OLD_IMAGES"});
    match change.kind {
        Kind::Opened => dynamodb["NewImage"] = image(&change.row),
        Kind::Closed => {
            dynamodb["OldImage"] = image(&connected);
            dynamodb["NewImage"] = image(&change.row);
        }
        Kind::Removed => dynamodb["OldImage"] = image(&change.row),
    }
    json!({"eventID": event_id, "eventName": change.kind.event_name(), "eventSource": "aws:dynamodb", "dynamodb": dynamodb})
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn row(status: &str) -> Row {
        Row {
            status: status.into(),
            conversation_id: "conv".into(),
            user_id: "ana".into(),
            region: "us-east-1".into(),
            connected_at: "2026-12-03T10:00:00.000Z".into(),
            ..Row::default()
        }
    }

    fn kinds(changes: &[Change]) -> Vec<(&str, Kind)> {
        changes.iter().map(|c| (c.connection_id.as_str(), c.kind)).collect()
    }

    #[test]
    fn a_tombstone_a_replayed_disconnect_and_a_deleted_record_are_no_event() {
        let tombstone = Row { connected_at: String::new(), ..row(DISCONNECTED) };
        let before = Snapshot::from([("replayed".into(), row(DISCONNECTED)), ("deleted".into(), row(DISCONNECTED))]);
        let after = Snapshot::from([("replayed".into(), row(DISCONNECTED)), ("tomb".into(), tombstone)]);
        assert_eq!(kinds(&changes(&before, &after)), []);
        // A live record deleted (its TTL): no lifecycle event, a removal for membership.
        let before = Snapshot::from([("live".into(), row(CONNECTED))]);
        let removed = changes(&before, &Snapshot::new());
        assert_eq!(kinds(&removed), [("live", Kind::Removed)]);
        assert_eq!(removed[0].kind.detail_type(), None);
    }

    /// The pipes' input templates (`detail = "…"` in terraform/modules/events/main.tf), in order:
    /// opened, closed.
    fn templates() -> Vec<Value> {
        let main = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../terraform/modules/events/main.tf"))
            .expect("terraform/modules/events/main.tf");
        main.lines()
            .filter_map(|line| {
                line.trim().strip_prefix("detail = \"")?.strip_suffix('"').map(|t| t.replace("\\\"", "\""))
            })
            .map(|template| serde_json::from_str(&template).expect("a template is JSON"))
            .collect()
    }

    fn keys(value: &Value) -> Vec<&str> {
        value.as_object().expect("an object").keys().map(String::as_str).collect()
    }

    /// The counterexample the property found when the branch below was removed: a connection
    /// that opened and closed between two reads is both events, the open first, with the record
    /// as it was while open.
    #[test]
    fn a_connection_opened_and_closed_between_two_reads_is_both_events_in_order() {
        let after = Snapshot::from([("c1".into(), Row { close_reason: "bye".into(), ..row(DISCONNECTED) })]);
        let both = changes(&Snapshot::new(), &after);
        assert_eq!(kinds(&both), [("c1", Kind::Opened), ("c1", Kind::Closed)]);
        assert_eq!((both[0].row.status.as_str(), both[0].row.close_reason.as_str()), (CONNECTED, ""));
        assert_eq!(both[1].row.close_reason, "bye");
    }

    #[test]
    fn each_detail_has_the_keys_of_its_pipes_template_in_order_and_the_records_values() {
        let templates = templates();
        assert_eq!(templates.len(), 2, "the opened and the closed template");
        let opened = Change { kind: Kind::Opened, connection_id: "c1".into(), row: row(CONNECTED) };
        let closed = Change {
            kind: Kind::Closed,
            connection_id: "c1".into(),
            row: Row { close_reason: "banned".into(), close_code: "1000".into(), ..row(DISCONNECTED) },
        };
        for (change, template) in [(&opened, &templates[0]), (&closed, &templates[1])] {
            let detail = change.detail("e1");
            assert_eq!(keys(&detail), keys(template), "{:?}", change.kind);
            assert_eq!(detail["event"], template["event"]);
        }
        let detail = closed.detail("e1");
        assert_eq!((detail["reason"].as_str(), detail["closeCode"].as_str()), (Some("banned"), Some("1000")));
    }

    /// Where a connection is at a moment of its life: not yet, live, ended (a `$disconnect`, or a
    /// lost one found `GONE`), deleted (TTL).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Stage {
        Absent,
        Live,
        Ended(&'static str),
        Deleted,
    }

    fn at(stage: Stage) -> Option<Row> {
        match stage {
            Stage::Absent | Stage::Deleted => None,
            Stage::Live => Some(row(CONNECTED)),
            Stage::Ended(status) => Some(row(status)),
        }
    }

    /// A connection's life (the stages it passes, in order) and the read indexes at which each
    /// stage begins (non-decreasing): several may begin between two reads.
    fn life() -> impl Strategy<Value = (Vec<Stage>, Vec<usize>)> {
        let end = prop_oneof![Just(Stage::Ended(DISCONNECTED)), Just(Stage::Ended(GONE))];
        (0..4usize, end, proptest::collection::vec(0..6usize, 3)).prop_map(|(len, end, mut starts)| {
            starts.sort_unstable();
            let stages = [Stage::Live, end, Stage::Deleted][..len.min(3)].to_vec();
            (stages.clone(), starts[..stages.len()].to_vec())
        })
    }

    proptest! {
        // A counterexample is kept as a named test, not in a regressions file.
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever the moments of the reads, a connection that opened after the first read has
        /// one `opened`; one that was live at some read or opened after the first and then ended
        /// has one `closed`, after its `opened`; a connection that ended before the first read
        /// has none.
        #[test]
        fn every_connection_gets_its_events_once_in_order_however_the_reads_fall(
            lives in proptest::collection::vec(life(), 1..6),
        ) {
            const READS: usize = 6;
            let stage_at = |(stages, starts): &(Vec<Stage>, Vec<usize>), read: usize| {
                starts.iter().zip(stages).filter(|(start, _)| **start <= read).map(|(_, s)| *s).next_back().unwrap_or(Stage::Absent)
            };
            let snapshot = |read: usize| -> Snapshot {
                lives.iter().enumerate().filter_map(|(i, l)| at(stage_at(l, read)).map(|r| (format!("c{i}"), r))).collect()
            };
            let mut events = Vec::new();
            for read in 1..READS {
                events.extend(changes(&snapshot(read - 1), &snapshot(read)));
            }
            for (i, l) in lives.iter().enumerate() {
                let id = format!("c{i}");
                let mine: Vec<Kind> = events.iter().filter(|c| c.connection_id == id && c.kind != Kind::Removed).map(|c| c.kind).collect();
                let removed = events.iter().filter(|c| c.connection_id == id && c.kind == Kind::Removed).count();
                // Removed: live at a read, deleted at the next (its TTL), never seen ended.
                let removed_seen = (1..READS).any(|r| stage_at(l, r - 1) == Stage::Live && stage_at(l, r) == Stage::Deleted);
                prop_assert_eq!(removed, usize::from(removed_seen), "{} removals", id);
                let first = stage_at(l, 0);
                let last = stage_at(l, READS - 1);
                let opened_after_first = first == Stage::Absent && l.0.first() == Some(&Stage::Live) && l.1[0] >= 1 && l.1[0] < READS;
                // Seen ending: live at the first read or opened after it, and ended (its end
                // record read at least once: not deleted before any read saw it closed).
                let ended_seen = (0..READS).any(|r| matches!(stage_at(l, r), Stage::Ended(_)));
                let live_then = first == Stage::Live || opened_after_first;
                let opened_seen = opened_after_first && (0..READS).any(|r| stage_at(l, r) != Stage::Absent && stage_at(l, r) != Stage::Deleted);
                let mut want = Vec::new();
                if opened_seen { want.push(Kind::Opened); }
                if live_then && ended_seen { want.push(Kind::Closed); }
                prop_assert_eq!(&mine, &want, "{} stages {:?} from reads {:?}, last {:?}", id, l.0, l.1, last);
            }
        }
    }
}
