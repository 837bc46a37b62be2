//! The Spell Coven hub: public HTTP API, WebSocket fan-out, JWT and webhook verification.
//!
//! Module map (one concept per file):
//! - [`auth`]: ES256 JWT verification with JWKS, HMAC webhook signatures.
//! - [`hub`]: the guild event stream: seq, replay buffer, presence, encode-once fan-out,
//!   dedupe, behind the [`hub::Backend`] interface (in-process, or shared through Redis with `REDIS_URL`).
//! - [`ws`]: the `/ws` WebSocket protocol (auth, resume, snapshot, slow-client eviction).
//! - HTTP side: [`config`], [`router`], [`cors`], [`response`], [`error`], [`rooms`],
//!   [`discord`] (REST client), [`routes`] (handlers), [`server`] (listeners, shutdown),
//!   [`metrics`].

mod atomic_file;
pub mod auth;
pub mod config;
pub mod cors;
pub mod discord;
pub mod error;
pub mod hub;
pub mod metrics;
pub mod response;
pub mod rooms;
pub mod router;
pub mod routes;
pub mod secret;
pub mod server;
pub mod ws;

pub use config::{Config, ConfigError, JwtKeys, LogFormat};
pub use cors::Cors;
pub use discord::{DiscordClient, DiscordError};
pub use error::ApiError;
pub use metrics::Metrics;
pub use rooms::{CreatedRoom, FileRoomStore, Room, RoomStore};
pub use router::{Route, RouteError, route};
pub use routes::App;
pub use secret::Secret;
pub use server::{ServerHandle, StartError, shutdown_signal, start};
