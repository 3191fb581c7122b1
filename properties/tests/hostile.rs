//! Hostile events for each function: random JSON, and AWS's sample events with fields removed,
//! retyped or oversized (1 MB headers, 10,000 query keys), control characters, and identifiers
//! with `#`, `/`, control characters or 2 KB of text. Whatever arrives: never a panic, never a
//! 5xx, a refusal says nothing about the input (no marker echoed back), and a refused `$connect`
//! or `$disconnect` writes no record.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};
use ws_authorizer::jwks::JwksSource;
use ws_properties::{Handlers, cases, events};
use ws_shared::memory::MemoryStore;

/// Planted in every generated identifier and string: must never come back in an answer.
const MARKER: &str = "HOSTILE";

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(field_name(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Field names the functions read, and others.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("requestContext".to_owned()),
        Just("connectionId".to_owned()),
        Just("conversationId".to_owned()),
        Just("userId".to_owned()),
        Just("messageType".to_owned()),
        Just("queryStringParameters".to_owned()),
        Just("headers".to_owned()),
        Just("methodArn".to_owned()),
        Just("cursor".to_owned()),
        "[a-zA-Z]{1,12}",
    ]
}

/// Strings an attacker sends: with `#`, `/`, control characters, replacement characters, 2 KB.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9=]{0,8}".prop_map(|s| format!("{MARKER}{s}")),
        "[#/\\\\ \\x00-\\x1f\\u{7f}\\u{fffd}\\u{202e}<>\"']{1,16}".prop_map(|s| format!("{MARKER}{s}")),
        (1usize..3).prop_map(|k| format!("{MARKER}{}", "x".repeat(k * 1024))),
        Just(format!("CONN#{MARKER}")),
        Just(format!("../{MARKER}/..")),
    ]
}

/// How a sample event is damaged.
#[derive(Debug, Clone)]
enum Damage {
    Remove(usize),
    Retype(usize, Value),
    Replace(usize, String),
    HugeHeader,
    ManyQueryKeys,
    Whole(Value),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<usize>().prop_map(Damage::Remove),
        (any::<usize>(), arb_json()).prop_map(|(i, v)| Damage::Retype(i, v)),
        (any::<usize>(), hostile_string()).prop_map(|(i, s)| Damage::Replace(i, s)),
        Just(Damage::HugeHeader),
        Just(Damage::ManyQueryKeys),
        arb_json().prop_map(Damage::Whole),
    ]
}

/// Every path to a value in `value`.
fn paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if let Value::Object(map) = value {
        for (key, child) in map {
            prefix.push(key.clone());
            out.push(prefix.clone());
            paths(child, prefix, out);
            prefix.pop();
        }
    }
}

fn at_path<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Map<String, Value>> {
    let (_, parents) = path.split_last()?;
    parents.iter().try_fold(value, |v, key| v.get_mut(key))?.as_object_mut()
}

fn damaged(sample: &Value, damage: &Damage) -> Value {
    let mut event = sample.clone();
    let mut all = Vec::new();
    paths(&event, &mut Vec::new(), &mut all);
    let pick = |i: usize| all[i % all.len()].clone();
    match damage {
        Damage::Remove(i) => {
            let path = pick(*i);
            if let Some(parent) = at_path(&mut event, &path) {
                parent.remove(path.last().unwrap());
            }
        }
        Damage::Retype(i, value) => {
            let path = pick(*i);
            if let Some(parent) = at_path(&mut event, &path) {
                parent.insert(path.last().unwrap().clone(), value.clone());
            }
        }
        Damage::Replace(i, text) => {
            let path = pick(*i);
            if let Some(parent) = at_path(&mut event, &path) {
                parent.insert(path.last().unwrap().clone(), json!(text));
            }
        }
        Damage::HugeHeader => {
            event["headers"]["X-Huge"] = json!(format!("{MARKER}{}", "h".repeat(1 << 20)));
        }
        Damage::ManyQueryKeys => {
            let many: Map<String, Value> =
                (0..10_000).map(|i| (format!("k{i}"), json!(format!("{MARKER}{i}")))).collect();
            event["queryStringParameters"] = Value::Object(many);
        }
        Damage::Whole(value) => event = value.clone(),
    }
    event
}

/// A key set with no keys: a hostile token can never be checked against a real one.
#[derive(Debug, Clone, Copy)]
struct NoKeys;

impl JwksSource for NoKeys {
    async fn fetch(&self, _: std::time::Duration) -> Result<jsonwebtoken::jwk::JwkSet, ws_authorizer::jwks::JwksError> {
        Ok(jsonwebtoken::jwk::JwkSet { keys: Vec::new() })
    }
}

fn authorizer() -> ws_authorizer::Authorizer<NoKeys> {
    let vars = [("JWT_ISSUER", "https://issuer.example.com"), ("JWT_AUDIENCE", "app")];
    let config = ws_authorizer::Config::from_env(&|name: &str| {
        vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    })
    .expect("valid");
    ws_authorizer::Authorizer::new(config, NoKeys, Arc::new(ws_shared::testing::Captured::default()))
}

fn no_marker(answer: &Value, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(!answer.to_string().contains(MARKER), "{} echoed the input: {}", what, answer);
    Ok(())
}

fn check(sample_name: &str, event: Value) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = MemoryStore::new();
        let handlers = Handlers::new(&store, "memory");
        match sample_name {
            "connect" => {
                let answer = handlers.connect(event).await;
                let status = answer["statusCode"].as_u64().unwrap();
                prop_assert!([200, 400, 403].contains(&status), "connect answered {}", answer);
                if status == 200 {
                    prop_assert!(answer.get("body").is_none(), "{}", answer);
                } else {
                    prop_assert!(store.all().is_empty(), "a refused connect wrote a record");
                    no_marker(&answer, "a refused connect")?;
                }
            }
            "disconnect" => {
                let answer = handlers.disconnect(event).await;
                let status = answer["statusCode"].as_u64().unwrap();
                prop_assert!([200, 400].contains(&status), "disconnect answered {}", answer);
                if status != 200 {
                    prop_assert!(store.all().is_empty(), "a refused disconnect wrote a record");
                }
                no_marker(&answer, "disconnect")?;
            }
            "responder" => {
                let answer = handlers.respond(event).await;
                let status = answer["statusCode"].as_u64().unwrap();
                prop_assert!([200, 400, 410, 413].contains(&status), "responder answered {}", answer);
                no_marker(&answer, "responder")?;
                prop_assert!(store.all().is_empty(), "the responder wrote a record");
            }
            "authorizer" => {
                let policy = serde_json::to_value(
                    authorizer().handle(event, "req-h", ws_shared::testing::deadline_from_now(10_000)).await,
                )
                .unwrap();
                let effect = &policy["policyDocument"]["Statement"][0]["Effect"];
                prop_assert_eq!(effect, &json!("Deny"), "a hostile event was allowed: {}", policy);
                no_marker(&policy["principalId"], "the authorizer's principal")?;
                prop_assert!(policy.get("context").is_none(), "a Deny carries no context: {}", policy);
            }
            other => unreachable!("{other}"),
        }
        Ok(())
    })
}

#[test]
fn no_hostile_event_panics_gets_a_5xx_echoes_its_input_or_writes_a_record() {
    let samples = events::samples();
    let mut runner = TestRunner::new(Config { cases: cases(1500), failure_persistence: None, ..Config::default() });
    runner
        .run(&(0..samples.len(), damage()), |(which, damage)| {
            let (name, sample) = &samples[which];
            check(name, damaged(sample, &damage))
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}

/// A violation found while building these generators, kept by name: an offered subprotocol of
/// 1 MB (or with characters outside an HTTP token) was echoed back whole in the `$connect` answer.
#[test]
fn an_oversized_or_malformed_subprotocol_is_never_echoed() {
    for offered in [format!("{MARKER}{}", "p".repeat(1 << 20)), format!("{MARKER} <script>")] {
        let (_, mut event) = events::samples().into_iter().next().unwrap();
        event["headers"]["Sec-WebSocket-Protocol"] = json!(offered);
        event["multiValueHeaders"]["Sec-WebSocket-Protocol"] = json!([offered]);
        check("connect", event).unwrap();
    }
}
