//! One store contract, two adapters: every rule the handlers rely on runs against the in-memory
//! store (no server) and against the DynamoDB adapter on moto (`DYNAMODB_ENDPOINT`, started by
//! `scripts/test.sh`). A rule that holds for one and not the other is a bug in one of them.

use chrono::Duration;
use ws_shared::dynamo::DynamoStore;
use ws_shared::id::{ConnectionId, ConversationId, UserId};
use ws_shared::memory::MemoryStore;
use ws_shared::record::{ConnectionRecord, ConnectionStatus, Disconnection, Route, Tombstone, keys};
use ws_shared::segment::Segment;
use ws_shared::store::{Audience, ConnectionStore, DisconnectOutcome, Existing, GoneOutcome, Part, PutOutcome};
use ws_shared::stream::{Append, Appended, Claim, ClaimOutcome, EntryRange, MessageKey, StreamName, StreamStore};
use ws_shared::testing::{FixedClock, ReadBack, fresh_table, no_hurry};

fn id(raw: &str) -> ConnectionId {
    ConnectionId::parse(raw).unwrap()
}

fn record(connection: &str, conversation: &str, user: Option<&str>) -> ConnectionRecord {
    let now = FixedClock::default().0;
    ConnectionRecord {
        connection_id: id(connection),
        conversation_id: ConversationId::parse(conversation).unwrap(),
        user_id: user.map(|u| UserId::parse(u).unwrap()),
        connected_at: now,
        updated_at: now,
        ip: Some("203.0.113.9".into()),
        user_agent: Some("tests/1".into()),
        domain_name: None,
        stage: Some("prod".into()),
        expires_at: now + Duration::hours(3),
        token_expires_at: None,
        api_id: None,
        region: None,
    }
}

fn disconnection(connection: &str, code: i64, seconds_later: i64) -> Disconnection {
    let at = FixedClock::default().0 + Duration::seconds(seconds_later);
    Disconnection {
        connection_id: id(connection),
        at,
        close_code: Some(code),
        close_reason: Some(format!("reason {code}")),
        expires_at: at + Duration::hours(3),
    }
}

fn tombstone(connection: &str) -> Tombstone {
    let at = FixedClock::default().0;
    Tombstone { connection_id: id(connection), at, expires_at: at + Duration::hours(3) }
}

/// Every `CONNECTED` id of `audience`, reading pages of `limit`.
async fn audience_of(store: &impl ConnectionStore, audience: &Audience, limit: u32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = None;
    for _ in 0..100 {
        let page = store.connected_page(audience, Part::WHOLE, after.as_ref(), limit, &no_hurry()).await.unwrap();
        assert!(page.ids.len() <= limit as usize, "a page holds at most its limit");
        ids.extend(page.ids.iter().map(|i| i.as_str().to_owned()));
        match page.resume_after {
            Some(next) => after = Some(next),
            None => return ids,
        }
    }
    panic!("the pages never end");
}

/// Every expired live connection across GSI3's shards, reading pages of `limit`.
async fn expired_of(store: &impl ConnectionStore, now: i64, limit: u32) -> Vec<String> {
    let mut ids = Vec::new();
    for shard in 0..keys::EXPIRY_SHARDS {
        let mut after: Option<String> = None;
        loop {
            let page = store.expired_page(shard, now, after.as_deref(), limit, &no_hurry()).await.unwrap();
            assert!(page.entries.len() <= limit as usize, "a page holds at most its limit");
            for (id, sort) in &page.entries {
                assert_eq!(keys::expiry_shard(id), shard, "{id} listed in another shard");
                assert_eq!(keys::connection_of_expiry(sort).as_ref(), Some(id));
            }
            ids.extend(page.entries.iter().map(|(id, _)| id.as_str().to_owned()));
            match page.resume_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    ids.sort();
    ids
}

fn expiring(connection: &str, exp: i64) -> ConnectionRecord {
    ConnectionRecord { token_expires_at: Some(exp), ..record(connection, "conv-x", Some("u-x")) }
}

fn conversation(raw: &str) -> Audience {
    Audience::Conversation(ConversationId::parse(raw).unwrap())
}

fn stream_of(conversation_id: &str) -> StreamName {
    StreamName::of(&conversation(conversation_id), "us-east-1").unwrap()
}

/// An append of `message` under `key` to `stream`, `minutes` after the fixed clock's time, kept 60
/// minutes; a stream that starts gets epoch `new_epoch`.
async fn append_at(
    store: &impl StreamStore,
    stream: &StreamName,
    key: &str,
    message: &str,
    minutes: i64,
    new_epoch: &str,
) -> Appended {
    let key = MessageKey::of_message_id(key);
    let append = Append {
        stream,
        key: &key,
        message,
        at: FixedClock::default().0 + Duration::minutes(minutes),
        retention: Duration::minutes(60),
        new_epoch,
    };
    store.append(append, &no_hurry()).await.unwrap()
}

async fn entries_at(
    store: &impl StreamStore,
    stream: &StreamName,
    epoch: &str,
    after: u64,
    minutes: i64,
) -> Vec<(u64, String)> {
    let range = EntryRange { epoch, after, upto: 1_000, limit: 100 };
    let now = FixedClock::default().0 + Duration::minutes(minutes);
    store.entries(stream, &range, now, &no_hurry()).await.unwrap().into_iter().map(|e| (e.offset, e.message)).collect()
}

mod rules {
    use super::*;

    pub async fn appends_get_gap_free_offsets_in_one_epoch_read_back_in_order(store: impl StreamStore) {
        let stream = stream_of("conv-s1");
        for (i, key) in ["m1", "m2", "m3", "m4"].iter().enumerate() {
            let appended = append_at(&store, &stream, key, &format!("{{\"n\":{i}}}"), 0, "epoch-a").await;
            assert_eq!(
                (appended.offset, appended.epoch.as_str(), appended.duplicate),
                (i as u64 + 1, "epoch-a", false)
            );
        }
        let head = store.head(&stream, FixedClock::default().0, &no_hurry()).await.unwrap().unwrap();
        assert_eq!((head.epoch.as_str(), head.last), ("epoch-a", 4));
        let read = entries_at(&store, &stream, "epoch-a", 1, 0).await;
        assert_eq!(
            read,
            vec![(2, r#"{"n":1}"#.to_owned()), (3, r#"{"n":2}"#.to_owned()), (4, r#"{"n":3}"#.to_owned())]
        );
        let other = stream_of("conv-s2");
        assert_eq!(append_at(&store, &other, "m1", "{}", 0, "epoch-b").await.offset, 1, "streams count apart");
    }

    pub async fn a_repeated_key_appends_nothing_and_gets_the_first_publish_back(store: impl StreamStore) {
        let stream = stream_of("conv-d");
        let first = append_at(&store, &stream, "m1", r#"{"v":1}"#, 0, "e1").await;
        append_at(&store, &stream, "m2", r#"{"v":2}"#, 0, "e1").await;
        let again = append_at(&store, &stream, "m1", r#"{"v":"changed"}"#, 1, "e-other").await;
        assert_eq!((again.offset, again.epoch.as_str(), again.duplicate), (first.offset, "e1", true));
        assert_eq!(again.message, r#"{"v":1}"#, "the first publish wins");
        let head = store.head(&stream, FixedClock::default().0, &no_hurry()).await.unwrap().unwrap();
        assert_eq!(head.last, 2, "nothing appended");
    }

    pub async fn an_expired_stream_starts_again_at_one_with_a_new_epoch(store: impl StreamStore) {
        let stream = stream_of("conv-x");
        append_at(&store, &stream, "m1", r#"{"old":1}"#, 0, "old").await;
        append_at(&store, &stream, "m2", r#"{"old":2}"#, 0, "old").await;
        // 61 minutes later every entry, key and the head have expired (kept 60), whether or not
        // DynamoDB's TTL has deleted them yet.
        assert_eq!(
            store.head(&stream, FixedClock::default().0 + Duration::minutes(61), &no_hurry()).await.unwrap(),
            None
        );
        let restarted = append_at(&store, &stream, "m1", r#"{"new":1}"#, 61, "new").await;
        assert_eq!((restarted.offset, restarted.epoch.as_str(), restarted.duplicate), (1, "new", false));
        assert_eq!(entries_at(&store, &stream, "new", 0, 61).await, vec![(1, r#"{"new":1}"#.to_owned())]);
        assert_eq!(entries_at(&store, &stream, "old", 0, 61).await, vec![], "the old epoch's entries are gone");
    }

    pub async fn a_read_leaves_out_expired_entries(store: impl StreamStore) {
        let stream = stream_of("conv-e");
        append_at(&store, &stream, "m1", r#"{"n":1}"#, 0, "e").await;
        append_at(&store, &stream, "m2", r#"{"n":2}"#, 30, "e").await;
        // At 70 minutes the first (kept until 60) has expired and the second (until 90) has not.
        assert_eq!(entries_at(&store, &stream, "e", 0, 70).await, vec![(2, r#"{"n":2}"#.to_owned())]);
    }

    pub async fn a_claim_moves_only_from_the_claim_that_was_seen(store: impl StreamStore) {
        let stream = stream_of("conv-c");
        append_at(&store, &stream, "m1", "{}", 0, "e").await;
        let key = MessageKey::of_message_id("m1");
        let mine = Claim { upto: Some("b=".into()), by: Some("0000000000000001".into()) };
        let theirs = Claim { upto: Some("d=".into()), by: Some("0000000000000002".into()) };
        assert_eq!(
            store.claim(&stream, &key, Segment::WHOLE, &Claim::default(), &mine, &no_hurry()).await.unwrap(),
            ClaimOutcome::Claimed
        );
        assert_eq!(
            store.claim(&stream, &key, Segment::WHOLE, &Claim::default(), &theirs, &no_hurry()).await.unwrap(),
            ClaimOutcome::Moved(mine.clone()),
            "a stale claim is refused and told the current one"
        );
        assert_eq!(
            store.claim(&stream, &key, Segment::WHOLE, &mine, &theirs, &no_hurry()).await.unwrap(),
            ClaimOutcome::Claimed
        );
        assert_eq!(append_at(&store, &stream, "m1", "{}", 1, "e").await.claim, theirs, "a duplicate carries the claim");
    }

    pub async fn a_live_connection_is_read_until_it_closes(store: impl ConnectionStore) {
        store.put_connection(&record("live=", "conv-l", Some("u-l")), &no_hurry()).await.unwrap();
        let live = store.live_connection(&id("live="), &no_hurry()).await.unwrap().unwrap();
        assert_eq!(
            (live.conversation_id.as_str(), live.user_id.map(|u| u.as_str().to_owned())),
            ("conv-l", Some("u-l".into()))
        );
        store.mark_disconnected(&disconnection("live=", 1000, 1), &no_hurry()).await.unwrap();
        assert_eq!(store.live_connection(&id("live="), &no_hurry()).await.unwrap(), None);
        assert_eq!(store.live_connection(&id("never="), &no_hurry()).await.unwrap(), None);
    }

    pub async fn a_put_creates_once_and_a_replay_finds_the_connection(store: impl ConnectionStore + ReadBack) {
        let first = record("a=", "conv-1", Some("u-1"));
        assert_eq!(store.put_connection(&first, &no_hurry()).await.unwrap(), PutOutcome::Created);
        let mut replay = record("a=", "conv-other", None);
        replay.connected_at += Duration::seconds(5);
        assert_eq!(
            store.put_connection(&replay, &no_hurry()).await.unwrap(),
            PutOutcome::AlreadyExists(Existing::Connection)
        );
        let stored = store.connection(&id("a="), &no_hurry()).await.unwrap().unwrap();
        assert_eq!(stored.status, ConnectionStatus::Connected);
        assert_eq!(stored.conversation_id.as_deref(), Some("conv-1"), "the replay changed nothing");
        assert_eq!(stored.user_id.as_deref(), Some("u-1"));
        assert_eq!(stored.connected_at.as_deref(), Some("2024-02-09T18:23:28.941Z"));
        assert!(stored.in_conversation_index && stored.in_user_index);
        assert_eq!(stored.ttl, Some(FixedClock::default().0.timestamp() + 3 * 3600));
    }

    pub async fn the_first_disconnect_wins(store: impl ConnectionStore + ReadBack) {
        store.put_connection(&record("b=", "conv-1", None), &no_hurry()).await.unwrap();
        let first = store.mark_disconnected(&disconnection("b=", 1001, 1), &no_hurry()).await.unwrap();
        let again = store.mark_disconnected(&disconnection("b=", 1006, 2), &no_hurry()).await.unwrap();
        assert_eq!((first, again), (DisconnectOutcome::Disconnected, DisconnectOutcome::Disconnected));
        let stored = store.connection(&id("b="), &no_hurry()).await.unwrap().unwrap();
        assert_eq!(stored.status, ConnectionStatus::Disconnected);
        assert_eq!((stored.close_code, stored.close_reason.as_deref()), (Some(1001), Some("reason 1001")));
        assert_eq!(stored.disconnected_at.as_deref(), Some("2024-02-09T18:23:29.941Z"));
    }

    pub async fn a_disconnect_that_overtakes_its_connect_keeps_the_late_connect_out(
        store: impl ConnectionStore + ReadBack,
    ) {
        let outcome = store.mark_disconnected(&disconnection("c=", 1006, 0), &no_hurry()).await.unwrap();
        assert_eq!(outcome, DisconnectOutcome::NotFound);
        let late = store.put_connection(&record("c=", "conv-1", Some("u-1")), &no_hurry()).await.unwrap();
        assert_eq!(late, PutOutcome::AlreadyExists(Existing::Tombstone));
        let stored = store.connection(&id("c="), &no_hurry()).await.unwrap().unwrap();
        assert_eq!(stored.status, ConnectionStatus::Disconnected);
        assert!(stored.connected_at.is_none() && !stored.in_conversation_index && !stored.in_user_index);
        assert!(stored.ttl.is_some(), "a tombstone expires too");
        let replayed = store.mark_disconnected(&disconnection("c=", 1000, 1), &no_hurry()).await.unwrap();
        assert_eq!(replayed, DisconnectOutcome::NotFound, "a tombstone never had a connect");
    }

    pub async fn a_tombstone_holds_a_free_place_and_names_what_holds_a_taken_one(
        store: impl ConnectionStore + ReadBack,
    ) {
        assert_eq!(store.put_tombstone(&tombstone("d="), &no_hurry()).await.unwrap(), PutOutcome::Created);
        let late = store.put_connection(&record("d=", "conv-1", None), &no_hurry()).await.unwrap();
        assert_eq!(late, PutOutcome::AlreadyExists(Existing::Tombstone), "a late put cannot land after it");
        assert_eq!(
            store.put_tombstone(&tombstone("d="), &no_hurry()).await.unwrap(),
            PutOutcome::AlreadyExists(Existing::Tombstone)
        );

        store.put_connection(&record("e=", "conv-1", None), &no_hurry()).await.unwrap();
        assert_eq!(
            store.put_tombstone(&tombstone("e="), &no_hurry()).await.unwrap(),
            PutOutcome::AlreadyExists(Existing::Connection)
        );
        let stored = store.connection(&id("e="), &no_hurry()).await.unwrap().unwrap();
        assert_eq!(stored.status, ConnectionStatus::Connected, "the tombstone never overwrites");
    }

    pub async fn gone_is_marked_only_while_connected(store: impl ConnectionStore + ReadBack) {
        let at = FixedClock::default().0;
        store.put_connection(&record("f=", "conv-1", None), &no_hurry()).await.unwrap();
        assert_eq!(store.mark_gone(&id("f="), None, at, &no_hurry()).await.unwrap(), GoneOutcome::Marked);
        assert_eq!(store.mark_gone(&id("f="), None, at, &no_hurry()).await.unwrap(), GoneOutcome::NotConnected);
        assert_eq!(store.mark_gone(&id("missing="), None, at, &no_hurry()).await.unwrap(), GoneOutcome::NotConnected);
        assert!(store.connection(&id("missing="), &no_hurry()).await.unwrap().is_none(), "gone creates nothing");

        store.put_connection(&record("g=", "conv-1", None), &no_hurry()).await.unwrap();
        store.mark_disconnected(&disconnection("g=", 1000, 1), &no_hurry()).await.unwrap();
        assert_eq!(store.mark_gone(&id("g="), None, at, &no_hurry()).await.unwrap(), GoneOutcome::NotConnected);
        let stored = store.connection(&id("g="), &no_hurry()).await.unwrap().unwrap();
        assert_eq!(stored.status, ConnectionStatus::Disconnected, "a disconnect is never overwritten by gone");
    }

    pub async fn an_audience_is_its_connected_records_in_index_order_across_pages(
        store: impl ConnectionStore + ReadBack,
    ) {
        for n in [7, 3, 9, 1, 5, 2, 8, 4, 6, 0] {
            store.put_connection(&record(&format!("m{n}="), "conv-m", Some("u-m")), &no_hurry()).await.unwrap();
        }
        store.put_connection(&record("other=", "conv-other", Some("u-m")), &no_hurry()).await.unwrap();
        store.put_connection(&record("anon=", "conv-m", None), &no_hurry()).await.unwrap();
        store.mark_disconnected(&disconnection("m3=", 1000, 1), &no_hurry()).await.unwrap();
        store.mark_gone(&id("m5="), None, FixedClock::default().0, &no_hurry()).await.unwrap();

        let expected: Vec<String> =
            ["anon=", "m0=", "m1=", "m2=", "m4=", "m6=", "m7=", "m8=", "m9="].map(str::to_owned).to_vec();
        for limit in [1, 3, 4, 100] {
            assert_eq!(audience_of(&store, &conversation("conv-m"), limit).await, expected, "pages of {limit}");
        }
        let user = Audience::User(UserId::parse("u-m").unwrap());
        let of_user = audience_of(&store, &user, 2).await;
        assert!(of_user.contains(&"other=".to_owned()) && !of_user.contains(&"anon=".to_owned()), "{of_user:?}");
        assert_eq!(of_user.len(), 9, "the user's 8 live connections in conv-m and 1 elsewhere: {of_user:?}");

        // Resuming after any entry continues with exactly the entries after it.
        let rest = store
            .connected_page(&conversation("conv-m"), Part::WHOLE, Some(&id("m4=")), 100, &no_hurry())
            .await
            .unwrap();
        let rest: Vec<&str> = rest.ids.iter().map(ConnectionId::as_str).collect();
        assert_eq!(rest, ["m6=", "m7=", "m8=", "m9="]);
        assert!(audience_of(&store, &conversation("conv-nobody"), 10).await.is_empty());
    }

    /// Segment `k` of `n` of an audience, read page by page (every shard of a broadcast's).
    async fn segment_of(
        store: &impl ConnectionStore,
        audience: &Audience,
        segment: Segment,
        limit: u32,
    ) -> Vec<String> {
        let mut ids = Vec::new();
        for shard in 0..audience.shards() {
            let mut after = None;
            loop {
                let part = Part { shard, segment };
                let page = store.connected_page(audience, part, after.as_ref(), limit, &no_hurry()).await.unwrap();
                assert!(page.ids.len() <= limit as usize, "a page holds at most its limit");
                for listed in &page.ids {
                    assert!(segment.contains(listed), "{listed} listed in segment {}", segment.label());
                    if *audience == Audience::All {
                        assert_eq!(keys::live_shard(listed), shard, "{listed} listed in another shard");
                    }
                }
                ids.extend(page.ids.iter().map(|i| i.as_str().to_owned()));
                match page.resume_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        ids
    }

    pub async fn segments_split_an_audience_and_every_live_connection_into_disjoint_covering_shares(
        store: impl ConnectionStore + ReadBack,
    ) {
        // GIVEN ids that start with every kind of character an id may, in two conversations, some closed
        let firsts = "+-.0:=@AMZ_amz9Qq";
        let mut live_in_s = std::collections::BTreeSet::new();
        let mut live = std::collections::BTreeSet::new();
        for (i, first) in firsts.chars().enumerate() {
            for j in 0..3 {
                let raw = format!("{first}{}{j}=", char::from(b'A' + u8::try_from(i * 3 + j).unwrap() % 26));
                let conversation = if j == 2 { "conv-t" } else { "conv-s" };
                store.put_connection(&record(&raw, conversation, None), &no_hurry()).await.unwrap();
                match (i + j) % 5 {
                    0 => {
                        store.mark_disconnected(&disconnection(&raw, 1000, 1), &no_hurry()).await.unwrap();
                    }
                    1 => {
                        store.mark_gone(&id(&raw), None, FixedClock::default().0, &no_hurry()).await.unwrap();
                    }
                    _ => {
                        live.insert(raw.clone());
                        if conversation == "conv-s" {
                            live_in_s.insert(raw);
                        }
                    }
                }
            }
        }
        let closed = store.connection(&id("+A0="), &no_hurry()).await.unwrap().unwrap();
        assert!(!closed.in_live_index, "a closed connection leaves the live index");
        // THEN for any n, the segments are disjoint and together are exactly the live connections
        for (audience, expected) in [(conversation("conv-s"), &live_in_s), (Audience::All, &live)] {
            for n in [1u64, 2, 3, 7, 16] {
                let mut all = Vec::new();
                for k in 0..n {
                    all.extend(segment_of(&store, &audience, Segment::new(k, n).unwrap(), 3).await);
                }
                let unique: std::collections::BTreeSet<String> = all.iter().cloned().collect();
                assert_eq!(unique.len(), all.len(), "{audience:?} in {n}: a connection in two segments: {all:?}");
                assert_eq!(&unique, expected, "{audience:?} in {n} segments");
            }
        }
    }

    pub async fn each_segment_of_a_fan_out_claims_on_its_own(store: impl StreamStore) {
        let stream = StreamName::parse("conv/us-east-1/conv-c").unwrap();
        let key = MessageKey::of_message_id("m-1");
        append_at(&store, &stream, "m-1", "{}", 0, "e1").await;
        let (first, second) = (Segment::new(0, 2).unwrap(), Segment::new(1, 2).unwrap());
        let mine = Claim { upto: Some("b=".into()), by: Some("run-a".into()) };
        assert_eq!(
            store.claim(&stream, &key, first, &Claim::default(), &mine, &no_hurry()).await.unwrap(),
            ClaimOutcome::Claimed
        );
        // The other segment's claim, and the whole audience's, are still unclaimed.
        assert_eq!(
            store.claim(&stream, &key, second, &Claim::default(), &mine, &no_hurry()).await.unwrap(),
            ClaimOutcome::Claimed
        );
        assert_eq!(
            store.claim(&stream, &key, Segment::WHOLE, &Claim::default(), &mine, &no_hurry()).await.unwrap(),
            ClaimOutcome::Claimed
        );
        let theirs = Claim { upto: Some("c=".into()), by: Some("run-b".into()) };
        assert_eq!(
            store.claim(&stream, &key, first, &Claim::default(), &theirs, &no_hurry()).await.unwrap(),
            ClaimOutcome::Moved(mine),
            "a segment's claim moves only from what was seen"
        );
    }

    pub async fn expired_tokens_are_listed_until_their_connection_closes(store: impl ConnectionStore + ReadBack) {
        // GIVEN tokens that expired, one that has not, and a connection without a token expiry
        let now = 1_767_225_600;
        for (i, exp) in [now - 3600, now - 60, now - 1, now, now + 60].into_iter().enumerate() {
            store.put_connection(&expiring(&format!("x{i}="), exp), &no_hurry()).await.unwrap();
        }
        for i in 0..20 {
            store.put_connection(&expiring(&format!("many{i:02}="), now - 5), &no_hurry()).await.unwrap();
        }
        store.put_connection(&record("no-exp=", "conv-x", None), &no_hurry()).await.unwrap();
        let stored = store.connection(&id("x0="), &no_hurry()).await.unwrap().unwrap();
        assert_eq!((stored.token_exp, stored.in_expiry_index), (Some(now - 3600), true));
        assert!(!store.connection(&id("no-exp="), &no_hurry()).await.unwrap().unwrap().in_expiry_index);

        // THEN exactly the expired ones are listed, whatever the page size
        let mut expected: Vec<String> = (0..20).map(|i| format!("many{i:02}=")).collect();
        expected.extend(["x0=", "x1=", "x2="].map(str::to_owned));
        expected.sort();
        assert_eq!(expired_of(&store, now, 1000).await, expected);
        assert_eq!(expired_of(&store, now, 2).await, expected);

        // AND a connection leaves the index when it closes or is found gone
        store.mark_disconnected(&disconnection("x0=", 1000, 1), &no_hurry()).await.unwrap();
        store.mark_gone(&id("x1="), None, FixedClock::default().0, &no_hurry()).await.unwrap();
        assert!(!store.connection(&id("x0="), &no_hurry()).await.unwrap().unwrap().in_expiry_index);
        let left = expired_of(&store, now, 1000).await;
        assert!(
            !left.contains(&"x0=".to_owned()) && !left.contains(&"x1=".to_owned()) && left.contains(&"x2=".to_owned())
        );
    }

    pub async fn only_a_410_from_the_connections_own_api_marks_it_gone(store: impl ConnectionStore + ReadBack) {
        let at = FixedClock::default().0;
        let own = Route { api_id: "apiA".into(), stage: "prod".into(), region: "us-east-1".into() };
        let other = Route { api_id: "apiB".into(), stage: "prod".into(), region: "eu-west-1".into() };
        let routed = ConnectionRecord {
            api_id: Some(own.api_id.clone()),
            region: Some(own.region.clone()),
            ..record("routed=", "conv-1", None)
        };
        store.put_connection(&routed, &no_hurry()).await.unwrap();
        store.put_connection(&record("unrouted=", "conv-1", None), &no_hurry()).await.unwrap();
        // Another region's API, or an API we cannot name (a custom domain), says nothing.
        assert_eq!(
            store.mark_gone(&id("routed="), Some(&other), at, &no_hurry()).await.unwrap(),
            GoneOutcome::NotConnected
        );
        assert_eq!(store.mark_gone(&id("routed="), None, at, &no_hurry()).await.unwrap(), GoneOutcome::NotConnected);
        let stored = store.connection(&id("routed="), &no_hurry()).await.unwrap().unwrap();
        assert_eq!(stored.status, ConnectionStatus::Connected, "a live connection is never marked by another API");
        assert_eq!(store.mark_gone(&id("routed="), Some(&own), at, &no_hurry()).await.unwrap(), GoneOutcome::Marked);
        // A record from before routes: any API's 410 (the original behaviour).
        assert_eq!(
            store.mark_gone(&id("unrouted="), Some(&other), at, &no_hurry()).await.unwrap(),
            GoneOutcome::Marked
        );
        // The listing says where each lives.
        let page = store.connected_page(&conversation("conv-1"), Part::WHOLE, None, 100, &no_hurry()).await.unwrap();
        assert!(page.ids.is_empty(), "both are GONE now");
        store
            .put_connection(
                &ConnectionRecord {
                    api_id: Some("apiA".into()),
                    region: Some("us-east-1".into()),
                    ..record("r2=", "conv-2", None)
                },
                &no_hurry(),
            )
            .await
            .unwrap();
        let page = store.connected_page(&conversation("conv-2"), Part::WHOLE, None, 100, &no_hurry()).await.unwrap();
        assert_eq!(page.routes.get(&id("r2=")), Some(&own));
    }

    pub async fn the_reason_for_a_close_is_kept_by_the_disconnect_that_follows(store: impl ConnectionStore + ReadBack) {
        store.put_connection(&record("r=", "conv-1", Some("u-1")), &no_hurry()).await.unwrap();
        let at = FixedClock::default().0;
        assert_eq!(store.note_closing(&id("r="), "banned", at, &no_hurry()).await.unwrap(), GoneOutcome::Marked);
        store.mark_disconnected(&disconnection("r=", 1000, 1), &no_hurry()).await.unwrap();
        let stored = store.connection(&id("r="), &no_hurry()).await.unwrap().unwrap();
        assert_eq!((stored.status, stored.close_reason.as_deref()), (ConnectionStatus::Disconnected, Some("banned")));
        assert_eq!(stored.close_code, Some(1000), "the close code is API Gateway's");
        // A closed one is not noted again (nor revived).
        let late = store.note_closing(&id("r="), "other", at, &no_hurry()).await.unwrap();
        assert_eq!(late, GoneOutcome::NotConnected);
        assert_eq!(store.note_closing(&id("never="), "x", at, &no_hurry()).await.unwrap(), GoneOutcome::NotConnected);
    }
}

macro_rules! contract {
    ($($rule:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $rule() {
                    super::rules::$rule(super::MemoryStore::new()).await;
                }
            )*
        }

        mod dynamodb {
            $(
                #[tokio::test]
                async fn $rule() {
                    super::rules::$rule(super::fresh_dynamodb().await).await;
                }
            )*
        }
    };
}

async fn fresh_dynamodb() -> DynamoStore {
    let (client, table) = fresh_table("contract").await;
    DynamoStore::new(&client, table)
}

contract!(
    a_put_creates_once_and_a_replay_finds_the_connection,
    the_first_disconnect_wins,
    a_disconnect_that_overtakes_its_connect_keeps_the_late_connect_out,
    a_tombstone_holds_a_free_place_and_names_what_holds_a_taken_one,
    gone_is_marked_only_while_connected,
    an_audience_is_its_connected_records_in_index_order_across_pages,
    expired_tokens_are_listed_until_their_connection_closes,
    the_reason_for_a_close_is_kept_by_the_disconnect_that_follows,
    only_a_410_from_the_connections_own_api_marks_it_gone,
    appends_get_gap_free_offsets_in_one_epoch_read_back_in_order,
    a_repeated_key_appends_nothing_and_gets_the_first_publish_back,
    an_expired_stream_starts_again_at_one_with_a_new_epoch,
    a_read_leaves_out_expired_entries,
    a_claim_moves_only_from_the_claim_that_was_seen,
    a_live_connection_is_read_until_it_closes,
    segments_split_an_audience_and_every_live_connection_into_disjoint_covering_shares,
    each_segment_of_a_fan_out_claims_on_its_own,
);
