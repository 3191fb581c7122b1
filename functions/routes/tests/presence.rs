//! `presence` on the client's own route (docs/design.md §12): who is online in the conversation it
//! connected to, asked about through the Management API when older than the stale window; any
//! other conversation is refused.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use ws_responder::endpoint::Endpoint;
use ws_responder::management::{PostError, Poster};
use ws_routes::{Config, Routes};
use ws_shared::id::ConnectionId;
use ws_shared::memory::MemoryStore;
use ws_shared::record::ConnectionStatus;
use ws_shared::store::ConnectionStore;
use ws_shared::testing::{Captured, FixedClock, ReadBack, connection_record, deadline_from_now, no_hurry};

/// API Gateway as far as presence asks: the connections it still has, and who was asked about
/// through which endpoint.
#[derive(Debug, Clone, Default)]
struct Api {
    live: Arc<Mutex<BTreeSet<String>>>,
    asked: Arc<Mutex<Vec<(String, String)>>>,
}

impl Poster for Api {
    async fn post(&self, _: &Endpoint, _: &ConnectionId, _: bytes::Bytes, _: Duration) -> Result<(), PostError> {
        Ok(())
    }

    async fn close(&self, _: &Endpoint, _: &ConnectionId, _: Duration) -> Result<(), PostError> {
        Ok(())
    }

    async fn check(&self, endpoint: &Endpoint, id: &ConnectionId, _: Duration) -> Result<(), PostError> {
        self.asked.lock().unwrap().push((endpoint.to_string(), id.as_str().to_owned()));
        if self.live.lock().unwrap().contains(id.as_str()) { Ok(()) } else { Err(PostError::Gone) }
    }
}

async fn connect(store: &MemoryStore, id: &str, conversation: &str, user: &str, minutes_ago: i64) {
    let at = FixedClock::default().0 - chrono::Duration::minutes(minutes_ago);
    let record = connection_record(id, conversation, Some(user), at);
    store.put_connection(&record, &no_hurry()).await.unwrap();
}

/// The answer frame to `body` from connection `me=` of `rita`.
async fn ask(routes: &Routes<MemoryStore, Api>, body: &Value) -> Value {
    let context = json!({"routeKey": "presence", "eventType": "MESSAGE", "connectionId": "me=", "connectedAt": 1,
                         "requestTimeEpoch": 1, "domainName": "abc.execute-api.us-east-1.amazonaws.com",
                         "stage": "prod", "authorizer": {"principalId": "rita"}});
    let event = json!({"requestContext": context, "body": body.to_string()});
    let response = serde_json::to_value(routes.handle(event, "req", deadline_from_now(10_000)).await).unwrap();
    assert_eq!(response["statusCode"], 200, "{response}");
    serde_json::from_str(response["body"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_client_sees_who_is_in_its_own_conversation_and_only_there() {
    // GIVEN rita (connected now), ana on two connections (one an hour old and still live), and
    // bo, whose only connection lost its $disconnect 30 minutes ago; carl in another conversation
    let store = MemoryStore::new();
    connect(&store, "me=", "conv-r", "rita", 0).await;
    connect(&store, "ana1=", "conv-r", "ana", 60).await;
    connect(&store, "ana2=", "conv-r", "ana", 2).await;
    connect(&store, "bo=", "conv-r", "bo", 30).await;
    connect(&store, "carl=", "conv-other", "carl", 0).await;
    let api = Api::default();
    api.live.lock().unwrap().extend(["me=".to_owned(), "ana1=".to_owned(), "ana2=".to_owned(), "carl=".to_owned()]);
    let vars = std::collections::HashMap::from([("TABLE_CONNECTIONS", "memory")]);
    let config = Config::from_env(&|n: &str| vars.get(n).map(|v| (*v).to_owned())).unwrap();
    let routes = Routes::new(store.clone(), &config, Arc::new(Captured::default()))
        .with_poster(api.clone())
        .with_clock(Arc::new(FixedClock::default()));

    // WHEN rita asks
    let answer = ask(&routes, &json!({"action": "presence"})).await;

    // THEN ana (2) and rita are online, bo is not (and is marked GONE), carl is elsewhere
    assert_eq!(answer["type"], "presence", "{answer}");
    assert_eq!(answer["conversationId"], "conv-r");
    let users: Vec<(String, u64)> = answer["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["userId"].as_str().unwrap().to_owned(), u["connections"].as_u64().unwrap()))
        .collect();
    assert_eq!(users, [("ana".to_owned(), 2), ("rita".to_owned(), 1)], "{answer}");
    assert!(answer.get("cursor").is_none());
    let bo = store.connection(&ConnectionId::parse("bo=").unwrap(), &no_hurry()).await.unwrap().unwrap();
    assert_eq!(bo.status, ConnectionStatus::Gone);
    // Only the connections older than the window were asked about, through the client's own API.
    let asked = api.asked.lock().unwrap().clone();
    let endpoint = "https://abc.execute-api.us-east-1.amazonaws.com/prod".to_owned();
    assert_eq!(asked, [(endpoint.clone(), "ana1=".to_owned()), (endpoint, "bo=".to_owned())]);

    // AND naming its own conversation is the same; another conversation is refused
    let own = ask(&routes, &json!({"action": "presence", "conversationId": "conv-r"})).await;
    assert_eq!(own["type"], "presence");
    let other = ask(&routes, &json!({"action": "presence", "conversationId": "conv-other"})).await;
    assert_eq!(other["type"], "error", "{other}");
    assert!(
        other["error"]
            .as_str()
            .unwrap()
            .starts_with("a connection may ask for the presence of its own conversation (conv-r) only")
    );
}
