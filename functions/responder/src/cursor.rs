//! The fan-out's continuation cursor (docs/design.md §8): where in the audience's index a fan-out stopped,
//! bound to the fan-out it came from.
//!
//! It is opaque to callers but not secret: `v2.<base64url(JSON)>.<checksum>`. The JSON names the
//! audience, a digest of the message, the last connection (in index order) that this fan-out has
//! taken, and the connections still owed the message because the Management API throttled them
//! (docs/design.md §9: a refused post is retried, never dropped), with their tries so far. A `v1` cursor
//! (no owed list) from before that change still continues its fan-out. A cursor only continues the fan-out it came from: another audience or another
//! message is refused, and so is one whose checksum does not match (edited or cut). The cursor
//! grants nothing the event does not already: the audience always comes from the event, and the
//! position only moves the start within that audience's index.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use ws_shared::id::ConnectionId;
use ws_shared::record::{Route, keys};
use ws_shared::segment::Segment;
use ws_shared::store::Audience;
use ws_shared::stream::MessageKey;

const VERSION: &str = "v2";
/// The version before the owed list; still read.
const VERSION_1: &str = "v1";
/// Longest cursor accepted: a position and at most `MAX_OWED` (256) owed ids of at most 128
/// characters each, in base64.
const MAX_LEN: usize = 64 * 1024;

/// Why a cursor cannot continue this fan-out. Each message tells the caller what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("cursor must be a string that a previous fan-out returned")]
    NotAString,
    #[error("the cursor is malformed ({0}); pass the cursor exactly as the previous answer gave it")]
    Malformed(&'static str),
    #[error("the cursor was altered (its checksum does not match); pass it exactly as the previous answer gave it")]
    Tampered,
    #[error(
        "the cursor belongs to another fan-out (a different conversationId/userId or message); \
         continue a fan-out with the same event plus the cursor it returned"
    )]
    OtherFanOut,
    #[error("a cursor continues a fan-out; this event names one connectionId")]
    NotAFanOut,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Body {
    /// `c:<conversationId>`, `u:<userId>`, or `e:` (the expiry sweep).
    t: String,
    /// The message's digest (hex, 16 bytes of SHA-256).
    m: String,
    /// The last connection taken (its GSI3 sort key for the sweep); absent: nothing yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    a: Option<String>,
    /// The shard (GSI3's for the sweep, GSI4's for a broadcast).
    #[serde(default, skip_serializing_if = "is_zero")]
    s: u8,
    /// Connections owed a retry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    o: Vec<OwedBody>,
    /// A streamed post's message key (hex), so a continuation re-finds the offset it appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<String>,
    /// A streamed post's fan-out run: the claims it made are its own to take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
}

/// One owed connection: id, tries, strikes, and `[apiId, stage, region]` when its record named
/// its API (the retry goes through the same API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct OwedBody {
    i: String,
    t: u8,
    s: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<(String, String, String)>,
}

/// A connection a continuation still owes the message (its post was throttled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwedPost {
    pub id: ConnectionId,
    pub route: Option<Route>,
    pub tries: u8,
    pub strikes: u8,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if takes a reference
fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// Which fan-out a cursor continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An audience's fan-out, or one segment of it.
    Audience(Audience, Segment),
    /// The expiry sweep (`{"action":"disconnect","expired":true}`).
    Expired,
}

/// A place in a fan-out's index: in GSI3's `shard` for the sweep (0 otherwise), after `after`
/// (a connection id, or a GSI3 sort key for the sweep; from the start when `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    pub shard: u8,
    pub after: Option<String>,
}

/// Where a fan-out continues: at `position` in index order, and first with the `owed`
/// connections. A streamed post also carries its message key and its run (`ws_shared::stream`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    pub position: Position,
    pub owed: Vec<OwedPost>,
    pub key: Option<MessageKey>,
    pub run: Option<String>,
}

fn target(target: &Target) -> String {
    let whom = match target {
        Target::Audience(Audience::Conversation(id), _) => format!("c:{id}"),
        Target::Audience(Audience::User(id), _) => format!("u:{id}"),
        Target::Audience(Audience::All, _) => "a:".to_owned(),
        Target::Expired => "e:".to_owned(),
    };
    match target {
        // A segment's cursor continues that segment only (the whole audience's has no suffix,
        // as before segments).
        Target::Audience(_, segment) if !segment.is_whole() => format!("{whom}#{}", segment.label()),
        _ => whom,
    }
}

impl Target {
    /// The index partitions the fan-out goes through.
    fn shards(&self) -> u8 {
        match self {
            Self::Audience(audience, _) => audience.shards(),
            Self::Expired => keys::EXPIRY_SHARDS,
        }
    }
}

fn hex16(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(32);
    crate::hex_into(&bytes[..bytes.len().min(16)], &mut out);
    out
}

/// The digest that binds a cursor to its message (the envelope's bytes).
pub fn message_digest(message: &[u8]) -> String {
    hex16(&Sha256::digest(message))
}

fn checksum(encoded: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"ws-responder cursor ");
    hasher.update(encoded.as_bytes());
    hex16(&hasher.finalize())
}

/// The cursor of the fan-out to `fan_out` with `digest` (of its message, or of its close),
/// stopped at `resume`.
pub fn encode(fan_out: &Target, digest: &str, resume: &Resume) -> String {
    let body = Body {
        t: target(fan_out),
        m: digest.to_owned(),
        a: resume.position.after.clone(),
        s: resume.position.shard,
        o: resume
            .owed
            .iter()
            .map(|o| OwedBody {
                i: o.id.as_str().to_owned(),
                t: o.tries,
                s: o.strikes,
                r: o.route.as_ref().map(|r| (r.api_id.clone(), r.stage.clone(), r.region.clone())),
            })
            .collect(),
        k: resume.key.as_ref().map(|k| k.as_hex().to_owned()),
        r: resume.run.clone(),
    };
    let json = serde_json::to_vec(&body).expect("a cursor body serializes");
    let encoded = URL_SAFE_NO_PAD.encode(json);
    let sum = checksum(&encoded);
    format!("{VERSION}.{encoded}.{sum}")
}

/// Where the fan-out to `fan_out` with `digest` resumes.
pub fn decode(raw: &str, fan_out: &Target, digest: &str) -> Result<Resume, CursorError> {
    if raw.len() > MAX_LEN {
        return Err(CursorError::Malformed("too long"));
    }
    let mut parts = raw.split('.');
    let (Some(version), Some(encoded), Some(sum), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(CursorError::Malformed("expected three dot-separated parts"));
    };
    if version != VERSION && version != VERSION_1 {
        return Err(CursorError::Malformed("unknown version"));
    }
    if checksum(encoded) != sum {
        return Err(CursorError::Tampered);
    }
    let json = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| CursorError::Malformed("not base64url"))?;
    let body: Body = serde_json::from_slice(&json).map_err(|_| CursorError::Malformed("not a cursor body"))?;
    if body.t != target(fan_out) || body.m != digest {
        return Err(CursorError::OtherFanOut);
    }
    let parse = |id: String| ConnectionId::parse(id).map_err(|_| CursorError::Malformed("not a connection id"));
    let after = match (fan_out, body.a) {
        (Target::Audience(..), Some(id)) => Some(parse(id)?.as_str().to_owned()),
        (Target::Expired, Some(sort)) if keys::connection_of_expiry(&sort).is_some() => Some(sort),
        (Target::Expired, Some(_)) => return Err(CursorError::Malformed("not a position in the expiry index")),
        (_, None) => None,
    };
    if body.s >= fan_out.shards() {
        return Err(CursorError::Malformed("no such shard"));
    }
    Ok(Resume {
        position: Position { shard: body.s, after },
        owed: body
            .o
            .into_iter()
            .map(|o| {
                let route = o.r.map(|(api_id, stage, region)| Route { api_id, stage, region });
                Ok(OwedPost { id: parse(o.i)?, route, tries: o.t, strikes: o.s })
            })
            .collect::<Result<_, CursorError>>()?,
        key: body.k.map(|k| MessageKey::from_hex(&k).ok_or(CursorError::Malformed("not a message key"))).transpose()?,
        run: match body.r {
            Some(run) if is_run(&run) => Some(run),
            Some(_) => return Err(CursorError::Malformed("not a fan-out run")),
            None => None,
        },
    })
}

/// A fan-out run's id: 16 lowercase hex digits.
pub fn is_run(run: &str) -> bool {
    run.len() == 16 && run.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use ws_shared::id::{ConversationId, UserId};

    use super::*;

    fn conversation(id: &str) -> Target {
        Target::Audience(Audience::Conversation(ConversationId::parse(id).unwrap()), Segment::WHOLE)
    }

    #[test]
    fn a_cursor_round_trips_to_its_position() {
        let audience = conversation("conv-1");
        let digest = message_digest(b"{\"m\":1}");
        let route = Route { api_id: "abc".into(), stage: "prod".into(), region: "eu-west-1".into() };
        let owed = vec![
            OwedPost { id: ConnectionId::parse("owed1=").unwrap(), route: None, tries: 2, strikes: 1 },
            OwedPost { id: ConnectionId::parse("owed2=").unwrap(), route: Some(route), tries: 1, strikes: 0 },
        ];
        let resume = Resume {
            position: Position { shard: 0, after: Some("abc123=".into()) },
            owed,
            key: Some(MessageKey::of_message_id("m-1")),
            run: Some("0123456789abcdef".into()),
        };
        assert_eq!(decode(&encode(&audience, &digest, &resume), &audience, &digest), Ok(resume));
        assert_eq!(decode(&encode(&audience, &digest, &Resume::default()), &audience, &digest), Ok(Resume::default()));
    }

    #[test]
    fn a_version_1_cursor_still_continues_its_fan_out() {
        let audience = conversation("conv-1");
        let digest = message_digest(b"{}");
        let encoded = URL_SAFE_NO_PAD.encode(format!(r#"{{"t":"c:conv-1","m":"{digest}","a":"abc="}}"#));
        let raw = format!("v1.{encoded}.{}", checksum(&encoded));
        let resume = decode(&raw, &audience, &digest).unwrap();
        assert_eq!((resume.position.after.as_deref(), resume.owed.len()), (Some("abc="), 0));
    }

    #[test]
    fn a_sweep_cursor_keeps_its_shard_and_place_in_the_expiry_index() {
        let digest = message_digest(b"disconnect\nexpired");
        let resume =
            Resume { position: Position { shard: 7, after: Some("001767225600#abc=".into()) }, ..Resume::default() };
        let cursor = encode(&Target::Expired, &digest, &resume);
        assert_eq!(decode(&cursor, &Target::Expired, &digest), Ok(resume));
        assert_eq!(decode(&cursor, &conversation("conv-1"), &digest), Err(CursorError::OtherFanOut));
    }

    #[test]
    fn a_cursor_from_another_audience_or_message_is_refused() {
        let digest = message_digest(b"a");
        let cursor = encode(&conversation("conv-1"), &digest, &Resume::default());
        assert_eq!(decode(&cursor, &conversation("conv-2"), &digest), Err(CursorError::OtherFanOut));
        let user = Target::Audience(Audience::User(UserId::parse("conv-1").unwrap()), Segment::WHOLE);
        assert_eq!(decode(&cursor, &user, &digest), Err(CursorError::OtherFanOut), "same id, other index");
        assert_eq!(decode(&cursor, &conversation("conv-1"), &message_digest(b"b")), Err(CursorError::OtherFanOut));
    }

    #[test]
    fn a_segment_cursor_continues_its_own_segment_and_a_broadcast_its_shard() {
        let digest = message_digest(b"a");
        let conv = ConversationId::parse("conv-1").unwrap();
        let segment = |k| Target::Audience(Audience::Conversation(conv.clone()), Segment::new(k, 4).unwrap());
        let cursor = encode(&segment(1), &digest, &Resume::default());
        assert_eq!(decode(&cursor, &segment(1), &digest), Ok(Resume::default()));
        for other in [segment(2), conversation("conv-1")] {
            assert_eq!(decode(&cursor, &other, &digest), Err(CursorError::OtherFanOut), "{other:?}");
        }
        let all = Target::Audience(Audience::All, Segment::WHOLE);
        let resume = Resume { position: Position { shard: 15, after: Some("abc=".into()) }, ..Resume::default() };
        assert_eq!(decode(&encode(&all, &digest, &resume), &all, &digest), Ok(resume));
        let past = Resume { position: Position { shard: 16, after: None }, ..Resume::default() };
        assert_eq!(decode(&encode(&all, &digest, &past), &all, &digest), Err(CursorError::Malformed("no such shard")));
        let one_shard = Resume { position: Position { shard: 1, after: None }, ..Resume::default() };
        assert_eq!(
            decode(&encode(&conversation("conv-1"), &digest, &one_shard), &conversation("conv-1"), &digest),
            Err(CursorError::Malformed("no such shard"))
        );
    }

    #[test]
    fn an_edited_or_malformed_cursor_says_so() {
        let audience = conversation("conv-1");
        let digest = message_digest(b"a");
        let resume = Resume { position: Position { shard: 0, after: Some("x".into()) }, ..Resume::default() };
        let cursor = encode(&audience, &digest, &resume);
        let (head, sum) = cursor.rsplit_once('.').unwrap();
        let flipped = format!("{head}.{}", sum.replace(&sum[..1], if &sum[..1] == "0" { "1" } else { "0" }));
        assert_eq!(decode(&flipped, &audience, &digest), Err(CursorError::Tampered));
        // Re-pointing the cursor at another conversation by editing its body breaks the checksum.
        let other = encode(&conversation("conv-2"), &digest, &Resume::default());
        let forged = format!("v2.{}.{}", other.split('.').nth(1).unwrap(), sum);
        assert_eq!(decode(&forged, &audience, &digest), Err(CursorError::Tampered));
        for raw in ["", "v1", "v1.a", "v3.a.b", "v1.a.b.c", &"x".repeat(70_000)] {
            assert!(matches!(decode(raw, &audience, &digest), Err(CursorError::Malformed(_))), "{raw:?}");
        }
        let not_json = URL_SAFE_NO_PAD.encode("nope");
        let raw = format!("v2.{not_json}.{}", checksum(&not_json));
        assert_eq!(decode(&raw, &audience, &digest), Err(CursorError::Malformed("not a cursor body")));
    }
}
