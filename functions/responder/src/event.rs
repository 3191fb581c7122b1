//! The responder's input (docs/design.md §3), validated into a [`Request`].

use serde::Serialize;
use serde_json::{Map, Value};
use ws_shared::id::{ConnectionId, ConversationId, IdError, UserId};
use ws_shared::segment::{Segment, SegmentError};
use ws_shared::store::Audience;
use ws_shared::stream::MessageKey;

use crate::cursor::CursorError;

/// API Gateway's limit for one WebSocket message.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// Who the message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    One(ConnectionId),
    FanOut(Audience),
}

/// What goes on the wire, in this field order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub message_type: String,
    pub correlation_id: Option<String>,
    pub sequence: Option<u64>,
    pub is_final: bool,
    pub payload: Value,
    /// The producer's id for this message (idempotent publish); on the wire only when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// A validated invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub target: Target,
    pub envelope: Envelope,
    pub ws_endpoint: Option<String>,
    /// `requestContext.domainName` and `.stage`, when the event carries them.
    pub context: Option<(String, String)>,
    /// `cursor`: where a fan-out continues (checked against the fan-out in [`crate::cursor`]).
    pub cursor: Option<String>,
    /// What makes a repeat of this post the same message: `messageId`, else the event's own
    /// `correlationId` + `sequence` (not a defaulted correlation); `None`: neither was given.
    pub key: Option<MessageKey>,
    /// `segment` of `segments`: this invocation's share of a fan-out's audience.
    pub segment: Segment,
}

/// What is wrong with an event; the message goes back to the caller as `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event must be a JSON object")]
    NotAnObject,
    #[error(
        "the event names no target: give connectionId, or conversationId or userId to fan out, or \"all\": true \
         for every connection"
    )]
    NoTarget,
    #[error("give one fan-out target, conversationId or userId, not both")]
    TwoAudiences,
    #[error("all must be true (or absent)")]
    All,
    #[error("\"all\": true reaches every connection: give no connectionId, conversationId or userId with it")]
    AllAndOne,
    #[error(transparent)]
    Segment(#[from] SegmentError),
    #[error(
        "segment and segments split a fan-out to a conversationId, a userId or all; not one connection or the expiry \
         sweep"
    )]
    SegmentOfOne,
    #[error(
        "a fan-out split into segments needs a messageId (or correlationId and sequence): every segment publishes \
         the same message, and the key makes it one append"
    )]
    SegmentsWithoutKey,
    #[error(transparent)]
    Identifier(#[from] IdError),
    #[error("{0} must be a string")]
    NotAString(&'static str),
    #[error("messageType must be a non-empty string")]
    MessageType,
    #[error("sequence must be a non-negative integer")]
    Sequence,
    #[error("isFinal must be true or false")]
    IsFinal,
    #[error(transparent)]
    Cursor(#[from] CursorError),
    #[error("action must be \"disconnect\" or \"presence\" (or absent: the event is a post)")]
    UnknownAction,
    #[error("presence names one conversationId or one userId (nothing else)")]
    PresenceTarget,
    #[error(
        "a disconnect names one target: connectionId, conversationId or userId, \"all\": true for every \
         connection, or \"expired\": true for every connection whose token has expired"
    )]
    CloseTarget,
    #[error("expired must be true (or absent)")]
    Expired,
    #[error("reason must be a string of 1 to {MAX_REASON} characters")]
    Reason,
    #[error(
        "messageId must be a string of 1 to {MAX_MESSAGE_ID} characters (your id for the message: a retry with the same one is published once)"
    )]
    MessageId,
}

/// The longest `messageId` accepted.
pub const MAX_MESSAGE_ID: usize = ws_shared::stream::MAX_MESSAGE_ID;

/// The longest `reason` a disconnect may give (it is stored on the record).
pub const MAX_REASON: usize = 256;

/// What an invocation asks for: a post (no `action`, the original contract), or closing
/// connections (`"action": "disconnect"`).
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    Post(Request),
    Close(CloseRequest),
    /// `{"action":"presence", …}`: who is online in a conversation or of a user.
    Presence(PresenceRequest),
}

/// A validated `{"action":"presence", "conversationId"|"userId", "cursor"?}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceRequest {
    pub audience: Audience,
    pub ws_endpoint: Option<String>,
    pub context: Option<(String, String)>,
    pub cursor: Option<String>,
}

impl PresenceRequest {
    fn parse(event: &Map<String, Value>) -> Result<Self, EventError> {
        let conversation = optional_string(event, "conversationId")?.map(ConversationId::parse).transpose()?;
        let user = optional_string(event, "userId")?.map(UserId::parse).transpose()?;
        let audience = match (conversation, user, event.get("connectionId"), event.get("all")) {
            (Some(id), None, None, None) => Audience::Conversation(id),
            (None, Some(id), None, None) => Audience::User(id),
            _ => return Err(EventError::PresenceTarget),
        };
        Ok(Self {
            audience,
            ws_endpoint: optional_string(event, "wsEndpoint")?,
            context: context_of(event),
            cursor: cursor_of(event)?,
        })
    }
}

/// Whose connections a disconnect closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseTarget {
    One(ConnectionId),
    Audience(Audience),
    /// Every `CONNECTED` connection whose token has expired (GSI3).
    Expired,
}

/// A validated `{"action":"disconnect", …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRequest {
    pub target: CloseTarget,
    /// Why, kept on each record as `closeReason` (`expired` for the sweep, `revoked` by default).
    pub reason: String,
    pub ws_endpoint: Option<String>,
    pub context: Option<(String, String)>,
    pub cursor: Option<String>,
    /// `segment` of `segments` (conversation, user or all).
    pub segment: Segment,
}

impl Invocation {
    pub fn parse(event: Value) -> Result<Self, EventError> {
        let Value::Object(object) = &event else { return Err(EventError::NotAnObject) };
        match object.get("action") {
            None | Some(Value::Null) => Request::parse(event).map(Self::Post),
            Some(Value::String(action)) if action == "disconnect" => CloseRequest::parse(object).map(Self::Close),
            Some(Value::String(action)) if action == "presence" => PresenceRequest::parse(object).map(Self::Presence),
            Some(_) => Err(EventError::UnknownAction),
        }
    }
}

fn context_of(event: &Map<String, Value>) -> Option<(String, String)> {
    event.get("requestContext").and_then(|ctx| {
        let field = |name: &str| ctx.get(name).and_then(Value::as_str).map(str::to_owned);
        Some((field("domainName")?, field("stage")?))
    })
}

fn cursor_of(event: &Map<String, Value>) -> Result<Option<String>, EventError> {
    match event.get("cursor") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(CursorError::NotAString.into()),
    }
}

impl CloseRequest {
    fn parse(event: &Map<String, Value>) -> Result<Self, EventError> {
        let connection = optional_string(event, "connectionId")?.map(ConnectionId::parse).transpose()?;
        let conversation = optional_string(event, "conversationId")?.map(ConversationId::parse).transpose()?;
        let user = optional_string(event, "userId")?.map(UserId::parse).transpose()?;
        let expired = match event.get("expired") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(true)) => true,
            Some(_) => return Err(EventError::Expired),
        };
        let all = all_of(event)?;
        let target = match (connection, conversation, user, expired, all) {
            (Some(id), None, None, false, false) => CloseTarget::One(id),
            (None, Some(id), None, false, false) => CloseTarget::Audience(Audience::Conversation(id)),
            (None, None, Some(id), false, false) => CloseTarget::Audience(Audience::User(id)),
            (None, None, None, false, true) => CloseTarget::Audience(Audience::All),
            (None, None, None, true, false) => CloseTarget::Expired,
            _ => return Err(EventError::CloseTarget),
        };
        let segment = match (segment_of(event)?, &target) {
            (None, _) => Segment::WHOLE,
            (Some(segment), CloseTarget::Audience(_)) => segment,
            // One segment is the whole (what a state machine's Map sends every event).
            (Some(segment), _) if segment.is_whole() => segment,
            (Some(_), _) => return Err(EventError::SegmentOfOne),
        };
        let reason = match (optional_string(event, "reason")?, &target) {
            (Some(reason), _) if reason.trim().is_empty() || reason.chars().count() > MAX_REASON => {
                return Err(EventError::Reason);
            }
            (Some(reason), _) => reason,
            (None, CloseTarget::Expired) => "expired".to_owned(),
            (None, _) => "revoked".to_owned(),
        };
        let cursor = cursor_of(event)?;
        if cursor.is_some() && matches!(target, CloseTarget::One(_)) {
            return Err(CursorError::NotAFanOut.into());
        }
        Ok(Self {
            target,
            reason,
            ws_endpoint: optional_string(event, "wsEndpoint")?,
            context: context_of(event),
            cursor,
            segment,
        })
    }
}

/// `"all": true` (absent: false).
fn all_of(event: &Map<String, Value>) -> Result<bool, EventError> {
    match event.get("all") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(true)) => Ok(true),
        Some(_) => Err(EventError::All),
    }
}

/// `segment` and `segments` (both absent: the whole audience).
fn segment_of(event: &Map<String, Value>) -> Result<Option<Segment>, EventError> {
    let number = |field: &str| match event.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or(()),
        Some(_) => Err(()),
    };
    match (number("segment"), number("segments")) {
        (Ok(None), Ok(None)) => Ok(None),
        (Ok(Some(k)), Ok(Some(n))) => Ok(Some(Segment::new(k, n)?)),
        (_, Err(())) => Err(SegmentError::Count.into()),
        (Err(()), Ok(Some(n))) => Err(SegmentError::Index(u16::try_from(n.clamp(1, 100) - 1).unwrap_or(0)).into()),
        _ => Err(SegmentError::Half.into()),
    }
}

fn optional_string(event: &Map<String, Value>, field: &'static str) -> Result<Option<String>, EventError> {
    match event.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(EventError::NotAString(field)),
    }
}

impl Request {
    pub fn parse(event: Value) -> Result<Self, EventError> {
        let Value::Object(mut event) = event else { return Err(EventError::NotAnObject) };

        let connection = optional_string(&event, "connectionId")?.map(ConnectionId::parse).transpose()?;
        let conversation = optional_string(&event, "conversationId")?.map(ConversationId::parse).transpose()?;
        let user = optional_string(&event, "userId")?.map(UserId::parse).transpose()?;
        let all = all_of(&event)?;
        let (target, default_correlation) = match (connection, conversation, user, all) {
            (Some(_), _, _, true) | (None, Some(_), _, true) | (None, None, Some(_), true) => {
                return Err(EventError::AllAndOne);
            }
            (None, None, None, true) => (Target::FanOut(Audience::All), None),
            (Some(id), conversation, _, false) => (Target::One(id), conversation),
            (None, Some(_), Some(_), false) => return Err(EventError::TwoAudiences),
            (None, Some(id), None, false) => (Target::FanOut(Audience::Conversation(id.clone())), Some(id)),
            (None, None, Some(id), false) => (Target::FanOut(Audience::User(id)), None),
            (None, None, None, false) => return Err(EventError::NoTarget),
        };
        let segment = match (segment_of(&event)?, &target) {
            (None, _) => Segment::WHOLE,
            (Some(segment), Target::One(_)) if segment.is_whole() => segment,
            (Some(_), Target::One(_)) => return Err(EventError::SegmentOfOne),
            (Some(segment), Target::FanOut(_)) => segment,
        };

        let message_type = match event.get("messageType") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => return Err(EventError::MessageType),
        };
        let sequence = match event.get("sequence") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n.as_u64().ok_or(EventError::Sequence)?),
            Some(_) => return Err(EventError::Sequence),
        };
        let is_final = match event.get("isFinal") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(EventError::IsFinal),
        };
        let given_correlation = optional_string(&event, "correlationId")?;
        let correlation_id = given_correlation.clone().or_else(|| default_correlation.map(|c| c.as_str().to_owned()));
        let ws_endpoint = optional_string(&event, "wsEndpoint")?;
        let context = context_of(&event);
        let cursor = cursor_of(&event)?;
        if cursor.is_some() && matches!(target, Target::One(_)) {
            return Err(CursorError::NotAFanOut.into());
        }
        let message_id = match optional_string(&event, "messageId") {
            Ok(Some(id)) if id.is_empty() || id.chars().count() > MAX_MESSAGE_ID => return Err(EventError::MessageId),
            Ok(id) => id,
            Err(_) => return Err(EventError::MessageId),
        };
        let key = match (&message_id, &given_correlation, sequence) {
            (Some(id), _, _) => Some(MessageKey::of_message_id(id)),
            (None, Some(correlation), Some(sequence)) => Some(MessageKey::of_sequence(correlation, sequence)),
            _ => None,
        };
        let payload = event.remove("payload").unwrap_or(Value::Null);

        Ok(Self {
            target,
            envelope: Envelope { message_type, correlation_id, sequence, is_final, payload, message_id },
            ws_endpoint,
            context,
            cursor,
            key,
            segment,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> Value {
        serde_json::from_str(include_str!("../../../events/responder.json")).unwrap()
    }

    fn with(mut event: Value, field: &str, value: Value) -> Value {
        event[field] = value;
        event
    }

    fn without(mut event: Value, field: &str) -> Value {
        event.as_object_mut().unwrap().remove(field);
        event
    }

    #[test]
    fn the_sample_event_parses_into_a_single_target_and_its_envelope() {
        let request = Request::parse(sample()).unwrap();
        assert_eq!(request.target, Target::One(ConnectionId::parse("abc123=").unwrap()));
        assert_eq!(request.ws_endpoint.as_deref(), Some("https://abc.execute-api.us-east-1.amazonaws.com/prod"));
        assert_eq!(
            serde_json::to_string(&request.envelope).unwrap(),
            r#"{"messageType":"system","correlationId":"conv-123","sequence":21,"isFinal":false,"payload":{"text":"Processando…"}}"#
        );
    }

    #[test]
    fn no_connection_id_and_a_conversation_or_user_is_a_fan_out() {
        let by_conversation = with(without(sample(), "connectionId"), "conversationId", json!("conv-9"));
        let request = Request::parse(without(by_conversation, "correlationId")).unwrap();
        assert_eq!(request.target, Target::FanOut(Audience::Conversation(ConversationId::parse("conv-9").unwrap())));
        assert_eq!(request.envelope.correlation_id.as_deref(), Some("conv-9"), "defaults to the conversation");

        let by_user = with(without(sample(), "connectionId"), "userId", json!("u-42"));
        assert_eq!(
            Request::parse(by_user).unwrap().target,
            Target::FanOut(Audience::User(UserId::parse("u-42").unwrap()))
        );
    }

    #[test]
    fn every_invalid_field_says_what_was_wrong() {
        let cases = [
            (json!([1]), "the event must be a JSON object"),
            (
                without(sample(), "connectionId"),
                "the event names no target: give connectionId, or conversationId or userId to fan out, or \"all\": true \
                 for every connection",
            ),
            (
                with(with(without(sample(), "connectionId"), "conversationId", json!("c")), "userId", json!("u")),
                "give one fan-out target, conversationId or userId, not both",
            ),
            (
                with(sample(), "connectionId", json!("a/b")),
                "connectionId contains a character outside [A-Za-z0-9._:@=+-] at position 1",
            ),
            (with(sample(), "connectionId", json!(7)), "connectionId must be a string"),
            (with(sample(), "messageType", json!("")), "messageType must be a non-empty string"),
            (without(sample(), "messageType"), "messageType must be a non-empty string"),
            (with(sample(), "sequence", json!(-1)), "sequence must be a non-negative integer"),
            (with(sample(), "sequence", json!(1.5)), "sequence must be a non-negative integer"),
            (with(sample(), "sequence", json!("21")), "sequence must be a non-negative integer"),
            (with(sample(), "isFinal", json!("yes")), "isFinal must be true or false"),
            (with(sample(), "wsEndpoint", json!(["x"])), "wsEndpoint must be a string"),
            (
                with(sample(), "cursor", json!("v1.a.b")),
                "a cursor continues a fan-out; this event names one connectionId",
            ),
            (
                with(with(without(sample(), "connectionId"), "conversationId", json!("c")), "cursor", json!(3)),
                "cursor must be a string that a previous fan-out returned",
            ),
        ];
        for (event, message) in cases {
            assert_eq!(Request::parse(event.clone()).unwrap_err().to_string(), message, "{event}");
        }
    }

    #[test]
    fn optional_fields_default_and_any_payload_is_accepted() {
        let minimal = json!({"connectionId": "abc=", "messageType": "progress"});
        let request = Request::parse(minimal).unwrap();
        assert_eq!(
            serde_json::to_value(&request.envelope).unwrap(),
            json!({"messageType": "progress", "correlationId": null, "sequence": null, "isFinal": false, "payload": null})
        );
        for payload in [json!("text"), json!(3), json!([1, {"a": null}]), json!(true)] {
            let event = json!({"connectionId": "abc=", "messageType": "m", "payload": payload});
            assert_eq!(Request::parse(event).unwrap().envelope.payload, payload);
        }
    }

    #[test]
    fn a_disconnect_names_one_target_and_a_reason() {
        let parse = |event: Value| match Invocation::parse(event) {
            Ok(Invocation::Close(close)) => Ok(close),
            Ok(other) => panic!("not a close: {other:?}"),
            Err(err) => Err(err.to_string()),
        };
        let user = parse(json!({"action": "disconnect", "userId": "u-1", "reason": "banned"})).unwrap();
        assert_eq!(
            (user.target, user.reason.as_str()),
            (CloseTarget::Audience(Audience::User(UserId::parse("u-1").unwrap())), "banned")
        );
        let sweep = parse(json!({"action": "disconnect", "expired": true})).unwrap();
        assert_eq!((sweep.target, sweep.reason.as_str()), (CloseTarget::Expired, "expired"));
        let one = parse(json!({"action": "disconnect", "connectionId": "abc="})).unwrap();
        assert_eq!(one.reason, "revoked");
        for (event, message) in [
            (json!({"action": "disconnect"}), "a disconnect names one target"),
            (json!({"action": "disconnect", "userId": "u", "conversationId": "c"}), "a disconnect names one target"),
            (json!({"action": "disconnect", "userId": "u", "expired": true}), "a disconnect names one target"),
            (json!({"action": "disconnect", "expired": "yes"}), "expired must be true"),
            (json!({"action": "disconnect", "userId": "u", "reason": ""}), "reason must be a string of 1 to 256"),
            (
                json!({"action": "disconnect", "userId": "u", "reason": "x".repeat(257)}),
                "reason must be a string of 1 to 256",
            ),
            (json!({"action": "close", "userId": "u"}), "action must be \"disconnect\" or \"presence\""),
            (json!({"action": 1, "userId": "u"}), "action must be \"disconnect\" or \"presence\""),
        ] {
            let err = parse(event.clone()).unwrap_err();
            assert!(err.starts_with(message), "{event}: {err}");
        }
    }

    #[test]
    fn all_and_segments_say_what_was_wrong() {
        let post = json!({"messageType": "system", "payload": {}});
        let all = with(post.clone(), "all", json!(true));
        let request = Request::parse(all.clone()).unwrap();
        assert_eq!((request.target, request.segment), (Target::FanOut(Audience::All), Segment::WHOLE));
        let split = with(with(all.clone(), "segment", json!(2)), "segments", json!(4));
        assert_eq!(Request::parse(split).unwrap().segment, Segment::new(2, 4).unwrap());
        let conversation = with(post.clone(), "conversationId", json!("c"));
        for (event, message) in [
            (with(post.clone(), "all", json!("yes")), "all must be true (or absent)"),
            (
                with(conversation.clone(), "all", json!(true)),
                "\"all\": true reaches every connection: give no connectionId, conversationId or userId with it",
            ),
            (with(conversation.clone(), "segment", json!(1)), "give segment and segments together"),
            (
                with(with(conversation.clone(), "segments", json!(3)), "segment", json!(3)),
                "segment must be a whole number from 0 to segments - 1 (here 0 to 2)",
            ),
            (with(conversation.clone(), "segments", json!(2)), "give segment and segments together"),
            (
                with(with(conversation.clone(), "segments", json!(2)), "segment", json!(-1)),
                "segment must be a whole number from 0 to segments - 1 (here 0 to 1)",
            ),
            (with(with(conversation, "segments", json!(0)), "segment", json!(0)), "segments must be a whole number"),
            (
                with(with(with(post, "connectionId", json!("a=")), "segments", json!(2)), "segment", json!(0)),
                "segment and segments split a fan-out",
            ),
        ] {
            let err = Request::parse(event.clone()).unwrap_err().to_string();
            assert!(err.starts_with(message), "{event}: {err}");
        }
        let close = |event: Value| match Invocation::parse(event) {
            Ok(Invocation::Close(close)) => Ok(close),
            Ok(other) => panic!("not a close: {other:?}"),
            Err(err) => Err(err.to_string()),
        };
        let everyone =
            close(json!({"action": "disconnect", "all": true, "reason": "deploy", "segment": 0, "segments": 2}))
                .unwrap();
        assert_eq!(
            (everyone.target, everyone.segment),
            (CloseTarget::Audience(Audience::All), Segment::new(0, 2).unwrap())
        );
        let one = json!({"connectionId": "a=", "messageType": "m", "segment": 0, "segments": 1});
        assert_eq!(Request::parse(one).unwrap().segment, Segment::WHOLE, "one segment is the whole");
        assert!(
            close(json!({"action": "disconnect", "expired": true, "segment": 0, "segments": 2}))
                .unwrap_err()
                .starts_with("segment and segments split a fan-out")
        );
    }

    #[test]
    fn presence_names_one_conversation_or_one_user() {
        let parse = |event: Value| match Invocation::parse(event) {
            Ok(Invocation::Presence(presence)) => Ok(presence),
            Ok(other) => panic!("not presence: {other:?}"),
            Err(err) => Err(err.to_string()),
        };
        let conversation = parse(json!({"action": "presence", "conversationId": "c-1"})).unwrap();
        assert_eq!(conversation.audience, Audience::Conversation(ConversationId::parse("c-1").unwrap()));
        assert_eq!(
            parse(json!({"action": "presence", "userId": "u"})).unwrap().audience,
            Audience::User(UserId::parse("u").unwrap())
        );
        for event in [
            json!({"action": "presence"}),
            json!({"action": "presence", "conversationId": "c", "userId": "u"}),
            json!({"action": "presence", "connectionId": "a="}),
            json!({"action": "presence", "all": true}),
        ] {
            assert_eq!(
                parse(event.clone()).unwrap_err(),
                "presence names one conversationId or one userId (nothing else)",
                "{event}"
            );
        }
    }

    #[test]
    fn an_event_without_action_is_a_post_as_the_seed_describes() {
        assert!(matches!(Invocation::parse(sample()), Ok(Invocation::Post(_))));
    }

    #[test]
    fn the_request_context_is_read_for_the_endpoint() {
        let event = with(
            without(sample(), "wsEndpoint"),
            "requestContext",
            json!({"domainName": "abc.execute-api.us-east-1.amazonaws.com", "stage": "prod", "connectedAt": 1}),
        );
        let request = Request::parse(event).unwrap();
        assert_eq!(request.context, Some(("abc.execute-api.us-east-1.amazonaws.com".into(), "prod".into())));
    }
}
