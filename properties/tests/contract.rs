//! The manifest (`lambda.manifest.json`) is what Terraform, ws-local and the dashboard read; the
//! crates are what runs. They must say the same: each function's `svc`, the EMF counters it
//! emits (the dashboard's widgets are checked against the manifest's list), and the defaults the
//! manifest declares for the variables the code reads.

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
        ("ConnectAuthorizer", ws_authorizer::SVC, ws_authorizer::Metric::names()),
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
fn the_stack_tests_manifest_copy_is_the_manifest_plus_one_route_function() {
    let mut copy: Value = serde_json::from_str(include_str!(
        "../../terraform/modules/stack/tests/fixtures/with-a-route/lambda.manifest.json"
    ))
    .expect("the fixture is JSON");
    let functions = copy["functions"].as_array_mut().unwrap();
    let added = functions.pop().expect("the added function is last");
    assert_eq!(added["trigger"]["type"], "route");
    // Its own namespace, so the stack test sees alarms follow each function's namespace.
    assert_ne!(added["environment"]["METRICS_NAMESPACE"]["default"], "ws-connection");
    assert_eq!(copy, manifest(), "regenerate the fixture from lambda.manifest.json (plus sendMessage)");
}
