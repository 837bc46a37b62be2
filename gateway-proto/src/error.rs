//! Errors, one enum per failure domain.

use std::fmt;

use crate::close_code::CloseCode;
use crate::intents::Intents;
use crate::state::StateKind;

/// Why the session stopped for good: Discord closed the connection with a
/// code that reconnecting cannot fix. Each message tells an operator what to
/// change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FatalError {
    /// 4004: the token was refused.
    AuthenticationFailed,
    /// 4010: the shard in IDENTIFY is invalid.
    InvalidShard {
        /// The configured `[shard_id, shard_count]`, if any.
        shard: Option<[u32; 2]>,
    },
    /// 4011: too many guilds for one session.
    ShardingRequired,
    /// 4012: Discord refused the API version.
    InvalidApiVersion,
    /// 4013: the intents value is invalid.
    InvalidIntents {
        /// The configured intents.
        intents: Intents,
    },
    /// 4014: the intents include a privileged intent that is not enabled for
    /// this application.
    DisallowedIntents {
        /// The configured intents.
        intents: Intents,
        /// Names of the privileged intents in the configured set.
        privileged: Vec<&'static str>,
    },
}

impl FatalError {
    /// The fatal error for a close code, `None` if the code is not fatal.
    #[must_use]
    pub fn from_close(code: CloseCode, intents: Intents, shard: Option<[u32; 2]>) -> Option<Self> {
        Some(match code {
            CloseCode::AuthenticationFailed => Self::AuthenticationFailed,
            CloseCode::InvalidShard => Self::InvalidShard { shard },
            CloseCode::ShardingRequired => Self::ShardingRequired,
            CloseCode::InvalidApiVersion => Self::InvalidApiVersion,
            CloseCode::InvalidIntents => Self::InvalidIntents { intents },
            CloseCode::DisallowedIntents => Self::DisallowedIntents {
                intents,
                privileged: intents.privileged_names(),
            },
            _ => return None,
        })
    }

    /// The close code behind this error.
    #[must_use]
    pub const fn close_code(&self) -> CloseCode {
        match self {
            Self::AuthenticationFailed => CloseCode::AuthenticationFailed,
            Self::InvalidShard { .. } => CloseCode::InvalidShard,
            Self::ShardingRequired => CloseCode::ShardingRequired,
            Self::InvalidApiVersion => CloseCode::InvalidApiVersion,
            Self::InvalidIntents { .. } => CloseCode::InvalidIntents,
            Self::DisallowedIntents { .. } => CloseCode::DisallowedIntents,
        }
    }
}

impl fmt::Display for FatalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AuthenticationFailed => f.write_str(
                "discord closed the gateway with 4004 (authentication failed): the bot token is \
                 wrong or was reset; copy the current token from the Bot page of the developer \
                 portal into the configuration",
            ),
            Self::InvalidShard {
                shard: Some([id, count]),
            } => write!(
                f,
                "discord closed the gateway with 4010 (invalid shard): shard [{id}, {count}] is \
                 not valid; the shard id must be below the shard count"
            ),
            Self::InvalidShard { shard: None } => f.write_str(
                "discord closed the gateway with 4010 (invalid shard): check the shard settings",
            ),
            Self::ShardingRequired => f.write_str(
                "discord closed the gateway with 4011 (sharding required): the bot is in too many \
                 guilds for one session; run it with several shards",
            ),
            Self::InvalidApiVersion => f.write_str(
                "discord closed the gateway with 4012 (invalid api version): this library speaks \
                 gateway v10, which discord no longer accepts; upgrade the library",
            ),
            Self::InvalidIntents { intents } => write!(
                f,
                "discord closed the gateway with 4013 (invalid intents): the configured intents \
                 value {} is not a valid bit field; fix the intents setting",
                intents.bits()
            ),
            Self::DisallowedIntents {
                intents,
                privileged,
            } if privileged.is_empty() => write!(
                f,
                "discord closed the gateway with 4014 (disallowed intents): the configured \
                 intents {} include an intent this application may not use; enable it on the \
                 Bot page of the developer portal (Privileged Gateway Intents) or remove it",
                intents.bits()
            ),
            Self::DisallowedIntents {
                intents,
                privileged,
            } => write!(
                f,
                "discord closed the gateway with 4014 (disallowed intents): the configured \
                 intents {} include privileged intents that are not enabled for this \
                 application: {}; enable them on the Bot page of the developer portal \
                 (Privileged Gateway Intents), or remove them from the configuration",
                intents.bits(),
                privileged.join(", ")
            ),
        }
    }
}

impl std::error::Error for FatalError {}

/// What kind of input was handed to the machine, for [`InputError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputKind {
    /// [`Gateway::start`](crate::Gateway::start).
    Start,
    /// [`Gateway::handle_connected`](crate::Gateway::handle_connected).
    Connected,
    /// [`Gateway::handle_connect_failed`](crate::Gateway::handle_connect_failed).
    ConnectFailed,
    /// A text or binary frame.
    Frame,
    /// [`Gateway::handle_closed`](crate::Gateway::handle_closed).
    Closed,
    /// [`Gateway::shutdown`](crate::Gateway::shutdown).
    Shutdown,
    /// [`Gateway::set_session`](crate::Gateway::set_session).
    SetSession,
}

impl fmt::Display for InputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Start => "start",
            Self::Connected => "connection opened",
            Self::ConnectFailed => "connect failed",
            Self::Frame => "frame",
            Self::Closed => "connection closed",
            Self::Shutdown => "shutdown",
            Self::SetSession => "set session",
        })
    }
}

/// An input the machine could not use. The machine's state is unchanged
/// unless the variant says otherwise; a driver may log it and carry on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputError {
    /// The input makes no sense in the current state (for example a frame
    /// while no connection is open, or `handle_connected` twice).
    Unexpected {
        /// What was handed in.
        input: InputKind,
        /// The state the machine was in.
        state: StateKind,
    },
    /// A frame could not be decoded. The machine has already dropped the
    /// connection and scheduled a resume.
    Decode(DecodeError),
    /// A compressed frame could not be decompressed or broke a size cap. The
    /// machine has already dropped the connection and scheduled a resume.
    Decompress(DecompressError),
    /// A command given through [`Gateway::handle`](crate::Gateway::handle)
    /// was refused.
    Send(SendError),
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unexpected { input, state } => {
                write!(f, "unexpected input {input} in state {state}")
            }
            Self::Decode(e) => write!(f, "undecodable frame: {e}"),
            Self::Decompress(e) => write!(f, "bad compressed frame: {e}"),
            Self::Send(e) => write!(f, "command refused: {e}"),
        }
    }
}

impl std::error::Error for InputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unexpected { .. } => None,
            Self::Decode(e) => Some(e),
            Self::Decompress(e) => Some(e),
            Self::Send(e) => Some(e),
        }
    }
}

/// A command the machine refused to send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The encoded payload is larger than Discord accepts (4096 bytes,
    /// `events/gateway.mdx` "Sending Events"); sending it would get the
    /// connection closed with 4002.
    TooLarge {
        /// Size of the encoded payload in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The opcode belongs to the session machine (heartbeat, identify,
    /// resume) or is receive-only.
    ReservedOpcode(u8),
    /// The bounded command queue is full (the connection is rate limited or
    /// not connected); the command was not queued.
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
    },
    /// The machine has stopped (after a fatal close or a shutdown).
    Stopped,
    /// The command data could not be encoded as JSON.
    Encode(String),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { size, limit } => {
                write!(
                    f,
                    "payload of {size} bytes is over the {limit} byte gateway limit"
                )
            }
            Self::ReservedOpcode(op) => {
                write!(f, "opcode {op} is sent by the session machine only")
            }
            Self::QueueFull { capacity } => {
                write!(f, "command queue is full ({capacity} commands waiting)")
            }
            Self::Stopped => f.write_str("the gateway session has stopped"),
            Self::Encode(e) => write!(f, "cannot encode command: {e}"),
        }
    }
}

impl std::error::Error for SendError {}

/// A payload that is not a valid Gateway message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not JSON, or not the payload structure `{op, d, s, t}`.
    Json(String),
    /// A payload whose `d` does not have the shape its opcode or event needs.
    Payload {
        /// The opcode or event name.
        what: String,
        /// What was wrong.
        reason: String,
    },
}

impl DecodeError {
    pub(crate) fn payload(what: impl Into<String>, err: &serde_json::Error) -> Self {
        Self::Payload {
            what: what.into(),
            reason: err.to_string(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(e) => write!(f, "invalid gateway payload: {e}"),
            Self::Payload { what, reason } => write!(f, "invalid {what} payload: {reason}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A transport-compressed stream that could not be decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecompressError {
    /// The buffered compressed bytes of one message exceed the cap.
    CompressedTooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// One decompressed message exceeds the cap.
    MessageTooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// The compressed stream is corrupt.
    Corrupt(String),
    /// Compression was requested but this build lacks the cargo feature.
    Unsupported(&'static str),
}

impl fmt::Display for DecompressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CompressedTooLarge { limit } => {
                write!(f, "compressed message is over the {limit} byte cap")
            }
            Self::MessageTooLarge { limit } => {
                write!(f, "decompressed message is over the {limit} byte cap")
            }
            Self::Corrupt(e) => write!(f, "corrupt compressed stream: {e}"),
            Self::Unsupported(feature) => {
                write!(f, "compression needs the `{feature}` cargo feature")
            }
        }
    }
}

impl std::error::Error for DecompressError {}

#[cfg(test)]
mod tests {
    use super::FatalError;
    use crate::close_code::CloseCode;
    use crate::intents::Intents;

    #[test]
    fn disallowed_intents_names_the_privileged_ones() {
        let intents = Intents::GUILDS | Intents::GUILD_PRESENCES;
        let err = FatalError::from_close(CloseCode::DisallowedIntents, intents, None).unwrap();
        let msg = err.to_string();
        assert!(msg.contains("GUILD_PRESENCES"), "{msg}");
        assert!(msg.contains("developer portal"), "{msg}");
        assert!(!msg.contains("GUILD_MEMBERS"), "{msg}");
    }

    #[test]
    fn authentication_failed_says_token() {
        let err = FatalError::from_close(CloseCode::AuthenticationFailed, Intents::GUILDS, None);
        assert!(
            err.unwrap()
                .to_string()
                .contains("token is wrong or was reset")
        );
    }

    #[test]
    fn non_fatal_codes_are_not_errors() {
        assert!(FatalError::from_close(CloseCode::UnknownError, Intents::GUILDS, None).is_none());
    }
}
