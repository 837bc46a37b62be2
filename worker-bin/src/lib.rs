//! The Spell Coven worker: one Discord Gateway session for one guild, whose
//! voice activity is forwarded to the hub in order, at least once, with a
//! unique id per event. See the crate README for behaviour and operation.
//!
//! Modules, one concept each:
//! - [`config`]: environment variables (contract §1) and `--help`;
//! - [`voice`]: the guild voice-state cache and the room events it derives;
//! - [`event`]: the events sent to the hub and their payload shapes;
//! - [`outbox`]: the bounded ordered outbox, event ids and the acknowledged
//!   checkpoint;
//! - [`hub_client`]: signed delivery to `POST /internal/events` and the retry
//!   policy;
//! - [`state_file`]: the atomic `WORKER_STATE_FILE`;
//! - [`gateway_bot`]: `GET /gateway/bot`;
//! - [`health`]: `GET /health` and `GET /metrics`;
//! - [`driver`]: the tokio loop that ties them to gateway-proto;
//! - [`secret`], [`tls`]: the redacting secret wrapper and the rustls setup.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let config = worker::Config::from_env()?;
//! let stop = async { let _ = tokio::signal::ctrl_c().await; };
//! worker::run(config, worker::Tuning::default(), worker::Telemetry::default(), stop).await?;
//! # Ok(()) }
//! ```

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
