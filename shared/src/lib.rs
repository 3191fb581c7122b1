//! What the ws-connection Lambdas share.
//!
//! # Layout
//! - [`id`]: identifiers that go into keys, validated when parsed.
//! - [`record`]: the connection record and the table's key schema, the one place that names
//!   attributes and key formats.
//! - [`store`]: the store port the handlers call; [`dynamo`] its DynamoDB adapter; `memory`
//!   (feature `testing`) an in-memory adapter with the same conditional semantics.
//! - [`stream`]: every audience's recoverable stream (offsets, epoch, idempotent publish), the
//!   stream port; the adapters keep it next to the connections (`dynamo`, `memory`).
//! - [`segment`]: a fan-out's audience split into disjoint key ranges for parallel invocations.
//! - [`deadline`]: the invocation's deadline, which bounds every network call.
//! - [`config`]: typed configuration from the environment, with errors that name the variable.
//! - [`log`]: JSON log lines through `tracing`; [`metrics`]: CloudWatch EMF counters;
//!   [`output`]: where both are written.
//! - [`clock`]: time and UUIDs behind traits, and the one timestamp format.
//! - [`apigw`]: API Gateway WebSocket events in, proxy responses out.
//! - [`aws`]: the SDK's HTTP client and config, loaded once per process.
//! - [`url`]: the one rule for URLs we call (https, or http on loopback only).
//! - [`invocation`]: how every handler runs one invocation (span, counters, panic guard).
//! - [`secret`]: a secret from the environment, compared in constant time, printed redacted.
//! - [`process`]: a process's resident memory, from `/proc`.
//! - [`serve`]: the one entry point that runs a handler under the Lambda runtime.
//! - `testing` (feature `testing`): fixed clock and ids, captured output, moto helpers.

pub mod apigw;
pub mod aws;
pub mod clock;
pub mod config;
pub mod deadline;
pub mod dynamo;
pub mod id;
pub mod invocation;
pub mod log;
pub mod membership;
#[cfg(feature = "testing")]
pub mod memory;
pub mod metrics;
pub mod output;
pub mod process;
pub mod record;
pub mod secret;
pub mod segment;
pub mod serve;
pub mod store;
pub mod stream;
#[cfg(feature = "testing")]
pub mod testing;
pub mod url;
