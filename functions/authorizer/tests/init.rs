//! The binary refuses to start on unusable configuration, with one message naming the variable.

use ws_shared::testing::run_with_env;

#[test]
fn a_missing_issuer_fails_at_start_naming_the_variable() {
    let exit = run_with_env(env!("CARGO_BIN_EXE_ws-authorizer"), &[("JWT_AUDIENCE", "app")]);

    assert_eq!(exit.code, 1);
    assert!(exit.stderr.contains("configuration error: JWT_ISSUER is not set"), "{}", exit.stderr);
}

#[test]
fn a_symmetric_algorithm_fails_at_start() {
    let env = [("JWT_ISSUER", "https://issuer.example.com"), ("JWT_AUDIENCE", "app"), ("ALLOWED_ALGS", "HS256")];
    let exit = run_with_env(env!("CARGO_BIN_EXE_ws-authorizer"), &env);

    assert_eq!(exit.code, 1);
    assert!(exit.stderr.contains("ALLOWED_ALGS=\"HS256\" is invalid"), "{}", exit.stderr);
}
