//! Commands the application sends over the session (op 3, 4, 8, ...).

use serde::Serialize;
use serde_json::value::RawValue;

use crate::codec::{MAX_PAYLOAD_SIZE, encode_command};
use crate::error::SendError;
use crate::opcode::OpCode;

/// An encoded command, checked against the payload size limit and the
/// opcodes the machine reserves for itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    op: u8,
    payload: String,
}

impl Command {
    /// A command with opcode `op` and data `d`.
    ///
    /// # Errors
    ///
    /// [`SendError::ReservedOpcode`] for opcodes the machine owns (0, 1, 2,
    /// 6, 7, 9, 10, 11); [`SendError::TooLarge`] if the payload is over 4096
    /// bytes (`events/gateway.mdx`, "Sending Events": bigger payloads get
    /// the connection closed with 4002, so they are never sent).
    pub fn new(op: u8, data: &RawValue) -> Result<Self, SendError> {
        if OpCode::from_u8(op).is_reserved() {
            return Err(SendError::ReservedOpcode(op));
        }
        let payload = encode_command(op, data);
        if payload.len() > MAX_PAYLOAD_SIZE {
            return Err(SendError::TooLarge {
                size: payload.len(),
                limit: MAX_PAYLOAD_SIZE,
            });
        }
        Ok(Self { op, payload })
    }

    /// A command whose data is any serializable value.
    ///
    /// # Errors
    ///
    /// As [`Command::new`], plus [`SendError::Encode`] if `data` cannot be
    /// serialized.
    pub fn from_data<T: Serialize + ?Sized>(op: u8, data: &T) -> Result<Self, SendError> {
        let raw =
            serde_json::value::to_raw_value(data).map_err(|e| SendError::Encode(e.to_string()))?;
        Self::new(op, &raw)
    }

    /// Update Voice State (op 4): join `channel_id` in `guild_id`, or leave
    /// voice with `None` (`events/gateway-events.mdx`, "Update Voice State").
    ///
    /// # Errors
    ///
    /// As [`Command::from_data`].
    pub fn update_voice_state(
        guild_id: &str,
        channel_id: Option<&str>,
        self_mute: bool,
        self_deaf: bool,
    ) -> Result<Self, SendError> {
        #[derive(Serialize)]
        struct UpdateVoiceState<'a> {
            guild_id: &'a str,
            channel_id: Option<&'a str>,
            self_mute: bool,
            self_deaf: bool,
        }
        Self::from_data(
            OpCode::VoiceStateUpdate.as_u8(),
            &UpdateVoiceState {
                guild_id,
                channel_id,
                self_mute,
                self_deaf,
            },
        )
    }

    /// The opcode.
    #[must_use]
    pub const fn op(&self) -> u8 {
        self.op
    }

    /// The encoded payload, exactly as it will be sent.
    #[must_use]
    pub fn payload(&self) -> &str {
        &self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::Command;
    use crate::error::SendError;

    #[test]
    fn refuses_reserved_opcodes() {
        for op in [0, 1, 2, 6, 7, 9, 10, 11] {
            assert_eq!(
                Command::from_data(op, &serde_json::json!({})),
                Err(SendError::ReservedOpcode(op))
            );
        }
    }

    #[test]
    fn refuses_payloads_over_4096_bytes() {
        let big = "x".repeat(4096);
        let err = Command::from_data(3, &serde_json::json!({ "status": big })).unwrap_err();
        assert!(matches!(err, SendError::TooLarge { limit: 4096, .. }));
        let fits = "x".repeat(4096 - r#"{"op":3,"d":""}"#.len());
        assert_eq!(Command::from_data(3, &fits).unwrap().payload().len(), 4096);
    }

    #[test]
    fn voice_state_update() {
        let cmd = Command::update_voice_state("1", None, false, true).unwrap();
        assert_eq!(cmd.op(), 4);
        assert_eq!(
            cmd.payload(),
            r#"{"op":4,"d":{"guild_id":"1","channel_id":null,"self_mute":false,"self_deaf":true}}"#
        );
    }
}
