//! Gateway opcodes and close codes (`developers/topics/opcodes-and-status-codes.mdx`).

/// op 0 Dispatch (receive).
pub(crate) const OP_DISPATCH: u64 = 0;
/// op 1 Heartbeat (send/receive).
pub(crate) const OP_HEARTBEAT: u64 = 1;
/// op 2 Identify (send).
pub(crate) const OP_IDENTIFY: u64 = 2;
/// op 3 Presence Update (send).
pub(crate) const OP_PRESENCE_UPDATE: u64 = 3;
/// op 4 Voice State Update (send).
pub(crate) const OP_VOICE_STATE_UPDATE: u64 = 4;
/// op 6 Resume (send).
pub(crate) const OP_RESUME: u64 = 6;
/// op 7 Reconnect (receive).
pub(crate) const OP_RECONNECT: u64 = 7;
/// op 8 Request Guild Members (send).
pub(crate) const OP_REQUEST_GUILD_MEMBERS: u64 = 8;
/// op 9 Invalid Session (receive).
pub(crate) const OP_INVALID_SESSION: u64 = 9;
/// op 10 Hello (receive).
pub(crate) const OP_HELLO: u64 = 10;
/// op 11 Heartbeat ACK (receive).
pub(crate) const OP_HEARTBEAT_ACK: u64 = 11;
/// op 31 Request Soundboard Sounds (send).
pub(crate) const OP_REQUEST_SOUNDBOARD_SOUNDS: u64 = 31;
/// op 43 Request Channel Info (send).
pub(crate) const OP_REQUEST_CHANNEL_INFO: u64 = 43;

/// Whether a client may send this opcode at all ("Client Action" send column).
pub(crate) fn client_may_send(op: u64) -> bool {
    matches!(
        op,
        OP_HEARTBEAT
            | OP_IDENTIFY
            | OP_PRESENCE_UPDATE
            | OP_VOICE_STATE_UPDATE
            | OP_RESUME
            | OP_REQUEST_GUILD_MEMBERS
            | OP_REQUEST_SOUNDBOARD_SOUNDS
            | OP_REQUEST_CHANNEL_INFO
    )
}

/// 4000 Unknown error.
pub(crate) const UNKNOWN_ERROR: u16 = 4000;
/// 4001 Unknown opcode.
pub(crate) const UNKNOWN_OPCODE: u16 = 4001;
/// 4002 Decode error (also: a payload over 4096 bytes, gateway.mdx "Sending Events").
pub(crate) const DECODE_ERROR: u16 = 4002;
/// 4003 Not authenticated.
pub(crate) const NOT_AUTHENTICATED: u16 = 4003;
/// 4004 Authentication failed.
pub(crate) const AUTHENTICATION_FAILED: u16 = 4004;
/// 4005 Already authenticated.
pub(crate) const ALREADY_AUTHENTICATED: u16 = 4005;
/// 4007 Invalid seq.
pub(crate) const INVALID_SEQ: u16 = 4007;
/// 4008 Rate limited.
pub(crate) const RATE_LIMITED: u16 = 4008;
/// 4009 Session timed out.
pub(crate) const SESSION_TIMED_OUT: u16 = 4009;
/// 4010 Invalid shard.
pub(crate) const INVALID_SHARD: u16 = 4010;
/// 4012 Invalid API version.
pub(crate) const INVALID_API_VERSION: u16 = 4012;
/// 4013 Invalid intent(s).
pub(crate) const INVALID_INTENTS: u16 = 4013;
/// 4014 Disallowed intent(s).
pub(crate) const DISALLOWED_INTENTS: u16 = 4014;

/// Whether the session survives the sim closing with `code`. The close code table says
/// 4007 and 4009 mean "start a new session", and 4004/4010-4014 are not reconnectable;
/// other codes (and op 7) leave the session resumable.
pub(crate) fn keeps_session(code: u16) -> bool {
    !matches!(
        code,
        AUTHENTICATION_FAILED | INVALID_SEQ | SESSION_TIMED_OUT | 4010..=4014 | 1000 | 1001
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_survival_follows_the_table() {
        assert!(keeps_session(UNKNOWN_ERROR));
        assert!(keeps_session(RATE_LIMITED));
        assert!(keeps_session(DECODE_ERROR));
        assert!(!keeps_session(SESSION_TIMED_OUT));
        assert!(!keeps_session(INVALID_SEQ));
        assert!(!keeps_session(DISALLOWED_INTENTS));
    }

    #[test]
    fn server_only_opcodes_are_refused() {
        assert!(!client_may_send(OP_DISPATCH));
        assert!(!client_may_send(OP_RECONNECT));
        assert!(!client_may_send(OP_INVALID_SESSION));
        assert!(!client_may_send(OP_HELLO));
        assert!(!client_may_send(OP_HEARTBEAT_ACK));
        assert!(!client_may_send(99));
        assert!(client_may_send(OP_RESUME));
    }
}
