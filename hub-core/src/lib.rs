//! The Spell Coven hub: public HTTP API, WebSocket fan-out, JWT and webhook verification.
//!
//! Module map (one concept per file):
//! - [`auth`]: ES256 JWT verification with JWKS, HMAC webhook signatures.
//! - [`hub`]: the guild event stream: seq, replay buffer, presence, encode-once fan-out,
//!   dedupe, behind the [`hub::Backend`] interface (in-process today, Redis later).
//! - [`ws`]: the `/ws` WebSocket protocol (auth, resume, snapshot, slow-client eviction).
//! - HTTP side: config, router, server, rooms, Discord REST client, metrics.

pub mod auth;
pub mod hub;
pub mod metrics;
pub mod secret;
pub mod ws;

pub use secret::Secret;
