#![doc = include_str!("../README.md")]

mod backoff;
mod close_code;
mod command;
mod compression;
mod config;
mod dispatch;
mod error;
mod event;
mod gateway;
mod heartbeat;
mod input;
mod intents;
mod opcode;
mod ratelimit;
mod session;
mod state;
mod timer;
mod transmit;
mod url;

pub mod codec;
pub mod fuzzing;

pub use close_code::{CloseAction, CloseCode};
pub use command::Command;
pub use compression::Decompressor;
pub use config::{
    Compression, Config, ConfigBuilder, ConnectionProperties, DEFAULT_GATEWAY_URL,
    MAX_PHASE_DEADLINE, Token,
};
pub use dispatch::{
    Channel, Decision, Dispatch, DispatchEvent, EventFilter, EventKind, EventKinds, GuildCreate,
    RawDispatch, Ready, UnavailableGuild, Unwanted, User, VoiceState,
};
pub use error::{DecodeError, DecompressError, FatalError, InputError, InputKind, SendError};
pub use event::{Event, Phase, ReconnectReason};
pub use gateway::{Gateway, RESUMABLE_CLOSE_CODE};
pub use input::Input;
pub use intents::Intents;
pub use opcode::OpCode;
pub use ratelimit::{SEND_LIMIT, SEND_WINDOW};
pub use session::{GatewayInfo, Session, SessionStartLimit};
pub use state::StateKind;
pub use transmit::Transmit;
pub use url::{API_VERSION, gateway_url};

/// An arbitrary origin for unit tests' virtual clocks.
#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "tests need one arbitrary origin; the machine itself never reads the clock"
)]
pub(crate) fn test_epoch() -> std::time::Instant {
    std::time::Instant::now()
}
