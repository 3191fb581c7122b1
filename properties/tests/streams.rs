//! Generated histories of one conversation's stream and up to three clients: publishes (some of
//! them retried whole, as Step Functions retries a task), connects, drops with and without their
//! `$disconnect`, resumes whose answer races the live posts, frames received one at a time, and
//! the whole stream expiring. The clients follow the client library's rules (deliver the next
//! offset, drop an earlier one, resume on a gap, `more` or an epoch it does not know). After the
//! history, every connected client drains its socket and resumes until it has nothing to ask.
//!
//! Then, on both store adapters:
//! 1. every client's deliveries in an epoch are one gap-free run of offsets, each once, in order,
//!    and the run of the current epoch ends at the stream's last offset (it missed nothing since
//!    its position);
//! 2. each delivered offset carries the message first published at it;
//! 3. a retried publish never appends (the head counts distinct messages) and no connection
//!    gets one offset twice from the responder;
//! 4. `recovered: false` only when what the client asked for is gone (its epoch is not the
//!    stream's anymore), and never otherwise.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use ws_properties::{cases, events};
use ws_responder::Responder;
use ws_responder::endpoint::Endpoint;
use ws_responder::management::{PostError, Poster};
use ws_routes::Routes;
use ws_shared::clock::Clock as _;
use ws_shared::dynamo::DynamoStore;
use ws_shared::id::{ConnectionId, ConversationId};
use ws_shared::memory::MemoryStore;
use ws_shared::store::{Audience, ConnectionStore};
use ws_shared::stream::{StreamName, StreamStore};
use ws_shared::testing::{
    Captured, FixedClock, ManualClock, SequentialIds, create_connections_table, deadline_from_now, dynamodb_client,
    dynamodb_endpoint, no_hurry, unique_table_name,
};

const CONVERSATION: &str = "conv-s";
const CLIENTS: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    /// A new message, or (`retry`) message `retry % published` published again whole.
    Publish {
        retry: Option<usize>,
    },
    Connect(usize),
    /// The client's resume; its answer lands among the frames already queued at `at`.
    Resume(usize, usize),
    /// The client's socket closes; `lost`: API Gateway never delivers its `$disconnect`.
    Drop(usize, bool),
    Receive(usize),
    /// Everything in the stream expires (the clock passes the retention).
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::option::weighted(0.3, 0..20usize).prop_map(|retry| Op::Publish { retry }),
        2 => (0..CLIENTS).prop_map(Op::Connect),
        2 => (0..CLIENTS, 0..4usize).prop_map(|(c, at)| Op::Resume(c, at)),
        1 => (0..CLIENTS, any::<bool>()).prop_map(|(c, lost)| Op::Drop(c, lost)),
        4 => (0..CLIENTS).prop_map(Op::Receive),
        1 => Just(Op::Expire),
    ]
}

/// A frame on a client's socket.
#[derive(Debug, Clone)]
enum Frame {
    Live(Value),
    Resumed(Value),
}

/// The Management API: live connections get their posts queued as frames; the log counts posts
/// per (connection, epoch, offset).
#[derive(Debug, Clone, Default)]
struct Sockets {
    inner: Arc<Mutex<SocketsInner>>,
}

#[derive(Debug, Default)]
struct SocketsInner {
    frames: HashMap<String, Vec<Frame>>,
    live: HashSet<String>,
    posts: HashMap<(String, String, u64), usize>,
}

impl Poster for Sockets {
    async fn post(&self, _: &Endpoint, id: &ConnectionId, body: bytes::Bytes, _: Duration) -> Result<(), PostError> {
        let mut inner = self.inner.lock().unwrap();
        if !inner.live.contains(id.as_str()) {
            return Err(PostError::Gone);
        }
        let envelope: Value = serde_json::from_slice(&body).unwrap();
        let key = (
            id.as_str().to_owned(),
            envelope["epoch"].as_str().unwrap().to_owned(),
            envelope["offset"].as_u64().unwrap(),
        );
        *inner.posts.entry(key).or_default() += 1;
        inner.frames.entry(id.as_str().to_owned()).or_default().push(Frame::Live(envelope));
        Ok(())
    }

    async fn close(&self, _: &Endpoint, _: &ConnectionId, _: Duration) -> Result<(), PostError> {
        Ok(())
    }
}

/// One client, following the client library's rules.
#[derive(Debug, Default)]
struct Client {
    connection: Option<String>,
    connections: usize,
    /// Its position in the stream: epoch and last offset delivered; `None` before its first resume.
    position: Option<(Option<String>, u64)>,
    wants_resume: bool,
    /// A resume was sent and its answer has not been read: the library keeps one in flight (an
    /// older answer read after a newer one would move the client back to a gone epoch).
    in_flight: bool,
    resumed_since_connect: bool,
    /// What it delivered: (epoch, offset, message number).
    delivered: Vec<(String, u64, u64)>,
    /// Each `recovered: false` it met: (the epoch it asked with, the stream's epoch then).
    unrecovered: Vec<(Option<String>, Option<String>)>,
    /// Epochs it left because the stream said they are gone: a late frame of one is not news.
    retired: HashSet<String>,
}

impl Client {
    /// The library's rule for one envelope: the next offset is delivered, an earlier one dropped,
    /// anything else asks for a resume.
    fn take(&mut self, envelope: &Value) {
        let epoch = envelope["epoch"].as_str().unwrap().to_owned();
        let offset = envelope["offset"].as_u64().unwrap();
        if self.retired.contains(&epoch) {
            return;
        }
        match &mut self.position {
            Some((known, last)) if known.as_deref() == Some(epoch.as_str()) || known.is_none() => {
                if offset == *last + 1 {
                    *known = Some(epoch.clone());
                    *last = offset;
                    self.delivered.push((epoch, offset, envelope["payload"]["n"].as_u64().unwrap()));
                } else if offset > *last + 1 {
                    self.wants_resume = true;
                }
            }
            _ => self.wants_resume = true,
        }
    }

    fn request(&self, stream: &StreamName) -> Value {
        let entry = match &self.position {
            None => json!({"stream": stream.as_str()}),
            Some((epoch, offset)) => json!({"stream": stream.as_str(), "offset": offset, "epoch": epoch}),
        };
        json!({"action": "resume", "streams": [entry]})
    }

    /// A resume answer to a request that asked with `asked_epoch` (the stream's epoch was
    /// `stream_epoch_then` when it was read).
    fn apply(&mut self, answer: &Value, asked_epoch: Option<String>, stream_epoch_then: Option<String>) {
        assert_eq!(answer["type"], "resumed", "{answer}");
        let part = &answer["streams"][0];
        let current = self.position.as_ref().and_then(|(e, _)| e.clone());
        if part["recovered"] == false {
            self.unrecovered.push((asked_epoch, stream_epoch_then));
            // Re-sync: the answer's messages are the new baseline, unless the client already
            // moved to that epoch (a later answer, or live messages, got there first).
            if current.is_none() || current.as_deref() != part["epoch"].as_str() {
                self.retired.extend(current);
                let first = part["messages"][0]["offset"].as_u64().unwrap_or(part["to"].as_u64().unwrap() + 1);
                self.position = Some((part["epoch"].as_str().map(str::to_owned), first - 1));
            }
        } else if self.position.is_none() {
            self.position = Some((part["epoch"].as_str().map(str::to_owned), part["from"].as_u64().unwrap() - 1));
        }
        for message in part["messages"].as_array().unwrap() {
            self.take(message);
        }
        if let Some((epoch, last)) = &mut self.position
            && (epoch.is_none() || epoch.as_deref() == part["epoch"].as_str())
            && part["recovered"] == true
        {
            *epoch = part["epoch"].as_str().map(str::to_owned);
            *last = (*last).max(part["to"].as_u64().unwrap());
        }
        self.wants_resume |= answer["more"] == true;
    }
}

/// The functions over one store, the sockets, the clock and the clients.
struct World<S> {
    store: S,
    sockets: Sockets,
    clock: Arc<ManualClock>,
    responder: Responder<Sockets, S>,
    routes: Routes<S>,
    connect: ws_connect::Connect<S>,
    disconnect: ws_disconnect::Disconnect<S>,
    clients: Vec<Client>,
    /// Message number → the offset it was first appended at, per epoch.
    published: Vec<u64>,
    offsets: HashMap<(String, u64), u64>,
    connected_at: i64,
}

impl<S: ConnectionStore + StreamStore + Clone> World<S> {
    fn new(store: &S, table: &str) -> Self {
        let clock = Arc::new(ManualClock::new(FixedClock::default().0));
        let sink = Arc::new(Captured::default());
        let vars: HashMap<&str, &str> = HashMap::from([("TABLE_CONNECTIONS", table), ("RESUME_MAX_MESSAGES", "4")]);
        let get = |name: &str| vars.get(name).map(|v| (*v).to_owned());
        let sockets = Sockets::default();
        let responder = Responder::new(
            sockets.clone(),
            Some(store.clone()),
            &ws_responder::Config::from_env(&get).unwrap(),
            sink.clone(),
        )
        .with_clock(clock.clone())
        .with_ids(Arc::new(SequentialIds::default()));
        let routes = Routes::new(store.clone(), &ws_routes::Config::from_env(&get).unwrap(), sink.clone())
            .with_clock(clock.clone());
        let connect =
            ws_connect::Connect::new(store.clone(), &ws_connect::Config::from_env(&get).unwrap(), sink.clone())
                .with_clock(clock.clone());
        let disconnect =
            ws_disconnect::Disconnect::new(store.clone(), &ws_disconnect::Config::from_env(&get).unwrap(), sink)
                .with_clock(clock.clone());
        Self {
            store: store.clone(),
            sockets,
            clock,
            responder,
            routes,
            connect,
            disconnect,
            clients: (0..CLIENTS).map(|_| Client::default()).collect(),
            published: Vec::new(),
            offsets: HashMap::new(),
            connected_at: 1_707_503_000_000,
        }
    }

    fn stream() -> StreamName {
        StreamName::of(&Audience::Conversation(ConversationId::parse(CONVERSATION).unwrap()), "local").unwrap()
    }

    async fn head_epoch(&self) -> Option<String> {
        self.store.head(&Self::stream(), self.clock.now(), &no_hurry()).await.unwrap().map(|h| h.epoch)
    }

    async fn step(&mut self, op: &Op) {
        match op {
            Op::Publish { retry } => {
                let n = match retry {
                    Some(r) if !self.published.is_empty() => *r % self.published.len(),
                    _ => self.published.len(),
                };
                let event = json!({"conversationId": CONVERSATION, "messageType": "m", "messageId": format!("m{n}"),
                                   "payload": {"n": n}, "wsEndpoint": "http://127.0.0.1:9/prod"});
                let answer =
                    serde_json::to_value(self.responder.handle(event, "req", deadline_from_now(10_000)).await).unwrap();
                assert_eq!(answer["statusCode"], 200, "{answer}");
                let key = (answer["epoch"].as_str().unwrap().to_owned(), answer["offset"].as_u64().unwrap());
                // A message first published in this epoch keeps its offset; a retry gets it back.
                let first = *self.offsets.entry(key.clone()).or_insert(n as u64);
                assert_eq!(first, n as u64, "offset {key:?} holds message {first}, and came back for message {n}");
                if n == self.published.len() {
                    self.published.push(key.1);
                }
            }
            Op::Connect(c) => {
                if self.clients[*c].connection.is_some() {
                    return;
                }
                self.clients[*c].connections += 1;
                let id = format!("c{c}n{}=", self.clients[*c].connections);
                self.connected_at += 1000;
                let answer = self
                    .connect
                    .handle(
                        events::connect(&id, CONVERSATION, &format!("u{c}"), self.connected_at),
                        "req",
                        deadline_from_now(10_000),
                    )
                    .await;
                assert_eq!(serde_json::to_value(answer).unwrap()["statusCode"], 200);
                self.sockets.inner.lock().unwrap().live.insert(id.clone());
                let client = &mut self.clients[*c];
                client.connection = Some(id);
                client.resumed_since_connect = false;
                client.in_flight = false;
            }
            Op::Resume(c, at) => self.resume(*c, Some(*at)).await,
            Op::Drop(c, lost) => {
                let Some(id) = self.clients[*c].connection.take() else { return };
                self.clients[*c].in_flight = false;
                {
                    let mut inner = self.sockets.inner.lock().unwrap();
                    inner.live.remove(&id);
                    inner.frames.remove(&id);
                }
                if !lost {
                    self.disconnect.handle(events::disconnect(&id, 1006, ""), "req", deadline_from_now(10_000)).await;
                }
            }
            Op::Receive(c) => self.receive(*c),
            Op::Expire => self
                .clock
                .advance(chrono::Duration::minutes(i64::from(ws_shared::stream::DEFAULT_RETENTION_MINUTES) + 1)),
        }
    }

    /// The client's resume; its answer is queued at `at` among its frames (`None`: last).
    async fn resume(&mut self, c: usize, at: Option<usize>) {
        let Some(id) = self.clients[c].connection.clone() else { return };
        if self.clients[c].in_flight {
            self.clients[c].wants_resume = true;
            return;
        }
        let body = self.clients[c].request(&Self::stream()).to_string();
        let event = json!({"requestContext": {"routeKey": "resume", "eventType": "MESSAGE", "connectionId": id,
                                              "connectedAt": 1, "requestTimeEpoch": 1}, "body": body});
        let epoch_then = self.head_epoch().await;
        let response = serde_json::to_value(self.routes.handle(event, "req", deadline_from_now(10_000)).await).unwrap();
        let answer: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        let client = &mut self.clients[c];
        client.resumed_since_connect = true;
        client.wants_resume = false;
        client.in_flight = true;
        let mut inner = self.sockets.inner.lock().unwrap();
        let frames = inner.frames.entry(id).or_default();
        let at = at.map_or(frames.len(), |at| at.min(frames.len()));
        // The answer carries the stream's epoch as read: kept with it to judge `recovered`.
        let mut answer = answer;
        answer["_epochThen"] = json!(epoch_then);
        answer["_asked"] = json!(client.position.as_ref().and_then(|(e, _)| e.clone()));
        frames.insert(at, Frame::Resumed(answer));
    }

    fn receive(&mut self, c: usize) {
        let Some(id) = self.clients[c].connection.clone() else { return };
        let frame = {
            let mut inner = self.sockets.inner.lock().unwrap();
            let frames = inner.frames.entry(id).or_default();
            if frames.is_empty() {
                return;
            }
            frames.remove(0)
        };
        let client = &mut self.clients[c];
        match frame {
            // Before its first resume answer the client has no position: it resumes.
            Frame::Live(_) if client.position.is_none() => client.wants_resume = true,
            Frame::Live(envelope) => client.take(&envelope),
            Frame::Resumed(answer) => {
                let text = |field: &str| answer[field].as_str().map(str::to_owned);
                let (asked, then) = (text("_asked"), text("_epochThen"));
                client.in_flight = false;
                client.apply(&answer, asked, then);
            }
        }
    }

    /// After the history: every connected client reads what it has and resumes as its library
    /// would (after connecting, on a gap, on `more`) until nothing is left.
    async fn settle(&mut self) {
        for _ in 0..200 {
            let mut busy = false;
            for c in 0..CLIENTS {
                let Some(id) = self.clients[c].connection.clone() else { continue };
                while self.sockets.inner.lock().unwrap().frames.get(&id).is_some_and(|f| !f.is_empty()) {
                    self.receive(c);
                    busy = true;
                }
                let client = &self.clients[c];
                if !client.in_flight && (!client.resumed_since_connect || client.wants_resume) {
                    self.resume(c, None).await;
                    busy = true;
                }
            }
            if !busy {
                return;
            }
        }
        panic!("the clients never settle");
    }

    /// The properties, after `settle`.
    async fn check(&self) -> Result<(), TestCaseError> {
        let stream = Self::stream();
        let head = self.store.head(&stream, self.clock.now(), &no_hurry()).await.unwrap();
        let posts = &self.sockets.inner.lock().unwrap().posts;
        prop_assert!(posts.values().all(|&n| n == 1), "a connection got one offset twice: {:?}", posts);
        if let Some(head) = &head {
            let in_epoch = self.offsets.keys().filter(|(e, _)| *e == head.epoch).count() as u64;
            prop_assert_eq!(head.last, in_epoch, "a retried publish appended");
        }
        for (c, client) in self.clients.iter().enumerate() {
            // 1. one gap-free, ordered run per epoch, each offset once
            let mut runs: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
            for (epoch, offset, n) in &client.delivered {
                runs.entry(epoch).or_default().push(*offset);
                // 2. the message first published at that offset
                prop_assert_eq!(self.offsets.get(&(epoch.clone(), *offset)), Some(n), "client {} offset {}", c, offset);
            }
            for (epoch, offsets) in &runs {
                prop_assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1), "client {c} epoch {epoch}: {offsets:?}");
            }
            // ... and a connected client's run of the current epoch ends at the stream's last offset
            if client.connection.is_some()
                && let Some(head) = &head
                && head.last > 0
            {
                let last = runs.get(head.epoch.as_str()).and_then(|o| o.last().copied());
                let position = client.position.as_ref().map(|(e, o)| (e.clone(), *o));
                prop_assert_eq!(
                    position.as_ref().map(|(e, o)| (e.as_deref() == Some(head.epoch.as_str()), *o)),
                    Some((true, head.last)),
                    "client {} stopped at {:?} of {:?}; delivered {:?}",
                    c,
                    position,
                    head,
                    last
                );
            }
            // 4. recovered: false only when the epoch it asked with is not the stream's
            for (asked, then) in &client.unrecovered {
                prop_assert!(
                    asked.is_some() && asked != then,
                    "client {c}: recovered false asking {asked:?} of {then:?}"
                );
            }
        }
        Ok(())
    }
}

async fn run_history<S: ConnectionStore + StreamStore + Clone>(
    store: &S,
    table: &str,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let mut world = World::new(store, table);
    for op in ops {
        world.step(op).await;
    }
    world.settle().await;
    world.check().await
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn every_client_that_resumes_and_stays_gets_each_later_offset_once_in_order_in_memory() {
    let mut runner = TestRunner::new(Config { cases: cases(400), ..Config::default() });
    let rt = runtime();
    runner
        .run(&proptest::collection::vec(op(), 1..60), |ops| {
            rt.block_on(run_history(&MemoryStore::new(), "memory", &ops))
        })
        .unwrap();
}

#[test]
fn every_client_that_resumes_and_stays_gets_each_later_offset_once_in_order_on_dynamodb() {
    let mut runner = TestRunner::new(Config { cases: cases(12), ..Config::default() });
    let rt = runtime();
    let client = dynamodb_client(&dynamodb_endpoint());
    runner
        .run(&proptest::collection::vec(op(), 1..40), |ops| {
            rt.block_on(async {
                let table = unique_table_name("streams");
                create_connections_table(&client, &table).await;
                run_history(&DynamoStore::new(&client, &table), &table, &ops).await
            })
        })
        .unwrap();
}

/// Found by the property: two resumes sent before either answer came back, both `recovered: false`
/// after an expiry; the later-sent answer arrived first and moved the client to the new epoch, and
/// the earlier one must not re-base it again (it delivered offsets 1-2 twice).
#[test]
fn an_unrecovered_answer_that_arrives_after_the_client_moved_on_does_not_deliver_twice() {
    let ops = [
        Op::Connect(0),
        Op::Resume(0, 0),
        Op::Receive(0),
        Op::Publish { retry: None },
        Op::Expire,
        Op::Receive(0),
        Op::Publish { retry: None },
        Op::Publish { retry: None },
        Op::Resume(0, 0),
        Op::Resume(0, 0),
    ];
    runtime().block_on(run_history(&MemoryStore::new(), "memory", &ops)).unwrap();
}

/// Found by the property before the model kept one resume in flight (as the library does): two
/// unrecovered answers across two expiries read newest first moved the client back to the older
/// epoch, and it delivered the newest epoch's offset 1 twice.
#[test]
fn a_second_resume_waits_for_the_answer_to_the_first() {
    let ops = [
        Op::Publish { retry: None },
        Op::Connect(1),
        Op::Resume(1, 0),
        Op::Expire,
        Op::Receive(1),
        Op::Publish { retry: None },
        Op::Resume(1, 1),
        Op::Expire,
        Op::Publish { retry: None },
        Op::Resume(1, 0),
    ];
    runtime().block_on(run_history(&MemoryStore::new(), "memory", &ops)).unwrap();
}

/// Found by the property: a live frame of an epoch the client had left (its stream expired and
/// the resume said so) arrived late and was taken as the start of a new epoch, delivering its
/// offset 1 a second time. A client retires an epoch the stream said is gone.
#[test]
fn a_late_frame_of_an_epoch_the_stream_said_is_gone_is_not_delivered_again() {
    let ops = [
        Op::Connect(0),
        Op::Publish { retry: None },
        Op::Publish { retry: None },
        Op::Expire,
        Op::Resume(0, 0),
        Op::Receive(0),
        Op::Publish { retry: None },
        Op::Resume(0, 0),
        Op::Expire,
        Op::Receive(0),
        Op::Resume(0, 1),
    ];
    runtime().block_on(run_history(&MemoryStore::new(), "memory", &ops)).unwrap();
}
