//! Gateway opcodes (discord-api-docs `topics/opcodes-and-status-codes.mdx`,
//! "Gateway Opcodes").

/// A Gateway opcode, the `op` field of every payload.
///
/// Only the opcodes this crate acts on have names; any other value is kept
/// in [`OpCode::Other`] so a new opcode never breaks decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpCode {
    /// 0, received: an event was dispatched.
    Dispatch,
    /// 1, both ways: keep the connection alive (or Discord asks for one now).
    Heartbeat,
    /// 2, sent: start a new session.
    Identify,
    /// 3, sent: update the client's presence.
    PresenceUpdate,
    /// 4, sent: join, move or leave a voice channel.
    VoiceStateUpdate,
    /// 6, sent: resume a previous session.
    Resume,
    /// 7, received: reconnect and resume immediately.
    Reconnect,
    /// 8, sent: request guild members.
    RequestGuildMembers,
    /// 9, received: the session has been invalidated (`d` says whether it
    /// may be resumed).
    InvalidSession,
    /// 10, received: first message after connecting, with the heartbeat
    /// interval.
    Hello,
    /// 11, received: a heartbeat was acknowledged.
    HeartbeatAck,
    /// Any other opcode.
    Other(u8),
}

impl OpCode {
    /// The opcode for a numeric `op` value.
    #[must_use]
    pub const fn from_u8(op: u8) -> Self {
        match op {
            0 => Self::Dispatch,
            1 => Self::Heartbeat,
            2 => Self::Identify,
            3 => Self::PresenceUpdate,
            4 => Self::VoiceStateUpdate,
            6 => Self::Resume,
            7 => Self::Reconnect,
            8 => Self::RequestGuildMembers,
            9 => Self::InvalidSession,
            10 => Self::Hello,
            11 => Self::HeartbeatAck,
            other => Self::Other(other),
        }
    }

    /// The numeric `op` value.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Dispatch => 0,
            Self::Heartbeat => 1,
            Self::Identify => 2,
            Self::PresenceUpdate => 3,
            Self::VoiceStateUpdate => 4,
            Self::Resume => 6,
            Self::Reconnect => 7,
            Self::RequestGuildMembers => 8,
            Self::InvalidSession => 9,
            Self::Hello => 10,
            Self::HeartbeatAck => 11,
            Self::Other(op) => op,
        }
    }

    /// Whether the machine itself owns this opcode, so an application may not
    /// send it as a command (heartbeat, identify and resume are sent by the
    /// session machine only; the receive-only opcodes are never sent).
    #[must_use]
    pub const fn is_reserved(self) -> bool {
        matches!(
            self,
            Self::Dispatch
                | Self::Heartbeat
                | Self::Identify
                | Self::Resume
                | Self::Reconnect
                | Self::InvalidSession
                | Self::Hello
                | Self::HeartbeatAck
        )
    }
}

#[cfg(test)]
mod tests {
    use super::OpCode;

    #[test]
    fn round_trips_every_value() {
        for op in 0..=u8::MAX {
            assert_eq!(OpCode::from_u8(op).as_u8(), op);
        }
    }

    #[test]
    fn reserved_opcodes_are_not_commands() {
        assert!(OpCode::Identify.is_reserved());
        assert!(OpCode::Heartbeat.is_reserved());
        assert!(!OpCode::VoiceStateUpdate.is_reserved());
        assert!(!OpCode::Other(43).is_reserved());
    }
}
