//! The manifest (`lambda.manifest.json`) is what Terraform, ws-local and the dashboard read; the
//! crates are what runs. They must say the same: each function's `svc`, the EMF counters it
//! emits (the dashboard's widgets are checked against the manifest's list), the variables the
//! code reads and their defaults, and the origin secret's minimum length.

use serde_json::Value;
use ws_shared::metrics::Metric as _;

fn manifest() -> Value {
    serde_json::from_str(include_str!("../../lambda.manifest.json")).expect("lambda.manifest.json is JSON")
}

fn function(name: &str) -> Value {
    manifest()["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("the manifest lists no {name}"))
        .clone()
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

#[test]
fn each_function_has_the_svc_and_metrics_its_crate_emits() {
    let crates = [
        ("ConnectFunction", ws_connect::SVC, ws_connect::Metric::names()),
        ("disconnectWS", ws_disconnect::SVC, ws_disconnect::Metric::names()),
        ("WebSocketResponder", ws_responder::SVC, ws_responder::Metric::names()),
        ("WebSocketRoutes", ws_routes::SVC, ws_routes::Metric::names()),
        ("ConnectAuthorizer", ws_authorizer::SVC, ws_authorizer::Metric::names()),
        ("MembershipFunction", ws_membership::SVC, ws_membership::Metric::names()),
    ];
    assert_eq!(manifest()["functions"].as_array().unwrap().len(), crates.len(), "a function without a crate here");
    for (name, svc, metrics) in crates {
        let f = function(name);
        assert_eq!(f["svc"], svc, "{name}: svc");
        assert_eq!(strings(&f["metrics"]), metrics, "{name}: metrics (the dashboard reads the manifest's)");
    }
}

#[test]
fn the_manifest_declares_what_connect_reads_with_the_code_defaults() {
    let env = &function("ConnectFunction")["environment"];
    for name in [
        ws_connect::CLIENT_INFO,
        ws_connect::MAX_CONNECTIONS_PER_USER,
        ws_connect::ORIGIN_VERIFY_SECRET,
        "TABLE_CONNECTIONS",
        "CONNECTION_TTL_MINUTES",
    ] {
        assert!(env.get(name).is_some(), "ConnectFunction reads {name}; the manifest must declare it");
    }
    assert_eq!(env["CLIENT_INFO"]["default"], "full");
    assert_eq!(
        ws_connect::ClientInfo::from_env(&|_: &str| None).unwrap(),
        ws_connect::ClientInfo::Full,
        "the code's default is the manifest's"
    );
    assert!(env[ws_connect::MAX_CONNECTIONS_PER_USER].get("default").is_none(), "no limit unless set");
    assert_eq!(env["CONNECTION_TTL_MINUTES"]["default"], ws_shared::config::DEFAULT_TTL_MINUTES.to_string());
    assert_eq!(
        env[ws_connect::ORIGIN_VERIFY_SECRET]["min_length"].as_u64(),
        Some(ws_connect::ORIGIN_SECRET_MIN_LEN as u64),
        "one minimum origin-secret length: the code's is the manifest's, which the edge module validates with"
    );
}

#[test]
fn the_stack_tests_manifest_copy_is_the_manifest_plus_a_route_function_and_a_local_only_one() {
    let mut copy: Value = serde_json::from_str(include_str!(
        "../../terraform/modules/stack/tests/fixtures/with-a-route/lambda.manifest.json"
    ))
    .expect("the fixture is JSON");
    let functions = copy["functions"].as_array_mut().unwrap();
    let local_only = functions.pop().expect("a local-only executable function is last");
    assert!(local_only.get("executable").is_some() && local_only.get("crate").is_none(), "{local_only}");
    let added = functions.pop().expect("the added route function before it");
    assert_eq!(added["trigger"]["type"], "route");
    // Its own namespace, so the stack test sees alarms follow each function's namespace.
    assert_ne!(added["environment"]["METRICS_NAMESPACE"]["default"], "ws-connection");
    assert_eq!(copy, manifest(), "regenerate the fixture from lambda.manifest.json (plus sendMessage)");
}

/// The manifest's defaults for `function`, plus `required`: what Terraform and ws-local give.
fn manifest_env(function_name: &str, required: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    let f = function(function_name);
    let mut env: std::collections::HashMap<String, String> = f["environment"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(name, v)| Some((name.clone(), v["default"].as_str()?.to_owned())))
        .collect();
    env.extend(required.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    env
}

fn only(required: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    required.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Each function configures itself the same whether a variable is unset (the code's default)
/// or set to the manifest's default: the two are one value, whichever side changes.
#[test]
fn the_code_defaults_are_the_manifest_defaults() {
    let table = [("TABLE_CONNECTIONS", "connections")];
    let (unset, set) = (only(&table), manifest_env("ConnectFunction", &table));
    assert_eq!(
        ws_connect::Config::from_env(&|n: &str| unset.get(n).cloned()).unwrap(),
        ws_connect::Config::from_env(&|n: &str| set.get(n).cloned()).unwrap(),
        "ConnectFunction"
    );
    let (unset, set) = (only(&table), manifest_env("disconnectWS", &table));
    assert_eq!(
        ws_disconnect::Config::from_env(&|n: &str| unset.get(n).cloned()).unwrap(),
        ws_disconnect::Config::from_env(&|n: &str| set.get(n).cloned()).unwrap(),
        "disconnectWS"
    );
    let (unset, set) = (only(&[]), manifest_env("WebSocketResponder", &[]));
    assert_eq!(
        ws_responder::Config::from_env(&|n: &str| unset.get(n).cloned()).unwrap(),
        ws_responder::Config::from_env(&|n: &str| set.get(n).cloned()).unwrap(),
        "WebSocketResponder"
    );
    let (unset, set) = (only(&table), manifest_env("WebSocketRoutes", &table));
    assert_eq!(
        ws_routes::Config::from_env(&|n: &str| unset.get(n).cloned()).unwrap(),
        ws_routes::Config::from_env(&|n: &str| set.get(n).cloned()).unwrap(),
        "WebSocketRoutes"
    );
    let issuer = [("JWT_ISSUER", "https://issuer.example.com"), ("JWT_AUDIENCE", "app")];
    let (unset, set) = (only(&issuer), manifest_env("ConnectAuthorizer", &issuer));
    assert_eq!(
        ws_authorizer::Config::from_env(&|n: &str| unset.get(n).cloned()).unwrap(),
        ws_authorizer::Config::from_env(&|n: &str| set.get(n).cloned()).unwrap(),
        "ConnectAuthorizer"
    );
}

#[test]
fn the_membership_functions_grant_is_on_the_keys_the_code_writes() {
    // The stack lets MembershipFunction update only items whose partition key starts with the
    // prefix `keys::members` writes: a change to either alone would deny every update.
    let stack = include_str!("../../terraform/modules/stack/main.tf");
    let grant = format!("\"dynamodb:LeadingKeys\" = [\"{}*\"]", ws_shared::record::keys::MEMBERS_PREFIX);
    assert!(stack.contains(&grant), "terraform/modules/stack/main.tf must grant {grant}");
    let conversation = ws_shared::id::ConversationId::parse("c1").unwrap();
    assert!(ws_shared::record::keys::members(&conversation).starts_with(ws_shared::record::keys::MEMBERS_PREFIX));
}
