//! The Spell Coven worker: one Discord Gateway session, forwarded to the hub.
//!
//! Modules, one concept each:
//! - [`config`]: environment variables (contract §1);
//! - [`voice`]: the guild voice-state cache and the room events it derives;
//! - [`event`]: the events sent to the hub;
//! - [`secret`]: the redacting wrapper for the token and the hub secret.

pub mod config;
pub mod driver;
pub mod event;
pub mod gateway_bot;
pub mod health;
pub mod hub_client;
pub mod outbox;
pub mod secret;
pub mod state_file;
pub mod tls;
pub mod voice;

pub use config::{Config, ConfigError, LogFormat};
pub use driver::{RunError, Tuning, run};
pub use event::{Occupancy, RoomEvent};
pub use health::Telemetry;
pub use outbox::{Entry, Outbox, Position};
pub use secret::Secret;
pub use voice::{VoiceCache, VoiceChannel};
