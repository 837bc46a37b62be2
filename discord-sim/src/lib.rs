//! A faithful fake Discord (Gateway v10 + REST) for tests, benchmarks and the demo.
//!
//! `discord-sim` serves, on 127.0.0.1 only:
//!
//! - a **gateway** WebSocket ([`Sim::gateway_url`]) and a distinct **resume gateway**
//!   ([`Sim::resume_gateway_url`], the `resume_gateway_url` of READY) serving the same
//!   sessions: HELLO, heartbeats and ACKs, IDENTIFY and RESUME validated as Discord
//!   documents (close codes 4001-4014), READY and GUILD_CREATE with channels and voice
//!   states, sequence numbers, RESUME with replay of missed dispatches then RESUMED,
//!   session invalidation on 1000/1001 and after the resume timeout, the 120-per-60-s
//!   send limit (4008), the 4096-byte payload limit (4002), the heartbeat timeout (4009),
//!   `max_concurrency` and `session_start_limit`, and `compress=zlib-stream`;
//! - **REST** under [`Sim::api_base`] (`/api/v10`): `GET /gateway`, `GET /gateway/bot`,
//!   `POST`/`GET /guilds/{id}/channels`, `GET`/`DELETE /channels/{id}`, with bot-token
//!   auth, Discord's error shapes (50035 with nested `errors`, 10003, 10004, 50109),
//!   `X-RateLimit-*` headers and 429s (per bucket and global);
//! - a **control** endpoint ([`Sim::control_url`], see the `control` table in the README)
//!   mirroring the Rust control API.
//!
//! It is strict where Discord is strict, so that a client which passes here has a fair
//! chance in production. Every simulated behaviour names the Discord document it follows.
//! It is a dev tool: never a dependency of a release binary.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use discord_sim::{DEFAULT_VOICE_1_ID, Sim, SimConfig};
//!
//! let sim = Sim::start(SimConfig {
//!     heartbeat_interval: Duration::from_millis(500),
//!     ..SimConfig::default()
//! })
//! .await?;
//! // A user joins voice: every identified session gets VOICE_STATE_UPDATE.
//! sim.join(42, DEFAULT_VOICE_1_ID).await?;
//! assert_eq!(sim.voice_states().len(), 1);
//! // Faults: the next two REST calls get 502 from "Cloudflare".
//! sim.fail_rest(discord_sim::RestFault::ServerError { status: 502 }, 2).await;
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Timing
//!
//! All of the sim's timers (heartbeat timeout, resume timeout, rate windows, identify
//! concurrency) use tokio's clock, so `#[tokio::test(start_paused = true)]` works for
//! tests that do not need real sockets; with real sockets, configure short intervals and
//! wait on conditions ([`Sim::wait_for`]), never on fixed sleeps.

mod config;
mod control;
mod error;
mod faults;
mod gateway;
mod http_util;
mod introspect;
mod json;
mod rest;
mod session;
mod shared;
mod sim;
mod snowflake;
mod world;

pub use config::{
    ChannelSpec, DEFAULT_APPLICATION_ID, DEFAULT_CATEGORY_ID, DEFAULT_GUILD_ID, DEFAULT_TOKEN,
    DEFAULT_VOICE_1_ID, DEFAULT_VOICE_2_ID, Ports, RestRateLimit, SessionStartLimit, SimConfig,
    VoiceStateSpec, channel_type, intents,
};
pub use error::{ControlError, SimError, WaitError};
pub use faults::RestFault;
pub use gateway::connection::heartbeat_timeout;
pub use introspect::{
    Channel, CloseInfo, ConnId, ConnectionInfo, ConnectionState, Listener, ReceivedPayload,
    RestCall, SessionInfo, SessionStatus, VoiceFlags, VoiceState,
};
pub use sim::Sim;
