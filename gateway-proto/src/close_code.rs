//! Close codes and what to do about each one.
//!
//! The Gateway close event codes are listed in discord-api-docs
//! `topics/opcodes-and-status-codes.mdx` ("Gateway Close Event Codes"); the
//! docs mark 4004 and 4010–4014 as "do not reconnect". The docs do not say
//! which reconnectable codes can resume: we follow `events/gateway.mdx`
//! ("Resuming": a close code that allows reconnecting, or no close code at
//! all, means resume), except 4007 ("invalid seq ... reconnect and start a
//! new session") and 4009 ("session timed out ... start a new one"), where a
//! RESUME would only be answered by an Invalid Session: we go straight to a
//! new session.

use std::fmt;

/// A close code received from Discord (or the lack of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseCode {
    /// 1000: normal closure.
    Normal,
    /// 1001: going away.
    GoingAway,
    /// The transport closed without a close frame (1005/1006, a TCP reset, a
    /// TLS error, ...).
    Abnormal,
    /// 4000: unknown error ("try reconnecting").
    UnknownError,
    /// 4001: we sent an invalid opcode or payload for an opcode.
    UnknownOpcode,
    /// 4002: we sent a payload Discord could not decode.
    DecodeError,
    /// 4003: we sent a payload before identifying, or the session was
    /// invalidated.
    NotAuthenticated,
    /// 4004: the token in IDENTIFY is wrong.
    AuthenticationFailed,
    /// 4005: we sent more than one IDENTIFY.
    AlreadyAuthenticated,
    /// 4007: the sequence number in RESUME was invalid.
    InvalidSeq,
    /// 4008: we sent payloads too quickly.
    RateLimited,
    /// 4009: the session timed out.
    SessionTimedOut,
    /// 4010: invalid shard in IDENTIFY.
    InvalidShard,
    /// 4011: the session would handle too many guilds; sharding is required.
    ShardingRequired,
    /// 4012: invalid Gateway API version.
    InvalidApiVersion,
    /// 4013: invalid intents.
    InvalidIntents,
    /// 4014: disallowed (privileged, not enabled) intents.
    DisallowedIntents,
    /// Any other code.
    Other(u16),
}

/// What the session machine does after a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseAction {
    /// Reconnect and RESUME the session (if there is one).
    Resume,
    /// Reconnect and IDENTIFY a new session.
    NewSession,
    /// Stop: reconnecting cannot help until an operator fixes something.
    Fatal,
}

impl CloseCode {
    /// Classify a close. `None` means the transport closed without a close
    /// frame.
    #[must_use]
    pub const fn from_code(code: Option<u16>) -> Self {
        let Some(code) = code else {
            return Self::Abnormal;
        };
        match code {
            1000 => Self::Normal,
            1001 => Self::GoingAway,
            1005 | 1006 => Self::Abnormal,
            4000 => Self::UnknownError,
            4001 => Self::UnknownOpcode,
            4002 => Self::DecodeError,
            4003 => Self::NotAuthenticated,
            4004 => Self::AuthenticationFailed,
            4005 => Self::AlreadyAuthenticated,
            4007 => Self::InvalidSeq,
            4008 => Self::RateLimited,
            4009 => Self::SessionTimedOut,
            4010 => Self::InvalidShard,
            4011 => Self::ShardingRequired,
            4012 => Self::InvalidApiVersion,
            4013 => Self::InvalidIntents,
            4014 => Self::DisallowedIntents,
            other => Self::Other(other),
        }
    }

    /// The numeric code, `None` for [`CloseCode::Abnormal`].
    #[must_use]
    pub const fn code(self) -> Option<u16> {
        Some(match self {
            Self::Normal => 1000,
            Self::GoingAway => 1001,
            Self::Abnormal => return None,
            Self::UnknownError => 4000,
            Self::UnknownOpcode => 4001,
            Self::DecodeError => 4002,
            Self::NotAuthenticated => 4003,
            Self::AuthenticationFailed => 4004,
            Self::AlreadyAuthenticated => 4005,
            Self::InvalidSeq => 4007,
            Self::RateLimited => 4008,
            Self::SessionTimedOut => 4009,
            Self::InvalidShard => 4010,
            Self::ShardingRequired => 4011,
            Self::InvalidApiVersion => 4012,
            Self::InvalidIntents => 4013,
            Self::DisallowedIntents => 4014,
            Self::Other(code) => code,
        })
    }

    /// What to do after Discord closed the connection with this code.
    ///
    /// A 1000/1001 *from Discord* does not invalidate the session (only a
    /// 1000/1001 that *we* send does, `events/gateway.mdx` "Initiating a
    /// Disconnect"), so those resume like any other reconnectable close; an
    /// unknown code resumes too ("try to resume, otherwise reconnect"). The
    /// resume circuit breaker turns a resume that keeps failing into a new
    /// session, so this never loops.
    #[must_use]
    pub const fn action(self) -> CloseAction {
        match self {
            Self::InvalidSeq | Self::SessionTimedOut => CloseAction::NewSession,
            Self::AuthenticationFailed
            | Self::InvalidShard
            | Self::ShardingRequired
            | Self::InvalidApiVersion
            | Self::InvalidIntents
            | Self::DisallowedIntents => CloseAction::Fatal,
            _ => CloseAction::Resume,
        }
    }

    /// A short description in plain words.
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Self::Normal => "normal closure",
            Self::GoingAway => "going away",
            Self::Abnormal => "closed without a close frame",
            Self::UnknownError => "unknown error",
            Self::UnknownOpcode => "unknown opcode",
            Self::DecodeError => "decode error",
            Self::NotAuthenticated => "not authenticated",
            Self::AuthenticationFailed => "authentication failed",
            Self::AlreadyAuthenticated => "already authenticated",
            Self::InvalidSeq => "invalid seq",
            Self::RateLimited => "rate limited",
            Self::SessionTimedOut => "session timed out",
            Self::InvalidShard => "invalid shard",
            Self::ShardingRequired => "sharding required",
            Self::InvalidApiVersion => "invalid api version",
            Self::InvalidIntents => "invalid intents",
            Self::DisallowedIntents => "disallowed intents",
            Self::Other(_) => "unrecognised close code",
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code() {
            Some(code) => write!(f, "{code} ({})", self.description()),
            None => f.write_str(self.description()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CloseAction, CloseCode};

    #[test]
    fn classifies_every_documented_code() {
        let expected = [
            (4000, CloseAction::Resume),
            (4001, CloseAction::Resume),
            (4002, CloseAction::Resume),
            (4003, CloseAction::Resume),
            (4004, CloseAction::Fatal),
            (4005, CloseAction::Resume),
            (4007, CloseAction::NewSession),
            (4008, CloseAction::Resume),
            (4009, CloseAction::NewSession),
            (4010, CloseAction::Fatal),
            (4011, CloseAction::Fatal),
            (4012, CloseAction::Fatal),
            (4013, CloseAction::Fatal),
            (4014, CloseAction::Fatal),
            (4006, CloseAction::Resume),
            (4999, CloseAction::Resume),
            (1000, CloseAction::Resume),
            (1001, CloseAction::Resume),
            (1006, CloseAction::Resume),
        ];
        for (code, action) in expected {
            let close = CloseCode::from_code(Some(code));
            assert_eq!(close.action(), action, "{code}");
            if code != 1006 {
                assert_eq!(close.code(), Some(code));
            }
        }
        assert_eq!(CloseCode::from_code(None), CloseCode::Abnormal);
        assert_eq!(CloseCode::Abnormal.action(), CloseAction::Resume);
    }

    #[test]
    fn displays_code_and_meaning() {
        assert_eq!(
            CloseCode::from_code(Some(4014)).to_string(),
            "4014 (disallowed intents)"
        );
    }
}
