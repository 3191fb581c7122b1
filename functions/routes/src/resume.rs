//! `resume`: a client asks for what its streams got since the position it last delivered.
//!
//! `{"action":"resume","streams":[{"stream":"conv/us-east-1/c1","offset":41,"epoch":"9f…"}]}` →
//! `{"type":"resumed","streams":[{"stream","epoch","recovered","from","to","messages":[…]}],"more"?}`.
//! Without `streams`: the connection's own streams in this region (its conversation's, its
//! user's), from now — how a client that knows no stream yet learns their names and positions.
//! Per stream:
//! - no `epoch` and no `offset`: the client starts now; the answer is the stream's position
//!   (`to` = its last offset), with no messages;
//! - no `epoch` and an `offset`: the retained messages after `offset` in the current epoch;
//! - the current `epoch`: the messages after `offset`; `recovered` is false when one of them has
//!   expired (the first one returned is not `offset + 1`);
//! - another `epoch` (the stream expired and started again): `recovered: false`, and the retained
//!   messages of the new epoch from its start.
//!
//! `to` is the client's position after this answer (the last offset it holds), `from` the first
//! offset in `messages` (`to + 1` when there are none). At most `RESUME_MAX_MESSAGES` messages and
//! [`MAX_ANSWER_BYTES`] per answer: past that, `"more": true` and the client asks again from `to`.
//! Messages are the envelopes the live posts carry ([`ws_shared::stream::wire`]), read
//! consistently: anything appended before the read is in the answer, and anything appended after
//! it is posted live to this (already recorded) connection or found by the next resume.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use ws_shared::deadline::Deadline;
use ws_shared::store::{Audience, LiveConnection, StoreError};
use ws_shared::stream::{self, EntryRange, StreamName, StreamStore};

/// API Gateway's limit for a message is 128 KB; the answer stays under it with room for its frame.
pub const MAX_ANSWER_BYTES: usize = 96 * 1024;
/// Streams one resume may name (a connection reads its conversation's and its user's, in at most
/// a few regions).
pub const MAX_STREAMS: usize = 16;
/// The longest epoch accepted (ours are 16 hex digits).
const MAX_EPOCH: usize = 64;

/// What is wrong with a resume request; the message goes back to the client as `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    #[error("streams must be a list of 1 to {MAX_STREAMS} {{\"stream\", \"offset\", \"epoch\"}} objects")]
    Streams,
    #[error("streams[{0}].stream must name a stream as an envelope's \"stream\" does")]
    Name(usize),
    #[error("streams[{0}].offset must be a whole number (the last offset you delivered), or absent")]
    Offset(usize),
    #[error("streams[{0}].epoch must be the \"epoch\" of the envelopes you delivered, or absent")]
    Epoch(usize),
    #[error(
        "streams[{0}] is not a stream this connection may read: only its conversation's and its user's \
         (from the conversation it connected to and its token)"
    )]
    Forbidden(usize),
}

/// One stream asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub stream: StreamName,
    pub offset: Option<u64>,
    pub epoch: Option<String>,
}

/// The streams of `connection` in `region` (its conversation's, and its user's when it has one),
/// each from now: what a client that knows no stream yet asks for (`{"action":"resume"}`).
pub fn own(connection: &LiveConnection, region: &str) -> Vec<Position> {
    let mut audiences = vec![Audience::Conversation(connection.conversation_id.clone())];
    audiences.extend(connection.user_id.clone().map(Audience::User));
    audiences
        .iter()
        .filter_map(|audience| StreamName::of(audience, region).ok())
        .map(|stream| Position { stream, offset: None, epoch: None })
        .collect()
}

/// Parses the request's `streams`; `None` when it names none (the connection's own, from now).
pub fn parse(body: &Map<String, Value>) -> Result<Option<Vec<Position>>, ResumeError> {
    let streams = match body.get("streams") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(streams)) => streams,
        Some(_) => return Err(ResumeError::Streams),
    };
    if streams.is_empty() || streams.len() > MAX_STREAMS {
        return Err(ResumeError::Streams);
    }
    streams
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let Value::Object(entry) = entry else { return Err(ResumeError::Streams) };
            let stream = entry
                .get("stream")
                .and_then(Value::as_str)
                .and_then(|raw| StreamName::parse(raw).ok())
                .ok_or(ResumeError::Name(i))?;
            let offset = match entry.get("offset") {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => Some(n.as_u64().ok_or(ResumeError::Offset(i))?),
                Some(_) => return Err(ResumeError::Offset(i)),
            };
            let epoch = match entry.get("epoch") {
                None | Some(Value::Null) => None,
                Some(Value::String(e)) if !e.is_empty() && e.len() <= MAX_EPOCH => Some(e.clone()),
                Some(_) => return Err(ResumeError::Epoch(i)),
            };
            Ok(Position { stream, offset, epoch })
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// True when `connection` may read `stream`: its conversation's or its user's (any region's).
pub fn may_read(connection: &LiveConnection, stream: &StreamName) -> bool {
    match stream.audience() {
        Audience::Conversation(id) => *id == connection.conversation_id,
        Audience::User(id) => connection.user_id.as_ref() == Some(id),
        Audience::All => false,
    }
}

/// One stream's part of the answer.
#[derive(Debug, Serialize)]
pub struct Resumed {
    pub stream: String,
    /// The stream's current epoch; `None` when it has no live head (nothing retained).
    pub epoch: Option<String>,
    pub recovered: bool,
    pub from: u64,
    pub to: u64,
    pub messages: Vec<Box<RawValue>>,
}

/// The whole answer.
#[derive(Debug, Serialize)]
pub struct Answer {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub streams: Vec<Resumed>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub more: bool,
}

/// What is left of one answer's budget.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub messages: u32,
    pub bytes: usize,
    /// Nothing in the answer yet: one message is always taken, whatever its size (a streamed
    /// message is at most [`stream::MAX_STREAMED_BYTES`], so an answer of one still fits API Gateway's 128 KB).
    pub empty: bool,
}

impl Budget {
    /// A whole answer's budget: `messages` at most, [`MAX_ANSWER_BYTES`].
    pub fn new(messages: u32) -> Self {
        Self { messages, bytes: MAX_ANSWER_BYTES, empty: true }
    }
}

/// Reads every stream of `positions` (already checked against the connection) within `budget`.
pub async fn answer<S: StreamStore>(
    store: &S,
    positions: &[Position],
    mut budget: Budget,
    now: DateTime<Utc>,
    deadline: &Deadline,
) -> Result<Answer, StoreError> {
    let mut answer = Answer { kind: "resumed", streams: Vec::with_capacity(positions.len()), more: false };
    for position in positions {
        let (resumed, cut) = one(store, position, &mut budget, now, deadline).await?;
        answer.more |= cut;
        answer.streams.push(resumed);
    }
    Ok(answer)
}

/// One stream: its messages after the position, as many as the budget holds (`true`: cut short).
async fn one<S: StreamStore>(
    store: &S,
    position: &Position,
    budget: &mut Budget,
    now: DateTime<Utc>,
    deadline: &Deadline,
) -> Result<(Resumed, bool), StoreError> {
    let name = position.stream.as_str().to_owned();
    let Some(head) = store.head(&position.stream, now, deadline).await? else {
        // Nothing retained: a client that knew an epoch lost what came after its offset. Its new
        // position is "no epoch, nothing delivered": the stream's next epoch starts at offset 1.
        let resumed = Resumed {
            stream: name,
            epoch: None,
            recovered: position.epoch.is_none(),
            from: 1,
            to: 0,
            messages: vec![],
        };
        return Ok((resumed, false));
    };
    let same_epoch = position.epoch.as_deref() == Some(head.epoch.as_str());
    let after = match (&position.epoch, position.offset) {
        (None, None) => head.last,
        (None, Some(offset)) => offset.min(head.last),
        (Some(_), Some(offset)) if same_epoch => offset.min(head.last),
        (Some(_), _) => 0,
    };
    let wanted = after < head.last;
    let range = EntryRange { epoch: &head.epoch, after, upto: head.last, limit: budget.messages };
    let read = wanted && budget.messages > 0 && (budget.bytes > 0 || budget.empty);
    let entries = if read { store.entries(&position.stream, &range, now, deadline).await? } else { Vec::new() };
    // What the answer leaves out for its budget is not lost: only a first entry past `after + 1`
    // (or none at all, when some were due) says that entries expired.
    let gap_free = !read || entries.first().is_some_and(|e| e.offset == after + 1);
    let recovered = match &position.epoch {
        Some(_) if !same_epoch => false,
        _ => gap_free,
    };
    let mut messages = Vec::with_capacity(entries.len());
    let mut first = None;
    // Every entry up to the head expired: the client's position moves past them.
    let mut to = if read && entries.is_empty() { head.last } else { after };
    let mut cut = wanted && !read;
    let read_all = u32::try_from(entries.len()).is_ok_and(|n| n < range.limit);
    for entry in entries {
        let wire = stream::wire(&entry.message, &position.stream, entry.offset, &head.epoch);
        if (wire.len() > budget.bytes && !budget.empty) || budget.messages == 0 {
            cut = true;
            break;
        }
        budget.bytes = budget.bytes.saturating_sub(wire.len());
        budget.messages -= 1;
        budget.empty = false;
        to = entry.offset;
        first.get_or_insert(entry.offset);
        messages.push(RawValue::from_string(wire).map_err(|err| StoreError {
            operation: "Query",
            table: String::new(),
            permanent: true,
            source: Box::new(err),
        })?);
    }
    // A read that filled its limit may have left entries behind.
    cut |= read && !read_all && to < head.last;
    let from = first.unwrap_or(to + 1);
    let resumed = Resumed { stream: name, epoch: Some(head.epoch), recovered, from, to, messages };
    Ok((resumed, cut))
}
