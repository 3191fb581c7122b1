//! The binary refuses to start on unusable configuration, with one message naming the variable.

use ws_shared::testing::assert_refuses_to_start;

const BINARY: &str = env!("CARGO_BIN_EXE_ws-connect");
const SVC: &str = ws_connect::SVC;

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

#[test]
fn an_unknown_client_info_fails_at_start_naming_the_variable() {
    let env = [("TABLE_CONNECTIONS", "connections"), ("CLIENT_INFO", "partial")];
    assert_refuses_to_start(BINARY, SVC, &env, "CLIENT_INFO=\"partial\" is invalid: use full");
}

#[test]
fn a_zero_or_non_numeric_connection_limit_fails_at_start_naming_the_variable() {
    for bad in ["0", "two", "-1", "10001"] {
        let env = [("TABLE_CONNECTIONS", "connections"), ("MAX_CONNECTIONS_PER_USER", bad)];
        assert_refuses_to_start(
            BINARY,
            SVC,
            &env,
            &format!("MAX_CONNECTIONS_PER_USER=\"{bad}\" is invalid: use a whole"),
        );
    }
}
