//! The binary refuses to start on unusable configuration, with one message naming the variable.

use ws_shared::testing::assert_refuses_to_start;

const BINARY: &str = env!("CARGO_BIN_EXE_ws-authorizer");

#[test]
fn a_missing_issuer_fails_at_start_naming_the_variable() {
    let env = [("JWT_AUDIENCE", "app")];
    assert_refuses_to_start(BINARY, ws_authorizer::SVC, &env, "configuration error: JWT_ISSUER is not set");
}

#[test]
fn a_symmetric_algorithm_fails_at_start() {
    let env = [("JWT_ISSUER", "https://issuer.example.com"), ("JWT_AUDIENCE", "app"), ("ALLOWED_ALGS", "HS256")];
    assert_refuses_to_start(BINARY, ws_authorizer::SVC, &env, "ALLOWED_ALGS=\"HS256\" is invalid");
}
