//! Who of a conversation is there: the set of a user's live connections in a conversation, kept
//! from the table's stream so a backend is told when a user's first connection to a conversation
//! opens (`joined`) and when their last one closes (`left`) — Pusher's `member_added` /
//! `member_removed`, Ably's presence enter / leave.
//!
//! The stream (through a pipe, `terraform/modules/events`) hands each change of a connection
//! record to `MembershipFunction`; [`change_of`] keeps the ones that open a connection (the
//! INSERT of a `CONNECTED` record) or end one (`CONNECTED` to `DISCONNECTED` or `GONE`, or a
//! `CONNECTED` record deleted by its TTL). Each `(conversation, user)` has one item
//! (`MEMBERS#<conversation>` / `USER#<user>`, [`keys::members`], [`keys::user`]) with two parts:
//! - the set of the user's live connection ids there: an opening adds its id, an ending removes
//!   it (`ADD` / `DELETE` on a string set: twice is once, in any order across connections), so
//!   once every record is read the set is the truth;
//! - what was last said: `present`, the record that said it (`presentBy`) and how many times it
//!   changed (`changes`). After its set change a record compares: when the set's emptiness and
//!   `present` disagree it changes `present` with a condition on the set (`attribute_exists` for
//!   a join, `attribute_not_exists` for a leave) and on `present` still being the other value,
//!   and only a change that lands is an event, `eventId` `<stream record's eventID>-<n>` for the
//!   n-th change. So a user's events in a conversation alternate `joined` / `left` and the last
//!   one says where the set ended, whatever order records from different shards are read in and
//!   however many run at once.
//!
//! A batch read again (a pipe retries a failed batch whole, before that shard's next batch) adds
//! and removes the same ids; a record that made the last change says it again with the same
//! `eventId`, for a consumer to drop. A batch read again that holds a connection's open and end
//! after a later change may change `present` twice more (a `joined` and a `left`, new ids, still
//! alternating, the last still right). What is never said: `left` for a user never said to have
//! joined (a connection opened before the pipe began).
//! Proven over generated histories in `properties/tests/membership.rs`.
//!
//! [`keys::members`]: crate::record::keys::members
//! [`keys::user`]: crate::record::keys::user

use std::future::Future;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::deadline::Deadline;
use crate::id::{ConnectionId, ConversationId, UserId};
use crate::record::{ConnectionStatus, attr, keys};
use crate::store::StoreError;

/// A membership item after a set change: how many ids its set holds, and what was last said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    pub connections: usize,
    /// `None`: nothing said yet.
    pub present: Option<bool>,
    /// The stream record that said it.
    pub by: Option<String>,
    /// How many times `present` changed: the n-th change's event is `<record>-<n>`.
    pub changes: u64,
}

/// The membership items of the connections table.
pub trait MembershipStore: Send + Sync {
    /// Adds (`kind` Opened) or removes (Ended) `connection` in `user`'s set for `conversation`
    /// (the item kept until `expires_at`, as a connection record is); the item after.
    fn change(
        &self,
        conversation: &ConversationId,
        user: &UserId,
        connection: &ConnectionId,
        kind: Kind,
        expires_at: DateTime<Utc>,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Member, StoreError>> + Send;

    /// Changes `present` to `present` by the record `by` if the set still agrees (some ids for
    /// `true`, none for `false`) and it is not `present` already; the change's number, or `None`
    /// when it was not made. Refused because `by` made this change already (a retried call whose
    /// first answer was lost), it is that change's number: never an event lost to a retry.
    fn say(
        &self,
        conversation: &ConversationId,
        user: &UserId,
        present: bool,
        by: &str,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;
}

/// A connection opening or ending, as the stream tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: Kind,
    /// The stream record's `eventID`: the event it makes carries it, for a consumer's dedup.
    pub event_id: String,
    pub connection_id: ConnectionId,
    pub conversation_id: ConversationId,
    /// `None`: nobody authenticated the connection (no membership to keep).
    pub user_id: Option<UserId>,
    pub region: String,
    /// When it opened (`connectedAt`) or ended (`updatedAt`; the stream's time for a TTL delete).
    pub at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Opened,
    Ended,
}

/// Why a stream record could not be read. Never echoes the record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("a stream record is a JSON object with eventName and dynamodb; this is not")]
    NotARecord,
    #[error("a connection record's {0} is missing or not valid")]
    Field(&'static str),
}

/// The image's string attribute `name` (`{"S": …}` in the stream's DynamoDB JSON).
fn text<'a>(image: &'a Value, name: &str) -> Option<&'a str> {
    image.get(name)?.get("S")?.as_str()
}

fn is_connection(image: &Value) -> bool {
    text(image, keys::SK) == Some(keys::CONNECTION_SK)
}

fn status(image: &Value) -> Option<ConnectionStatus> {
    text(image, attr::STATUS).and_then(ConnectionStatus::parse)
}

/// What a stream record means for membership: `None` for every record that neither opens nor
/// ends a connection (a tombstone, a replayed `$disconnect`, a stream's items, a membership item).
pub fn change_of(record: &Value) -> Result<Option<Change>, RecordError> {
    let name = record.get("eventName").and_then(Value::as_str).ok_or(RecordError::NotARecord)?;
    let dynamodb = record.get("dynamodb").filter(|d| d.is_object()).ok_or(RecordError::NotARecord)?;
    let (new, old) = (dynamodb.get("NewImage"), dynamodb.get("OldImage"));
    let connected = Some(ConnectionStatus::Connected);
    let ended = |image: &Value| matches!(status(image), Some(ConnectionStatus::Disconnected | ConnectionStatus::Gone));
    let (kind, image, at_field) = match (name, new, old) {
        ("INSERT", Some(new), _) if is_connection(new) && status(new) == connected => {
            (Kind::Opened, new, attr::CONNECTED_AT)
        }
        ("MODIFY", Some(new), Some(old)) if is_connection(old) && status(old) == connected && ended(new) => {
            (Kind::Ended, new, attr::UPDATED_AT)
        }
        ("REMOVE", _, Some(old)) if is_connection(old) && status(old) == connected => (Kind::Ended, old, ""),
        _ => return Ok(None),
    };
    let field = |name: &'static str| text(image, name).ok_or(RecordError::Field(name));
    let at = match at_field {
        "" => dynamodb
            .get("ApproximateCreationDateTime")
            .and_then(Value::as_i64)
            .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
            .map(crate::clock::iso_millis)
            .unwrap_or_default(),
        name => field(name)?.to_owned(),
    };
    Ok(Some(Change {
        kind,
        event_id: record.get("eventID").and_then(Value::as_str).unwrap_or_default().to_owned(),
        connection_id: ConnectionId::parse(field(attr::CONNECTION_ID)?)
            .map_err(|_| RecordError::Field(attr::CONNECTION_ID))?,
        conversation_id: ConversationId::parse(field(attr::CONVERSATION_ID)?)
            .map_err(|_| RecordError::Field(attr::CONVERSATION_ID))?,
        user_id: text(image, attr::USER_ID)
            .map(UserId::parse)
            .transpose()
            .map_err(|_| RecordError::Field(attr::USER_ID))?,
        region: text(image, attr::REGION).unwrap_or_default().to_owned(),
        at,
    }))
}

/// A user's presence in a conversation changing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    Joined,
    Left,
}

/// What a record should do after its set change ([`Membership::to_say`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Say {
    /// Change `present` (it disagrees with the set); the event if the change lands.
    Change(Membership),
    /// This record made the last change and is read again: its event again, same id.
    Again(Membership, u64),
}

impl Membership {
    /// What a record whose set change left `member` should say, if anything: `joined` when the
    /// set has ids and `present` is not true, `left` when it has none and `present` is true; the
    /// last change again when this record made it and the set still agrees.
    pub fn to_say(member: &Member, record: &str) -> Option<Say> {
        let here = member.connections > 0;
        let word = if here { Self::Joined } else { Self::Left };
        match member.present {
            None if !here => None,
            Some(said) if said == here => {
                (member.by.as_deref() == Some(record) && !record.is_empty()).then_some(Say::Again(word, member.changes))
            }
            _ => Some(Say::Change(word)),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Joined => "joined",
            Self::Left => "left",
        }
    }

    /// The event's `detail` (its `detail-type` is `Presence changed`) for the `number`-th change of
    /// the user's presence there: no IP, user agent or token. Its `eventId`,
    /// `<stream record>-<number>`, is the same when a record read again says it again, and new
    /// for every change.
    pub fn detail(self, change: &Change, user: &UserId, number: u64) -> Value {
        json!({
            "event": self.as_str(),
            "eventId": format!("{}-{number}", change.event_id),
            "conversationId": change.conversation_id.as_str(),
            "userId": user.as_str(),
            "connectionId": change.connection_id.as_str(),
            "region": change.region,
            "at": change.at,
        })
    }
}
