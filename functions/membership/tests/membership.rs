//! `MembershipFunction` over batches of stream records as the pipe hands them over, on the
//! in-memory store and on a real DynamoDB API (moto's server; see `scripts/test.sh`): a user's
//! first connection in a conversation is `joined`, their last one ending is `left`, anything
//! between is no event; a batch read again changes nothing and repeats its events with the same
//! `eventId`; a record that cannot be read is skipped, not the batch.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use ws_membership::{Config, Membership};
use ws_shared::dynamo::DynamoStore;
use ws_shared::id::{ConnectionId, ConversationId, UserId};
use ws_shared::membership::{Kind, MembershipStore};
use ws_shared::memory::MemoryStore;
use ws_shared::output::Captured;
use ws_shared::record::{ConnectionRecord, ConnectionStatus};
use ws_shared::testing::{FixedClock, StreamChange, connection_record, deadline_in, fresh_table, stream_record};

fn handler<S: MembershipStore>(store: S, metrics: &Captured) -> Membership<S> {
    let env = HashMap::from([("TABLE_CONNECTIONS", "connections".to_owned())]);
    let config = Config::from_env(&|name: &str| env.get(name).cloned()).expect("valid config");
    Membership::new(store, &config, Arc::new(metrics.clone())).with_clock(Arc::new(FixedClock::default()))
}

fn at() -> DateTime<Utc> {
    FixedClock::default().0
}

fn record(id: &str, user: Option<&str>) -> ConnectionRecord {
    ConnectionRecord { region: Some("eu-west-1".into()), ..connection_record(id, "conv-1", user, at()) }
}

/// (event, userId, eventId) of each detail.
fn events(answer: &[Value]) -> Vec<(String, String, String)> {
    answer
        .iter()
        .map(|d| {
            (
                d["event"].as_str().unwrap().into(),
                d["userId"].as_str().unwrap().into(),
                d["eventId"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn ev(event: &str, user: &str, id: &str) -> (String, String, String) {
    (event.into(), user.into(), id.into())
}

async fn a_users_first_and_last_connection_are_joined_and_left<S: MembershipStore>(store: S) {
    let metrics = Captured::default();
    let handler = handler(store, &metrics);
    let (a1, a2, bo) = (record("ana-1", Some("ana")), record("ana-2", Some("ana")), record("bo-1", Some("bo")));
    let first = json!([
        stream_record("e1", &a1, StreamChange::Inserted),
        stream_record("e2", &a2, StreamChange::Inserted),
        stream_record("e3", &bo, StreamChange::Inserted),
    ]);
    let answer = handler.handle(first.clone(), "r1", deadline_in(10_000)).await.expect("the batch is answered");
    assert_eq!(
        events(&answer),
        [ev("joined", "ana", "e1-1"), ev("joined", "bo", "e3-1")],
        "ana's second connection is no event"
    );
    assert_eq!(
        answer[0],
        json!({"event": "joined", "eventId": "e1-1", "conversationId": "conv-1", "userId": "ana", "connectionId": "ana-1",
               "region": "eu-west-1", "at": "2024-02-09T18:23:28.941Z"})
    );

    // The same batch again (the pipe read it twice): the sets are unchanged, the events repeat
    // with their eventId, for a consumer to drop.
    let again = handler.handle(first, "r2", deadline_in(10_000)).await.unwrap();
    assert_eq!(events(&again), events(&answer));

    let ends = json!([
        stream_record("e4", &a1, StreamChange::Ended(ConnectionStatus::Disconnected)),
        stream_record("e5", &a2, StreamChange::Ended(ConnectionStatus::Gone)),
        stream_record("e6", &bo, StreamChange::Expired),
    ]);
    let answer = handler.handle(ends, "r3", deadline_in(10_000)).await.unwrap();
    assert_eq!(
        events(&answer),
        [ev("left", "ana", "e5-2"), ev("left", "bo", "e6-2")],
        "a TTL delete of a live record ends it too"
    );
    let emf = metrics.json().into_iter().rfind(|line| line.get("Left").is_some()).expect("an EMF line with Left");
    assert_eq!((emf["Left"].as_u64(), emf["Skipped"].as_u64()), (Some(2), Some(0)));
}

#[tokio::test]
async fn a_users_first_and_last_connection_are_joined_and_left_in_memory() {
    a_users_first_and_last_connection_are_joined_and_left(MemoryStore::new()).await;
}

#[tokio::test]
async fn a_users_first_and_last_connection_are_joined_and_left_on_dynamodb() {
    let (client, table) = fresh_table("membership").await;
    a_users_first_and_last_connection_are_joined_and_left(DynamoStore::new(&client, &table)).await;
}

#[tokio::test]
async fn tombstones_anonymous_connections_replays_and_other_items_are_no_event() {
    let handler = handler(MemoryStore::new(), &Captured::default());
    let anonymous = record("anon-1", None);
    let ana = record("ana-1", Some("ana"));
    let mut tombstone = stream_record("t1", &ana, StreamChange::Inserted);
    tombstone["dynamodb"]["NewImage"]["status"] = json!({"S": "DISCONNECTED"});
    let mut replay = stream_record("r1", &ana, StreamChange::Ended(ConnectionStatus::Disconnected));
    replay["dynamodb"]["OldImage"]["status"] = json!({"S": "DISCONNECTED"});
    let mut stream_item = stream_record("s1", &ana, StreamChange::Inserted);
    stream_item["dynamodb"]["NewImage"]["sk"] = json!({"S": "E#00000000000000000001"});
    let batch = json!([
        stream_record("a1", &anonymous, StreamChange::Inserted),
        stream_record("a2", &anonymous, StreamChange::Ended(ConnectionStatus::Disconnected)),
        tombstone,
        replay,
        stream_item,
    ]);
    assert_eq!(handler.handle(batch, "r", deadline_in(10_000)).await.unwrap(), Vec::<Value>::new());
}

#[tokio::test]
async fn a_record_that_cannot_be_read_is_skipped_and_counted_and_the_rest_answered() {
    let metrics = Captured::default();
    let handler = handler(MemoryStore::new(), &metrics);
    let mut broken = stream_record("b1", &record("bad-1", Some("bo")), StreamChange::Inserted);
    broken["dynamodb"]["NewImage"].as_object_mut().unwrap().remove("conversationId");
    let batch =
        json!(["not a record", broken, stream_record("e1", &record("ana-1", Some("ana")), StreamChange::Inserted)]);
    let answer = handler.handle(batch, "r", deadline_in(10_000)).await.unwrap();
    assert_eq!(events(&answer), [ev("joined", "ana", "e1-1")]);
    let emf = metrics.json().into_iter().find(|line| line.get("Skipped").is_some()).unwrap();
    assert_eq!(emf["Skipped"].as_u64(), Some(2));
}

#[tokio::test]
async fn what_is_not_a_batch_fails_with_an_error_that_says_what_one_is() {
    let handler = handler(MemoryStore::new(), &Captured::default());
    let err = handler.handle(json!({"eventName": "INSERT"}), "r", deadline_in(10_000)).await.unwrap_err();
    assert_eq!(err.to_string(), "a batch from the pipe is a JSON array of stream records");
}

#[tokio::test]
async fn a_table_that_fails_fails_the_batch_so_the_pipe_reads_it_again() {
    // A table that does not exist: every update fails, before the deadline.
    let (client, _) = fresh_table("membership-missing").await;
    let handler = handler(DynamoStore::new(&client, "no-such-table"), &Captured::default());
    let batch = json!([stream_record("e1", &record("ana-1", Some("ana")), StreamChange::Inserted)]);
    let err = handler.handle(batch, "r", deadline_in(5_000)).await.unwrap_err();
    assert_eq!(err.to_string(), "could not keep the membership of a connection");
}

/// A change of `present` whose answer was lost is sent again by the SDK: the second call is
/// refused by its condition, and must still be that change (else its event is lost).
async fn a_change_sent_again_is_the_same_change<S: MembershipStore>(store: S) {
    let (conversation, user) = (ConversationId::parse("conv-1").unwrap(), UserId::parse("ana").unwrap());
    let id = ConnectionId::parse("ana-1").unwrap();
    let deadline = ws_shared::testing::no_hurry();
    store.change(&conversation, &user, &id, Kind::Opened, at(), &deadline).await.unwrap();
    assert_eq!(store.say(&conversation, &user, true, "e1", &deadline).await.unwrap(), Some(1));
    assert_eq!(store.say(&conversation, &user, true, "e1", &deadline).await.unwrap(), Some(1), "the same change");
    assert_eq!(store.say(&conversation, &user, true, "e2", &deadline).await.unwrap(), None, "said already, by another");
    assert_eq!(store.say(&conversation, &user, false, "e3", &deadline).await.unwrap(), None, "the set disagrees");
}

#[tokio::test]
async fn a_change_sent_again_is_the_same_change_in_memory() {
    a_change_sent_again_is_the_same_change(MemoryStore::new()).await;
}

#[tokio::test]
async fn a_change_sent_again_is_the_same_change_on_dynamodb() {
    let (client, table) = fresh_table("membership").await;
    a_change_sent_again_is_the_same_change(DynamoStore::new(&client, &table)).await;
}
