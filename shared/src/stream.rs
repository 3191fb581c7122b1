//! Streams: every post to a conversation or a user is appended to that audience's stream before
//! it is fanned out, so a client that was away can ask for what it missed (`resume`).
//!
//! A stream is one partition of the connections table (`STREAM#<name>`, [`keys`]): a head item
//! (its `epoch` and last offset), one entry per message (`E#<offset>`, in offset order: one Query
//! reads a range), and one item per message key (`K#<hash>`: the offset a publish got, and how
//! far its fan-out has claimed the audience). An append is one transaction: the head moves from
//! `last` to `last + 1` only if it still says `last`, the entry is written at that offset, and the
//! key is written only if no live publish has it. So offsets are gap-free and strictly increasing,
//! and a retried publish (same key) appends nothing and gets the first offset back.
//!
//! Rules kept here and proved over generated histories (`properties/tests/streams.rs`):
//! - an entry lives `STREAM_RETENTION_MINUTES` (the table's TTL removes it; reads ignore an
//!   expired entry before TTL gets to it); a stream whose head expired starts again at offset 1
//!   with a new random `epoch`, so an old offset never names a new message;
//! - a stream is written by one region only: its name says which (`conv/<region>/<id>`), so the
//!   replicas of a global table never hold two writers of one offset;
//! - a fan-out claims the audience a page at a time on the key item before posting
//!   ([`plan_claim`]): a retried publish posts only to connections no earlier run claimed.
//!
//! The contract is in docs/design.md ("Streams").

use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};

use crate::deadline::Deadline;
use crate::id::{ConversationId, IdError, UserId};
use crate::segment::Segment;
use crate::store::{Audience, StoreError};

/// The largest envelope a streamed post may have (the responder refuses a bigger one with 413):
/// 1 KB under API Gateway's 128 KB message, for the `resume` answer that carries it.
pub const MAX_STREAMED_BYTES: usize = 127 * 1024;
/// Default minutes an entry (and a message key) is kept.
pub const DEFAULT_RETENTION_MINUTES: u32 = 1440;
/// The claim of a fan-out that has taken its whole audience (above every connection id: `~`
/// sorts after every character an id may hold).
pub const END: &str = "~";

/// Why a stream name, a message id or a position is not acceptable. Never echoes the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("stream must be \"conv/<region>/<conversationId>\" or \"user/<region>/<userId>\" as an envelope names it")]
    Name,
    #[error("stream {0}")]
    Id(#[from] IdError),
    #[error("a broadcast to every connection has no stream: it is posted live only")]
    Broadcast,
}

/// A stream's name: `conv/<region>/<conversationId>` or `user/<region>/<userId>`. The region is
/// the one whose functions append to it (one writer per stream across a global table's replicas).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamName {
    name: String,
    audience: Audience,
}

/// A region name as AWS spells them (`us-east-1`): 1-32 characters of `[a-z0-9-]`.
pub fn is_region(region: &str) -> bool {
    (1..=32).contains(&region.len())
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl StreamName {
    /// The stream of `audience` written by `region`'s functions.
    pub fn of(audience: &Audience, region: &str) -> Result<Self, StreamError> {
        if !is_region(region) {
            return Err(StreamError::Name);
        }
        let name = match audience {
            Audience::Conversation(id) => format!("conv/{region}/{id}"),
            Audience::User(id) => format!("user/{region}/{id}"),
            Audience::All => return Err(StreamError::Broadcast),
        };
        Ok(Self { name, audience: audience.clone() })
    }

    /// A name as a client sends it back (`resume`).
    pub fn parse(raw: &str) -> Result<Self, StreamError> {
        let mut parts = raw.splitn(3, '/');
        let (Some(kind), Some(region), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(StreamError::Name);
        };
        let audience = match kind {
            "conv" => Audience::Conversation(ConversationId::parse(id)?),
            "user" => Audience::User(UserId::parse(id)?),
            _ => return Err(StreamError::Name),
        };
        Self::of(&audience, region)
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Whose stream it is.
    pub fn audience(&self) -> &Audience {
        &self.audience
    }

    /// The region that writes it.
    pub fn region(&self) -> &str {
        self.name.split('/').nth(1).expect("a parsed name has a region")
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// What makes two publishes the same message: the producer's `messageId`, else its
/// `correlationId` + `sequence`, else a key generated for one publish (kept in its cursor). Stored
/// hashed (`K#<32 hex>`), so any string the producer chose fits a sort key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageKey(String);

/// The longest `messageId` accepted (it is hashed, never stored as given).
pub const MAX_MESSAGE_ID: usize = 256;

impl MessageKey {
    /// The key of a producer's `messageId` (1-[`MAX_MESSAGE_ID`] characters, checked by the caller).
    pub fn of_message_id(id: &str) -> Self {
        Self::hashed(&format!("id\n{id}"))
    }

    /// The key of a `correlationId` + `sequence` pair.
    pub fn of_sequence(correlation_id: &str, sequence: u64) -> Self {
        Self::hashed(&format!("seq\n{correlation_id}\n{sequence}"))
    }

    /// A key for a publish that named none (its continuations carry it in the cursor).
    pub fn generated(uuid: uuid::Uuid) -> Self {
        Self::hashed(&format!("gen\n{uuid}"))
    }

    /// A key as stored or carried in a cursor (32 lowercase hex digits).
    pub fn from_hex(hex: &str) -> Option<Self> {
        (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            .then(|| Self(hex.to_owned()))
    }

    fn hashed(source: &str) -> Self {
        // FNV-1a 128: stable across versions and processes, no crypto needed (a producer that
        // wants two publishes to differ gives two ids; collisions are not a security boundary:
        // every publisher may post to the audience anyway).
        let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
        for b in source.bytes() {
            hash ^= u128::from(b);
            hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
        }
        Self(format!("{hash:032x}"))
    }

    pub fn as_hex(&self) -> &str {
        &self.0
    }
}

/// A stream's current epoch and last offset (0: nothing appended in this epoch yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub epoch: String,
    pub last: u64,
}

/// How far a publish's fan-out has claimed its audience: every connection up to `upto` (in index
/// order, or [`END`]) was taken by the run `by`. Empty: nothing claimed yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claim {
    pub upto: Option<String>,
    pub by: Option<String>,
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub offset: u64,
    pub epoch: String,
    /// The key was already published (within the retention): nothing was appended, `offset`,
    /// `epoch` and `message` are the first publish's.
    pub duplicate: bool,
    /// The message as stored (on a duplicate, the first publish's).
    pub message: String,
    /// The fan-out's progress so far (empty for a new message).
    pub claim: Claim,
}

/// One stored message of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub offset: u64,
    /// The message JSON as appended (without the stream fields: [`wire`] adds them).
    pub message: String,
}

/// Outcome of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The claim is now what was asked.
    Claimed,
    /// Another run changed it first: here is what it is now.
    Moved(Claim),
}

/// Which entries a read wants: those of `epoch` after offset `after`, up to `upto`, at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct EntryRange<'a> {
    pub epoch: &'a str,
    pub after: u64,
    pub upto: u64,
    pub limit: u32,
}

/// What one append writes: `message` (a JSON object) at `at`, kept `retention`, with `new_epoch`
/// if the stream starts (again) with it.
#[derive(Debug, Clone, Copy)]
pub struct Append<'a> {
    pub stream: &'a StreamName,
    pub key: &'a MessageKey,
    pub message: &'a str,
    pub at: DateTime<Utc>,
    pub retention: chrono::Duration,
    pub new_epoch: &'a str,
}

/// The streams in the connections table. Every call is bounded by `deadline`.
pub trait StreamStore: Send + Sync {
    /// Appends a message at the stream's next offset, once per key within the retention.
    fn append(
        &self,
        append: Append<'_>,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Appended, StoreError>> + Send;

    /// Sets the claim of `key`'s fan-out (of its `segment`: each segment's claim is its own) to
    /// `next` if it is still `seen`.
    fn claim(
        &self,
        stream: &StreamName,
        key: &MessageKey,
        segment: Segment,
        seen: &Claim,
        next: &Claim,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;

    /// The stream's live head (read consistently); `None` when it has none or it expired by `now`.
    fn head(
        &self,
        stream: &StreamName,
        now: DateTime<Utc>,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Option<Head>, StoreError>> + Send;

    /// Up to `range.limit` live entries of `range.epoch` with offsets in `range.after + 1 ..=
    /// range.upto`, in offset order (read consistently: an entry appended before the call is in it).
    fn entries(
        &self,
        stream: &StreamName,
        range: &EntryRange<'_>,
        now: DateTime<Utc>,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Vec<Entry>, StoreError>> + Send;
}

/// The envelope a client receives: the stored message with `stream`, `offset` and `epoch` added
/// at its end. `message` is a JSON object, as the responder serializes it.
pub fn wire(message: &str, stream: &StreamName, offset: u64, epoch: &str) -> String {
    let body = message.trim_end().strip_suffix('}').unwrap_or(message);
    let separator = if body.trim_end().ends_with('{') { "" } else { "," };
    let stream = serde_json::to_string(stream.as_str()).expect("a string serializes");
    let epoch = serde_json::to_string(epoch).expect("a string serializes");
    format!(r#"{body}{separator}"stream":{stream},"offset":{offset},"epoch":{epoch}}}"#)
}

/// A fresh epoch: 16 hex digits of a random UUID.
pub fn new_epoch(uuid: uuid::Uuid) -> String {
    let (high, low) = uuid.as_u64_pair();
    format!("{:016x}", high ^ low)
}

/// What a fan-out run does with one page of its audience, given the claim it last saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPlan {
    /// Connections at or before this position were taken by another run: skip them.
    pub skip_upto: Option<String>,
    /// The claim to write (conditional on the one seen) before posting; `None`: nothing to write.
    pub write: Option<Claim>,
}

/// How run `run` may take a page that ends at `page_end` (the position the next page starts
/// after, or [`END`]) when the claim is `seen`:
/// - its own claim (or none yet) covers what it claimed; beyond that it claims up to the page's
///   end;
/// - another run's claim is never lowered: what it covers is skipped (that run took it, or lost
///   it with its own retry: at most once), and the page's rest is claimed for this run.
pub fn plan_claim(seen: &Claim, run: &str, page_end: &str) -> ClaimPlan {
    let mine = seen.by.as_deref() == Some(run);
    let covered = seen.upto.as_deref();
    let skip_upto = if mine { None } else { covered.map(str::to_owned) };
    let write = match covered {
        Some(upto) if upto >= page_end => None,
        _ => Some(Claim { upto: Some(page_end.to_owned()), by: Some(run.to_owned()) }),
    };
    // Taking over another run's claim moves `by` to this run; the positions it covered stay
    // skipped (they are below the new `upto` either way).
    ClaimPlan { skip_upto, write }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn conv(id: &str) -> Audience {
        Audience::Conversation(ConversationId::parse(id).unwrap())
    }

    #[test]
    fn a_stream_name_says_whose_and_which_regions_it_is_and_parses_back() {
        let name = StreamName::of(&conv("conv-1"), "eu-west-1").unwrap();
        assert_eq!(name.as_str(), "conv/eu-west-1/conv-1");
        assert_eq!(name.region(), "eu-west-1");
        assert_eq!(StreamName::parse("conv/eu-west-1/conv-1").unwrap(), name);
        let user = StreamName::parse("user/us-east-1/a@b.c:d").unwrap();
        assert_eq!(user.audience(), &Audience::User(UserId::parse("a@b.c:d").unwrap()));
        for bad in ["", "conv", "conv/us-east-1", "room/us-east-1/x", "conv/US/x", "conv/us-east-1/a#b", "conv//x"] {
            assert!(StreamName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_wire_envelope_is_the_message_with_the_stream_fields_at_its_end() {
        let name = StreamName::of(&conv("c"), "us-east-1").unwrap();
        assert_eq!(
            wire(r#"{"messageType":"system","payload":{"a":1}}"#, &name, 7, "e1"),
            r#"{"messageType":"system","payload":{"a":1},"stream":"conv/us-east-1/c","offset":7,"epoch":"e1"}"#
        );
        assert_eq!(wire("{}", &name, 1, "e"), r#"{"stream":"conv/us-east-1/c","offset":1,"epoch":"e"}"#);
    }

    #[test]
    fn message_keys_differ_by_kind_and_value_and_are_stable() {
        let a = MessageKey::of_message_id("m-1");
        assert_eq!(a, MessageKey::of_message_id("m-1"));
        assert_ne!(a, MessageKey::of_message_id("m-2"));
        assert_ne!(MessageKey::of_sequence("c", 1), MessageKey::of_sequence("c", 2));
        assert_ne!(MessageKey::of_sequence("c\n1", 1), MessageKey::of_sequence("c", 11));
        assert_eq!(MessageKey::from_hex(a.as_hex()), Some(a.clone()));
        assert_eq!(MessageKey::from_hex("xyz"), None);
        assert_eq!(a.as_hex().len(), 32);
    }

    proptest! {
        /// Runs that take pages in any interleaving, each following `plan_claim` with a
        /// compare-and-set claim, never take one connection twice.
        #[test]
        fn interleaved_runs_following_the_claims_take_each_connection_at_most_once(
            ids in proptest::collection::btree_set("[a-z]{1,3}", 1..30),
            page in 1usize..6,
            schedule in proptest::collection::vec(0usize..3, 1..60),
        ) {
            let ids: Vec<String> = ids.into_iter().collect();
            let mut claim = Claim::default();
            // Each run: (run id, position it reads after).
            let mut runs: Vec<(String, Option<String>)> = (0..3).map(|r| (format!("run{r}"), None)).collect();
            let mut taken: Vec<String> = Vec::new();
            for r in schedule {
                let (run, after) = runs[r].clone();
                let from: Vec<&String> = ids.iter().filter(|id| after.as_ref().is_none_or(|a| *id > a)).collect();
                if from.is_empty() { continue; }
                let this: Vec<&String> = from.iter().take(page).copied().collect();
                let end = if from.len() > page { (*this.last().unwrap()).clone() } else { END.to_owned() };
                let plan = plan_claim(&claim, &run, &end);
                if let Some(next) = &plan.write { claim = next.clone(); }
                for id in this {
                    if plan.skip_upto.as_ref().is_none_or(|s| id > s) { taken.push(id.clone()); }
                }
                runs[r].1 = Some(end);
            }
            let mut sorted = taken.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), taken.len(), "taken twice: {:?}", taken);
        }
    }
}
