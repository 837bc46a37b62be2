//! Decoding and encoding of Gateway payloads: pure functions over
//! caller-owned buffers, independent of the session machine.
//!
//! Decoding reads the payload structure `{op, d, s, t}`
//! (`events/gateway-events.mdx`, "Payload Structure") without building a
//! tree for `d`: `d` stays an unparsed [`RawData`] slice until the filter
//! decides the event is wanted, and only then is it parsed (or copied out
//! raw). An unwanted event is dropped without `d` ever being scanned.

use std::borrow::Cow;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use serde_json::value::RawValue;

use crate::config::{ConnectionProperties, Token};
use crate::dispatch::{
    Channel, Decision, DispatchEvent, EventKind, GuildCreate, MinimalReady, RawDispatch, Ready,
    UnavailableGuild, VoiceState,
};
use crate::error::DecodeError;
use crate::intents::Intents;
use crate::opcode::OpCode;

mod envelope;

pub use envelope::RawData;

/// Largest payload Discord accepts from a client (`events/gateway.mdx`,
/// "Sending Events": "Must not exceed 4096 bytes").
pub const MAX_PAYLOAD_SIZE: usize = 4096;

/// One decoded payload, borrowing from the input buffer.
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    /// The opcode.
    pub op: OpCode,
    /// The sequence number (`s`), dispatches only.
    pub seq: Option<u64>,
    /// The dispatch name (`t`), dispatches only.
    pub name: Option<Cow<'a, str>>,
    /// The `d` field, unparsed; `None` when absent or `null`.
    pub data: Option<RawData<'a>>,
}

/// Decode the payload structure of one complete (decompressed) message,
/// leaving `d` unparsed. `d` is not validated here: broken JSON inside it is
/// reported when (if) it is parsed.
///
/// # Errors
///
/// [`DecodeError::Json`] if `bytes` is not a JSON object with a numeric `op`
/// (0..=255).
#[inline]
pub fn decode_frame(bytes: &[u8]) -> Result<Frame<'_>, DecodeError> {
    envelope::read(bytes).map_err(|e| decode_error(&e))
}

#[cold]
fn decode_error(e: &serde_json::Error) -> DecodeError {
    DecodeError::Json(e.to_string())
}

#[derive(Deserialize)]
struct Hello {
    heartbeat_interval: u64,
}

/// The heartbeat interval from a HELLO's `d`.
///
/// # Errors
///
/// [`DecodeError::Payload`] if `d` lacks a positive `heartbeat_interval`.
pub fn decode_hello(data: Option<RawData<'_>>) -> Result<Duration, DecodeError> {
    let hello: Hello = parse(data).map_err(|e| DecodeError::payload("hello", &e))?;
    if hello.heartbeat_interval == 0 {
        return Err(DecodeError::Payload {
            what: "hello".into(),
            reason: "heartbeat_interval is 0".into(),
        });
    }
    Ok(Duration::from_millis(hello.heartbeat_interval))
}

/// Whether an Invalid Session (op 9) allows resuming: its `d` boolean. A
/// missing or malformed `d` counts as `false` (start a new session), the safe
/// reading of `events/gateway-events.mdx` "Invalid Session".
#[must_use]
pub fn decode_invalid_session(data: Option<RawData<'_>>) -> bool {
    data.is_some_and(|d| d.as_bytes().trim_ascii() == b"true")
}

/// Parse an optional `d` (absent means `null`).
fn parse<T: DeserializeOwned>(data: Option<RawData<'_>>) -> Result<T, serde_json::Error> {
    data.unwrap_or(RawData::new("null")).parse()
}

/// The fields of READY the session machine needs: `(session_id,
/// resume_gateway_url)`.
///
/// # Errors
///
/// [`DecodeError::Payload`] if either field is missing.
pub fn decode_ready_session(data: Option<RawData<'_>>) -> Result<(String, String), DecodeError> {
    let ready: MinimalReady = parse(data).map_err(|e| DecodeError::payload("READY", &e))?;
    Ok((ready.session_id, ready.resume_gateway_url))
}

/// Turn a dispatch's `d` into a [`DispatchEvent`] as `decision` says:
/// parsed into a typed struct, copied out raw, or dropped (`Ok(None)`)
/// without allocating.
///
/// # Errors
///
/// [`DecodeError::Payload`] if a typed event's `d` does not have the
/// documented shape.
pub fn decode_dispatch(
    name: &str,
    data: Option<RawData<'_>>,
    decision: Decision,
) -> Result<Option<DispatchEvent>, DecodeError> {
    let parse_err = |e: serde_json::Error| DecodeError::payload(name, &e);
    let event = match decision {
        Decision::Drop => return Ok(None),
        Decision::Raw => {
            let data = data
                .unwrap_or(RawData::new("null"))
                .to_raw_value()
                .map_err(parse_err)?;
            DispatchEvent::Raw(RawDispatch {
                name: name.to_owned(),
                data,
            })
        }
        Decision::Typed(kind) => match kind {
            EventKind::Ready => {
                DispatchEvent::Ready(Box::new(parse::<Ready>(data).map_err(parse_err)?))
            }
            EventKind::Resumed => DispatchEvent::Resumed,
            EventKind::GuildCreate => {
                DispatchEvent::GuildCreate(Box::new(parse::<GuildCreate>(data).map_err(parse_err)?))
            }
            EventKind::GuildDelete => {
                DispatchEvent::GuildDelete(parse::<UnavailableGuild>(data).map_err(parse_err)?)
            }
            EventKind::VoiceStateUpdate => DispatchEvent::VoiceStateUpdate(Box::new(
                parse::<VoiceState>(data).map_err(parse_err)?,
            )),
            EventKind::ChannelCreate => {
                DispatchEvent::ChannelCreate(Box::new(parse::<Channel>(data).map_err(parse_err)?))
            }
            EventKind::ChannelUpdate => {
                DispatchEvent::ChannelUpdate(Box::new(parse::<Channel>(data).map_err(parse_err)?))
            }
            EventKind::ChannelDelete => {
                DispatchEvent::ChannelDelete(Box::new(parse::<Channel>(data).map_err(parse_err)?))
            }
        },
    };
    Ok(Some(event))
}

/// Encode a Heartbeat (op 1); `d` is the last sequence number received, or
/// `null` (`events/gateway.mdx`, "Sending Heartbeats").
#[must_use]
pub fn encode_heartbeat(seq: Option<u64>) -> String {
    match seq {
        Some(seq) => format!(r#"{{"op":1,"d":{seq}}}"#),
        None => r#"{"op":1,"d":null}"#.to_owned(),
    }
}

/// The fields of an Identify (op 2) payload (`events/gateway-events.mdx`,
/// "Identify Structure").
#[derive(Debug, Clone, Copy)]
pub struct IdentifyFields<'a> {
    /// The bot token.
    pub token: &'a Token,
    /// Intents.
    pub intents: Intents,
    /// Connection properties.
    pub properties: &'a ConnectionProperties,
    /// `[shard_id, shard_count]`.
    pub shard: Option<[u32; 2]>,
    /// `large_threshold` (50..=250).
    pub large_threshold: Option<u8>,
}

/// Encode an Identify (op 2). Payload compression stays off (`compress`
/// omitted): transport compression is the documented way to compress.
#[must_use]
pub fn encode_identify(fields: &IdentifyFields<'_>) -> String {
    let mut d = json!({
        "token": fields.token.expose_secret(),
        "intents": fields.intents.bits(),
        "properties": fields.properties,
    });
    if let Some(map) = d.as_object_mut() {
        if let Some(shard) = fields.shard {
            map.insert("shard".into(), json!(shard));
        }
        if let Some(threshold) = fields.large_threshold {
            map.insert("large_threshold".into(), json!(threshold));
        }
    }
    json!({ "op": 2, "d": d }).to_string()
}

/// Encode a Resume (op 6) (`events/gateway-events.mdx`, "Resume Structure").
#[must_use]
pub fn encode_resume(token: &Token, session_id: &str, seq: u64) -> String {
    json!({
        "op": 6,
        "d": { "token": token.expose_secret(), "session_id": session_id, "seq": seq },
    })
    .to_string()
}

/// Encode a command payload `{"op": op, "d": data}`.
#[must_use]
pub fn encode_command(op: u8, data: &RawValue) -> String {
    format!(r#"{{"op":{op},"d":{}}}"#, data.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_envelope_without_parsing_d() {
        let bytes = br#"{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"content":"hi","nested":[1,2,{"x":null}]}}"#;
        let frame = decode_frame(bytes).unwrap();
        assert_eq!(frame.op, OpCode::Dispatch);
        assert_eq!(frame.seq, Some(42));
        assert_eq!(frame.name.as_deref(), Some("MESSAGE_CREATE"));
        assert_eq!(
            frame.data.unwrap().as_bytes(),
            br#"{"content":"hi","nested":[1,2,{"x":null}]}"#
        );
    }

    #[test]
    fn decodes_heartbeat_ack_without_d() {
        let frame = decode_frame(br#"{"op":11}"#).unwrap();
        assert_eq!(frame.op, OpCode::HeartbeatAck);
        assert!(frame.data.is_none());
        assert!(frame.seq.is_none());
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode_frame(b"not json").is_err());
        assert!(decode_frame(br#"{"d":1}"#).is_err());
        assert!(decode_frame(br#"{"op":"x"}"#).is_err());
        assert!(decode_frame(br#"{"op":999}"#).is_err());
    }

    #[test]
    fn hello_interval() {
        let frame = decode_frame(br#"{"op":10,"d":{"heartbeat_interval":41250}}"#).unwrap();
        assert_eq!(
            decode_hello(frame.data).unwrap(),
            Duration::from_millis(41250)
        );
        assert!(decode_hello(None).is_err());
    }

    #[test]
    fn invalid_session_flag() {
        let t = decode_frame(br#"{"op":9,"d":true}"#).unwrap();
        let f = decode_frame(br#"{"op":9,"d":false}"#).unwrap();
        assert!(decode_invalid_session(t.data));
        assert!(!decode_invalid_session(f.data));
        assert!(!decode_invalid_session(None));
    }

    #[test]
    fn typed_voice_state() {
        let d = RawData::new(
            r#"{"guild_id":"1","channel_id":null,"user_id":"2","session_id":"s","deaf":false,"mute":false,"self_deaf":true,"self_mute":true,"self_video":false,"suppress":false,"member":{"user":{"id":"2"}}}"#,
        );
        let event = decode_dispatch(
            "VOICE_STATE_UPDATE",
            Some(d),
            Decision::Typed(EventKind::VoiceStateUpdate),
        )
        .unwrap()
        .unwrap();
        let DispatchEvent::VoiceStateUpdate(state) = event else {
            panic!("wrong variant");
        };
        assert_eq!(state.channel_id, None);
        assert!(state.self_mute && state.self_deaf);
    }

    #[test]
    fn raw_and_dropped() {
        let d = RawData::new(r#"{"a": 1}"#);
        let raw = decode_dispatch("TYPING_START", Some(d), Decision::Raw)
            .unwrap()
            .unwrap();
        assert_eq!(raw.name(), "TYPING_START");
        assert!(
            decode_dispatch("TYPING_START", Some(d), Decision::Drop)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn encodes_payloads() {
        assert_eq!(encode_heartbeat(None), r#"{"op":1,"d":null}"#);
        assert_eq!(encode_heartbeat(Some(7)), r#"{"op":1,"d":7}"#);
        let token = Token::new("tok");
        let props = ConnectionProperties::default();
        let identify = encode_identify(&IdentifyFields {
            token: &token,
            intents: Intents::from_bits(129),
            properties: &props,
            shard: Some([0, 1]),
            large_threshold: None,
        });
        let v: serde_json::Value = serde_json::from_str(&identify).unwrap();
        assert_eq!(v["op"], 2);
        assert_eq!(v["d"]["intents"], 129);
        assert_eq!(v["d"]["shard"], json!([0, 1]));
        assert_eq!(v["d"]["token"], "tok");
        let resume = encode_resume(&token, "sid", 5);
        let v: serde_json::Value = serde_json::from_str(&resume).unwrap();
        assert_eq!(v["d"]["seq"], 5);
        assert_eq!(v["d"]["session_id"], "sid");
    }
}
