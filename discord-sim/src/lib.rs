#![doc = include_str!("../README.md")]

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
