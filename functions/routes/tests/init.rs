//! The binary refuses to start on unusable configuration, with one message naming the variable.

use ws_shared::testing::assert_refuses_to_start;

const BINARY: &str = env!("CARGO_BIN_EXE_ws-routes");

#[test]
fn a_missing_table_name_fails_at_start_naming_the_variable() {
    assert_refuses_to_start(BINARY, ws_routes::SVC, &[], "configuration error: TABLE_CONNECTIONS is not set");
}

#[test]
fn a_bad_resume_limit_fails_at_start_naming_the_variable() {
    let env = [("TABLE_CONNECTIONS", "t-connections"), ("RESUME_MAX_MESSAGES", "0")];
    assert_refuses_to_start(BINARY, ws_routes::SVC, &env, "configuration error: RESUME_MAX_MESSAGES=\"0\" is invalid");
}

#[test]
fn an_unknown_log_level_fails_at_start_naming_the_variable() {
    let env = [("TABLE_CONNECTIONS", "t-connections"), ("LOG_LEVEL", "LOUD")];
    assert_refuses_to_start(BINARY, ws_routes::SVC, &env, "LOG_LEVEL=\"LOUD\" is invalid");
}
