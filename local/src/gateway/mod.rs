//! API Gateway's WebSocket side, one job a file:
//! - [`handshake`]: `$connect` (authorizer, route), the 101 and the subprotocol;
//! - [`socket`]: the open connection's loop, its limits and close, then `$disconnect`;
//! - [`messages`]: a client's message to its route;
//! - [`registry`]: the open connections the Management API reaches.

mod handshake;
mod messages;
pub mod registry;
mod socket;

pub use handshake::handshake;
pub use registry::{Connection, Connections, Outbound};
