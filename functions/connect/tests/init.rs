//! The binary refuses to start on unusable configuration, with one message naming the variable.

use ws_shared::testing::{Exit, run_with_env};

fn start(env: &[(&str, &str)]) -> Exit {
    run_with_env(env!("CARGO_BIN_EXE_ws-connect"), env)
}

#[test]
fn a_missing_table_name_fails_at_start_naming_the_variable() {
    let exit = start(&[]);

    assert_eq!(exit.code, 1);
    assert!(exit.stderr.contains("configuration error: TABLE_CONNECTIONS is not set"), "{}", exit.stderr);
    let line: serde_json::Value = serde_json::from_str(exit.stdout.trim()).expect("one JSON log line");
    assert_eq!((line["level"].as_str(), line["svc"].as_str()), (Some("ERROR"), Some("ws-connect")));
}

#[test]
fn a_non_numeric_ttl_fails_at_start_naming_the_variable() {
    let exit = start(&[("TABLE_CONNECTIONS", "connections"), ("CONNECTION_TTL_MINUTES", "3h")]);

    assert_eq!(exit.code, 1);
    assert!(
        exit.stderr.contains("CONNECTION_TTL_MINUTES=\"3h\" is invalid: use a positive whole number"),
        "{}",
        exit.stderr
    );
}

#[test]
fn an_unknown_log_level_fails_at_start_naming_the_variable() {
    let exit = start(&[("TABLE_CONNECTIONS", "connections"), ("LOG_LEVEL", "verbose")]);

    assert_eq!(exit.code, 1);
    assert!(exit.stderr.contains("LOG_LEVEL=\"verbose\" is invalid"), "{}", exit.stderr);
}
