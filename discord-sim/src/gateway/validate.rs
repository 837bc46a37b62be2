//! Decoding and validating what clients send, as pure functions: each failure is the
//! close code Discord documents for it (`opcodes-and-status-codes.mdx`, "Gateway Close
//! Event Codes").

use serde_json::Value;

use super::codes;
use crate::config::intents;

/// The payload size limit (gateway.mdx "Sending Events": "Must not exceed 4096 bytes",
/// else close 4002).
pub(crate) const MAX_PAYLOAD: usize = 4096;

/// Close the connection with this code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reject {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
}

const fn reject(code: u16, reason: &'static str) -> Reject {
    Reject { code, reason }
}

/// A decoded gateway payload (gateway-events.mdx "Payload Structure": `op` and `d`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Payload {
    pub(crate) op: u64,
    pub(crate) d: Value,
}

/// Decodes one client message: JSON object with an integer `op`; otherwise 4002
/// ("You sent an invalid payload to Discord").
pub(crate) fn decode(raw: &[u8]) -> Result<Payload, Reject> {
    if raw.len() > MAX_PAYLOAD {
        return Err(reject(codes::DECODE_ERROR, "Payload too large."));
    }
    let value: Value = serde_json::from_slice(raw)
        .map_err(|_| reject(codes::DECODE_ERROR, "Error while decoding payload."))?;
    let Value::Object(mut map) = value else {
        return Err(reject(codes::DECODE_ERROR, "Error while decoding payload."));
    };
    let op = map
        .get("op")
        .and_then(Value::as_u64)
        .ok_or(reject(codes::DECODE_ERROR, "Error while decoding payload."))?;
    let d = map.remove("d").unwrap_or(Value::Null);
    Ok(Payload { op, d })
}

/// An accepted IDENTIFY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identify {
    pub(crate) intents: u64,
    pub(crate) shard: Option<[u64; 2]>,
}

/// Validates IDENTIFY's `d` (gateway-events.mdx "Identify Structure": `token`,
/// `properties {os, browser, device}`, `intents` required; `shard`, `compress`,
/// `large_threshold`, `presence` optional).
pub(crate) fn identify(
    d: &Value,
    token: &str,
    enabled_privileged: u64,
) -> Result<Identify, Reject> {
    let decode_error = reject(codes::DECODE_ERROR, "Error while decoding payload.");
    let obj = d.as_object().ok_or(decode_error.clone())?;
    let sent_token = obj
        .get("token")
        .and_then(Value::as_str)
        .ok_or(decode_error.clone())?;
    let props = obj
        .get("properties")
        .and_then(Value::as_object)
        .ok_or(decode_error.clone())?;
    for key in ["os", "browser", "device"] {
        if !props.get(key).is_some_and(Value::is_string) {
            return Err(decode_error);
        }
    }
    if let Some(c) = obj.get("compress") {
        if !c.is_boolean() {
            return Err(decode_error);
        }
    }
    if let Some(lt) = obj.get("large_threshold") {
        // "value between 50 and 250, total number of members where the gateway will stop
        // sending offline members".
        if !lt.as_u64().is_some_and(|n| (50..=250).contains(&n)) {
            return Err(decode_error);
        }
    }
    if !constant_time_eq(sent_token.as_bytes(), token.as_bytes()) {
        return Err(reject(
            codes::AUTHENTICATION_FAILED,
            "Authentication failed.",
        ));
    }
    let shard = match obj.get("shard") {
        None | Some(Value::Null) => None,
        Some(v) => Some(shard(v)?),
    };
    // gateway.mdx "Gateway Intents": invalid intents close 4013, privileged intents not
    // enabled for the app close 4014. Intents are mandatory since v8.
    let bits = obj
        .get("intents")
        .and_then(Value::as_u64)
        .ok_or(reject(codes::INVALID_INTENTS, "Invalid intent(s)."))?;
    if bits & !intents::KNOWN != 0 {
        return Err(reject(codes::INVALID_INTENTS, "Invalid intent(s)."));
    }
    if bits & intents::PRIVILEGED & !enabled_privileged != 0 {
        return Err(reject(codes::DISALLOWED_INTENTS, "Disallowed intent(s)."));
    }
    Ok(Identify {
        intents: bits,
        shard,
    })
}

/// `shard: [shard_id, num_shards]` with `shard_id < num_shards` (gateway.mdx "Sharding"),
/// else 4010.
fn shard(v: &Value) -> Result<[u64; 2], Reject> {
    let invalid = reject(codes::INVALID_SHARD, "Invalid shard.");
    let arr = v.as_array().ok_or(invalid.clone())?;
    let [id, count] = arr.as_slice() else {
        return Err(invalid);
    };
    let (Some(id), Some(count)) = (id.as_u64(), count.as_u64()) else {
        return Err(invalid);
    };
    if count == 0 || id >= count {
        return Err(invalid);
    }
    Ok([id, count])
}

/// An accepted-looking RESUME (gateway-events.mdx "Resume Structure": `token`,
/// `session_id`, `seq`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resume {
    pub(crate) session_id: String,
    pub(crate) seq: u64,
}

/// Validates RESUME's `d`: shape (4002) and token (4004).
pub(crate) fn resume(d: &Value, token: &str) -> Result<Resume, Reject> {
    let decode_error = reject(codes::DECODE_ERROR, "Error while decoding payload.");
    let obj = d.as_object().ok_or(decode_error.clone())?;
    let sent_token = obj
        .get("token")
        .and_then(Value::as_str)
        .ok_or(decode_error.clone())?;
    let session_id = obj
        .get("session_id")
        .and_then(Value::as_str)
        .ok_or(decode_error.clone())?;
    let seq = obj.get("seq").and_then(Value::as_u64).ok_or(decode_error)?;
    if !constant_time_eq(sent_token.as_bytes(), token.as_bytes()) {
        return Err(reject(
            codes::AUTHENTICATION_FAILED,
            "Authentication failed.",
        ));
    }
    Ok(Resume {
        session_id: session_id.to_owned(),
        seq,
    })
}

/// Heartbeat's `d` is the last sequence number or null (gateway-events.mdx "Heartbeat").
pub(crate) fn heartbeat(d: &Value) -> Result<(), Reject> {
    if d.is_null() || d.is_u64() {
        Ok(())
    } else {
        Err(reject(codes::DECODE_ERROR, "Error while decoding payload."))
    }
}

/// Compares tokens without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Replaces `d.token` with `"[redacted]"` before a payload is logged.
pub(crate) fn redact_token(d: &mut Value) {
    if let Some(t) = d.get_mut("token") {
        *t = Value::String("[redacted]".to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ident(token: &str, intents: Value) -> Value {
        json!({"token": token, "intents": intents,
               "properties": {"os": "linux", "browser": "t", "device": "t"}})
    }

    #[test]
    fn decode_rejects_bad_json_and_missing_op() {
        assert_eq!(decode(b"{").map_err(|r| r.code), Err(4002));
        assert_eq!(decode(b"[1]").map_err(|r| r.code), Err(4002));
        assert_eq!(decode(br#"{"d":1}"#).map_err(|r| r.code), Err(4002));
        let big = format!(r#"{{"op":1,"d":"{}"}}"#, "x".repeat(5000));
        assert_eq!(decode(big.as_bytes()).map_err(|r| r.code), Err(4002));
        assert_eq!(decode(br#"{"op":1,"d":null}"#).map(|p| p.op), Ok(1));
    }

    #[test]
    fn identify_checks_token_intents_and_shape() {
        let ok = identify(&ident("t", json!(129)), "t", 0);
        assert_eq!(ok.map(|i| i.intents), Ok(129));
        assert_eq!(
            identify(&ident("x", json!(129)), "t", 0).map_err(|r| r.code),
            Err(4004)
        );
        assert_eq!(
            identify(&ident("t", json!(1 << 30)), "t", 0).map_err(|r| r.code),
            Err(4013)
        );
        assert_eq!(
            identify(&ident("t", json!("129")), "t", 0).map_err(|r| r.code),
            Err(4013)
        );
        assert_eq!(
            identify(&ident("t", json!(-1)), "t", 0).map_err(|r| r.code),
            Err(4013)
        );
        assert_eq!(
            identify(&ident("t", json!(2)), "t", 0).map_err(|r| r.code),
            Err(4014)
        );
        assert!(identify(&ident("t", json!(2)), "t", 2).is_ok());
        let no_props = json!({"token": "t", "intents": 1});
        assert_eq!(identify(&no_props, "t", 0).map_err(|r| r.code), Err(4002));
    }

    #[test]
    fn identify_checks_shard() {
        let mut d = ident("t", json!(1));
        d["shard"] = json!([1, 1]);
        assert_eq!(identify(&d, "t", 0).map_err(|r| r.code), Err(4010));
        d["shard"] = json!([0, 1]);
        assert_eq!(identify(&d, "t", 0).map(|i| i.shard), Ok(Some([0, 1])));
    }

    #[test]
    fn resume_checks_shape_and_token() {
        let d = json!({"token": "t", "session_id": "s", "seq": 3});
        assert_eq!(resume(&d, "t").map(|r| r.seq), Ok(3));
        assert_eq!(resume(&d, "u").map_err(|r| r.code), Err(4004));
        assert_eq!(
            resume(&json!({"token": "t"}), "t").map_err(|r| r.code),
            Err(4002)
        );
    }

    #[test]
    fn redaction_hides_token() {
        let mut d = ident("secret", json!(1));
        redact_token(&mut d);
        assert_eq!(d["token"], "[redacted]");
    }
}
