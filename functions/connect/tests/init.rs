//! The binary refuses to start on unusable configuration, with one message naming the variable.

use ws_shared::testing::assert_refuses_to_start;

const BINARY: &str = env!("CARGO_BIN_EXE_ws-connect");
const SVC: &str = ws_connect::SVC;

ws_shared::table_function_refuses_bad_configuration!(BINARY, SVC);

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
