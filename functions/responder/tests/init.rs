//! The binary refuses to start on unusable configuration, with one message naming the variable.

use ws_shared::testing::assert_refuses_to_start;

const BINARY: &str = env!("CARGO_BIN_EXE_ws-responder");

#[test]
fn mark_gone_without_a_table_fails_at_start_naming_the_variable() {
    let message = "TABLE_CONNECTIONS is not set: MARK_GONE=true needs the connections table";
    assert_refuses_to_start(BINARY, ws_responder::SVC, &[("MARK_GONE", "true")], message);
}

#[test]
fn a_wss_ws_endpoint_fails_at_start() {
    let env = [("WS_ENDPOINT", "wss://abc.example.com/prod")];
    let message = "WS_ENDPOINT=\"wss://abc.example.com/prod\" is invalid: use the Management API's https:// endpoint";
    assert_refuses_to_start(BINARY, ws_responder::SVC, &env, message);
}

#[test]
fn an_unknown_tls_roots_fails_at_start() {
    let message = "TLS_ROOTS=\"mozilla\" is invalid: use amazon (AWS endpoints and ACM-issued certificates) or system";
    assert_refuses_to_start(BINARY, ws_responder::SVC, &[("TLS_ROOTS", "mozilla")], message);
}
