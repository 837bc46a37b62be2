//! Errors of the sim's Rust API.

use std::fmt;
use std::io;
use std::time::Duration;

/// Starting the sim failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SimError {
    /// A listener could not be bound on 127.0.0.1.
    Bind {
        /// Which listener ("gateway", "resume", "rest", "control").
        listener: &'static str,
        /// The port asked for (0 = any).
        port: u16,
        /// The OS error.
        source: io::Error,
    },
    /// The configuration is inconsistent.
    Config(String),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bind {
                listener,
                port,
                source,
            } => write!(
                f,
                "cannot bind the {listener} listener on 127.0.0.1:{port}: {source}; pick another port or 0"
            ),
            Self::Config(what) => write!(f, "invalid sim configuration: {what}"),
        }
    }
}

impl std::error::Error for SimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Bind { source, .. } => Some(source),
            Self::Config(_) => None,
        }
    }
}

/// A control action could not be applied to the simulated guild.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlError {
    /// No channel with this id in the guild.
    UnknownChannel(u64),
    /// The channel exists but users cannot connect to it.
    NotVoiceChannel(u64),
    /// The user is not connected to voice.
    NotInVoice(u64),
    /// The user is already in that channel.
    AlreadyInChannel {
        /// The user.
        user_id: u64,
        /// The channel.
        channel_id: u64,
    },
    /// The channel's `user_limit` is reached (the Discord client refuses to join).
    ChannelFull(u64),
    /// A channel to create is invalid.
    InvalidChannel(String),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownChannel(id) => write!(f, "unknown channel {id}"),
            Self::NotVoiceChannel(id) => write!(f, "channel {id} is not a voice channel"),
            Self::NotInVoice(id) => write!(f, "user {id} is not in a voice channel"),
            Self::AlreadyInChannel {
                user_id,
                channel_id,
            } => write!(f, "user {user_id} is already in channel {channel_id}"),
            Self::ChannelFull(id) => write!(f, "channel {id} is full"),
            Self::InvalidChannel(why) => write!(f, "invalid channel: {why}"),
        }
    }
}

impl std::error::Error for ControlError {}

/// A wait on the sim's state gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitError {
    /// The condition did not hold within the timeout.
    Timeout(Duration),
    /// The sim shut down while waiting.
    Closed,
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(d) => write!(f, "condition not met within {d:?}"),
            Self::Closed => write!(f, "the sim shut down while waiting"),
        }
    }
}

impl std::error::Error for WaitError {}
