//! WebSocket close codes of the hub and the mapping from tungstenite errors to them.
//!
//! tungstenite reports protocol errors as an `Err` and does not send a close frame itself
//! (snapview/tungstenite-rs#38), so the hub sends it: contract §3.6 asks for 1002 on RFC 6455
//! violations, 1007 on invalid UTF-8 and 1009 on a message over 4 KiB.

use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};

use crate::hub::CloseOrder;

/// 1001 "going away": the hub is shutting down, or a socket stopped answering pings.
pub const GOING_AWAY: u16 = 1001;
/// 1002 "protocol error" (RFC 6455 §7.4.1).
pub const PROTOCOL_ERROR: u16 = 1002;
/// 1007 "invalid frame payload data": text that is not UTF-8 (RFC 6455 §8.1).
pub const INVALID_PAYLOAD: u16 = 1007;
/// 1009 "message too big" (RFC 6455 §7.4.1).
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// 1011 "internal error": the stream backend or the JWT keys are unavailable.
pub const INTERNAL_ERROR: u16 = 1011;
/// 1013 "try again later": the client's queue overflowed (contract §3.6).
pub const TRY_AGAIN_LATER: u16 = 1013;
/// 4401: the auth message is missing, malformed, or its token is invalid (contract §3.1).
pub const UNAUTHORIZED: u16 = 4401;
/// 4408: no valid auth message within the deadline (contract §3.1).
pub const AUTH_TIMEOUT: u16 = 4408;

/// The close frame to send for a read error, or `None` when the connection is already gone
/// (I/O error, reset, closed): nothing can be sent then.
pub fn close_for_error(err: &WsError) -> Option<CloseOrder> {
    let (code, reason) = match err {
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
            (MESSAGE_TOO_BIG, "message over 4096 bytes")
        }
        WsError::Capacity(_) => (MESSAGE_TOO_BIG, "message too big"),
        WsError::Utf8(_) => (INVALID_PAYLOAD, "invalid utf-8 in text message"),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => return None,
        WsError::Protocol(_) | WsError::AttackAttempt => (PROTOCOL_ERROR, "protocol error"),
        _ => return None,
    };
    Some(CloseOrder { code, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_read_errors_to_close_codes() {
        let code = |e: WsError| close_for_error(&e).map(|o| o.code);
        assert_eq!(
            code(WsError::Capacity(CapacityError::MessageTooLong {
                size: 4097,
                max_size: 4096
            })),
            Some(MESSAGE_TOO_BIG)
        );
        assert_eq!(code(WsError::Utf8("bad".into())), Some(INVALID_PAYLOAD));
        for p in [
            ProtocolError::UnmaskedFrameFromClient,
            ProtocolError::NonZeroReservedBits,
            ProtocolError::UnknownControlFrameType(11),
            ProtocolError::UnknownDataFrameType(3),
            ProtocolError::FragmentedControlFrame,
            ProtocolError::ControlFrameTooBig,
            ProtocolError::UnexpectedContinueFrame,
        ] {
            assert_eq!(code(WsError::Protocol(p)), Some(PROTOCOL_ERROR));
        }
        assert_eq!(
            code(WsError::Protocol(
                ProtocolError::ResetWithoutClosingHandshake
            )),
            None
        );
        assert_eq!(code(WsError::ConnectionClosed), None);
        assert_eq!(
            code(WsError::Io(std::io::ErrorKind::BrokenPipe.into())),
            None
        );
    }
}
