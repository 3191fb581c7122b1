//! ws-local: the whole service on one machine. It plays API Gateway (the WebSocket endpoint
//! and the Management API) and Lambda (the Invoke API, and the Runtime API that each function's
//! real binary runs against), and issues development tokens so the real authorizer runs too.
//! DynamoDB is moto's server with the table `terraform/envs/local` creates.
//!
//! # Layout
//! - [`server`]: the one listener, its routes, start and stop; [`state`]: what every handler
//!   can reach. Imports flow one way: `server` → the APIs (`gateway`, `management`,
//!   `invoke_api`) → `state` → the parts (`lambda`, `issuer`, `manifest`, `config`).
//! - [`gateway`]: API Gateway's WebSocket side, one job a file (handshake, socket loop,
//!   message routes, the registry of open connections).
//! - [`events`]: the events API Gateway sends, and how an authorizer's policy is evaluated.
//! - [`management`]: `@connections/{id}` POST/GET/DELETE.
//! - [`invoke_api`]: Lambda's Invoke API.
//! - [`lambda`]: function instances (processes) and the Runtime API they poll.
//! - [`issuer`]: the development token issuer (JWKS + signing).
//! - [`console`]: the browser console at `/_console` (connections, messages, forms, logs).
//! - [`schedule`]: the deployed stack's schedules, locally (the expiry sweep).
//! - [`lifecycle`]: the lifecycle events the stack's pipes put on its bus, made from the table
//!   (to the log, the console, and `--events-url`).
//! - [`manifest`], [`config`]: `lambda.manifest.json`, settings, each function's environment.
//! - [`http`], [`logs`]: HTTP plumbing (axum routers served on loopback listeners, bounded
//!   bodies, AWS-style errors); output prefixed with its source.

pub mod config;
pub mod console;
pub mod events;
pub mod gateway;
pub mod http;
pub mod invoke_api;
pub mod issuer;
pub mod lambda;
pub mod lifecycle;
pub mod logs;
pub mod management;
pub mod manifest;
pub mod schedule;
pub mod server;
pub mod state;

pub use config::{Limits, Settings};
pub use logs::Logs;
pub use server::{Running, StartError, start};
