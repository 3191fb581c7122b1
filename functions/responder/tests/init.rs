//! The binary refuses to start on unusable configuration, with one message naming the variable.

use ws_shared::testing::run_with_env;

#[test]
fn mark_gone_without_a_table_fails_at_start_naming_the_variable() {
    let exit = run_with_env(env!("CARGO_BIN_EXE_ws-responder"), &[("MARK_GONE", "true")]);

    assert_eq!(exit.code, 1);
    assert!(
        exit.stderr.contains("TABLE_CONNECTIONS is not set: MARK_GONE=true needs the connections table"),
        "{}",
        exit.stderr
    );
}

#[test]
fn a_wss_ws_endpoint_fails_at_start() {
    let exit = run_with_env(env!("CARGO_BIN_EXE_ws-responder"), &[("WS_ENDPOINT", "wss://abc.example.com/prod")]);

    assert_eq!(exit.code, 1);
    assert!(
        exit.stderr.contains(
            "WS_ENDPOINT=\"wss://abc.example.com/prod\" is invalid: use the Management API's https:// endpoint"
        ),
        "{}",
        exit.stderr
    );
}
