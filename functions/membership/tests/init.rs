//! The binary refuses to start on unusable configuration, with one message naming the variable.

ws_shared::table_function_refuses_bad_configuration!(env!("CARGO_BIN_EXE_ws-membership"), ws_membership::SVC);
