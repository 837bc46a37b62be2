//! The gateway side: WebSocket listeners and connections (gateway.mdx, gateway-events.mdx,
//! opcodes-and-status-codes.mdx).

pub(crate) mod codes;
mod compress;
pub(crate) mod connection;
mod handshake;
mod listener;
mod query;
mod validate;

pub(crate) use listener::accept_loop;
