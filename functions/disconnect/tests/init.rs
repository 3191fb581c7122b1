//! The binary refuses to start on unusable configuration, with one message naming the variable.

use ws_shared::testing::assert_refuses_to_start;

const BINARY: &str = env!("CARGO_BIN_EXE_ws-disconnect");
const SVC: &str = ws_disconnect::SVC;

#[test]
fn a_missing_table_name_fails_at_start_naming_the_variable() {
    assert_refuses_to_start(BINARY, SVC, &[], "configuration error: TABLE_CONNECTIONS is not set");
}

#[test]
fn a_non_numeric_ttl_fails_at_start_naming_the_variable() {
    let env = [("TABLE_CONNECTIONS", "connections"), ("CONNECTION_TTL_MINUTES", "3h")];
    assert_refuses_to_start(BINARY, SVC, &env, "CONNECTION_TTL_MINUTES=\"3h\" is invalid: use a positive whole number");
}

#[test]
fn an_unknown_log_level_fails_at_start_naming_the_variable() {
    let env = [("TABLE_CONNECTIONS", "connections"), ("LOG_LEVEL", "verbose")];
    assert_refuses_to_start(BINARY, SVC, &env, "LOG_LEVEL=\"verbose\" is invalid");
}
