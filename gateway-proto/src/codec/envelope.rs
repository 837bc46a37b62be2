//! Reading the payload structure `{op, d, s, t}` without touching `d`.
//!
//! Discord sends the envelope keys first and `d` last
//! (`{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{...}}`). That exact layout is
//! matched with literal comparisons; otherwise a general fast path scans the
//! keys before `d` by hand and takes `d` as the slice up to the closing
//! brace, so an unwanted event costs a few dozen bytes of scanning whatever
//! its size. Anything unusual (escapes in keys or `t`, `d` not last, odd
//! whitespace) falls back to serde_json, which validates everything; a `d`
//! slice from the fast path is validated when (and only if) it is parsed,
//! and re-extracted through serde_json if that fails.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::Frame;
use crate::opcode::OpCode;

/// The `d` field of a payload, not yet parsed.
#[derive(Debug, Clone, Copy)]
pub struct RawData<'a> {
    bytes: &'a [u8],
    /// The whole message when `bytes` came from the fast path and is not
    /// validated yet, to re-extract `d` through serde_json if needed.
    message: Option<&'a [u8]>,
}

impl<'a> RawData<'a> {
    /// `d` from already-validated JSON text.
    #[must_use]
    pub const fn new(json: &'a str) -> Self {
        Self {
            bytes: json.as_bytes(),
            message: None,
        }
    }

    /// The bytes of `d` as received.
    #[must_use]
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Parse `d` into `T`.
    ///
    /// # Errors
    ///
    /// The serde_json error if `d` does not have `T`'s shape.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match serde_json::from_slice(self.bytes) {
            Ok(value) => Ok(value),
            Err(e) => match self.reextract()? {
                Some(d) => serde_json::from_str(d.get()),
                None => Err(e),
            },
        }
    }

    /// Copy `d` out as an owned, validated [`RawValue`].
    ///
    /// # Errors
    ///
    /// The serde_json error if `d` is not valid JSON.
    pub fn to_raw_value(&self) -> Result<Box<RawValue>, serde_json::Error> {
        let direct = std::str::from_utf8(self.bytes)
            .map_err(|_| ())
            .and_then(|s| RawValue::from_string(s.to_owned()).map_err(|_| ()));
        match direct {
            Ok(raw) => Ok(raw),
            Err(()) => match self.reextract()? {
                Some(d) => Ok(d.to_owned()),
                None => RawValue::from_string(String::from_utf8_lossy(self.bytes).into_owned()),
            },
        }
    }

    /// Re-read `d` from the whole message through serde_json (fast-path
    /// slices only).
    fn reextract(&self) -> Result<Option<&'a RawValue>, serde_json::Error> {
        let Some(message) = self.message else {
            return Ok(None);
        };
        let envelope: SerdeEnvelope<'a> = serde_json::from_slice(message)?;
        Ok(envelope.d)
    }
}

#[derive(Deserialize)]
struct SerdeEnvelope<'a> {
    op: u8,
    #[serde(default)]
    s: Option<u64>,
    #[serde(default, borrow)]
    t: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    d: Option<&'a RawValue>,
}

/// Read the envelope: the exact dispatch layout Discord sends, else the
/// general fast path, else serde_json.
#[inline]
pub(crate) fn read(message: &[u8]) -> Result<Frame<'_>, serde_json::Error> {
    match dispatch_layout(message) {
        Some(frame) => Ok(frame),
        None => read_slow(message),
    }
}

#[cold]
#[inline(never)]
fn read_slow(message: &[u8]) -> Result<Frame<'_>, serde_json::Error> {
    if let Some(frame) = fast(message) {
        return Ok(frame);
    }
    let e: SerdeEnvelope<'_> = serde_json::from_slice(message)?;
    Ok(Frame {
        op: OpCode::from_u8(e.op),
        seq: e.s,
        name: e.t,
        data: e.d.map(|d| RawData::new(d.get())),
    })
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    #[inline]
    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_ws();
        if self.peek()? == byte {
            self.pos += 1;
            Some(())
        } else {
            None
        }
    }

    /// The bytes of a string without escapes or control characters; `None`
    /// (fall back) otherwise.
    #[inline]
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = self.bytes.get(self.pos..)?;
        let len = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[len] != b'"' {
            return None;
        }
        self.pos += len + 1;
        Some(&rest[..len])
    }

    #[inline]
    fn null(&mut self) -> bool {
        self.skip_ws();
        let is_null = self
            .bytes
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(b"null"));
        if is_null {
            self.pos += 4;
        }
        is_null
    }

    #[inline]
    fn unsigned(&mut self) -> Option<u64> {
        self.skip_ws();
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(b @ b'0'..=b'9') = self.peek() {
            value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            self.pos += 1;
        }
        // Leading zeros are not JSON; let serde_json report them.
        let digits = self.pos - start;
        (digits > 0 && !(digits > 1 && self.bytes[start] == b'0')).then_some(value)
    }
}

/// Leading decimal digits of `bytes` as a JSON unsigned integer (no
/// leading zeros), and the rest.
#[inline]
fn digits(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 || (len > 1 && bytes[0] == b'0') {
        return None;
    }
    let mut value: u64 = 0;
    for &b in &bytes[..len] {
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some((value, &bytes[len..]))
}

/// `d` of a message whose `d` starts at `start`: everything up to the final
/// closing brace.
#[inline]
fn trailing_d(message: &[u8], start: usize) -> Option<Option<RawData<'_>>> {
    let mut end = message.trim_ascii_end().len();
    if end <= start + 1 || message[end - 1] != b'}' {
        return None;
    }
    end -= 1;
    let bytes = message.get(start..end)?.trim_ascii();
    if bytes.is_empty() {
        return None;
    }
    Some((bytes != b"null").then_some(RawData {
        bytes,
        message: Some(message),
    }))
}

/// The byte layout of every dispatch Discord sends,
/// `{"t":"NAME","s":N,"op":0,"d":...}`, matched with literal comparisons.
#[inline]
fn dispatch_layout(message: &[u8]) -> Option<Frame<'_>> {
    let rest = message.strip_prefix(br#"{"t":""#)?;
    let name_len = rest
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    if rest[name_len] != b'"' {
        return None;
    }
    let name = std::str::from_utf8(&rest[..name_len]).ok()?;
    let rest = rest[name_len + 1..].strip_prefix(br#","s":"#)?;
    let (s, rest) = digits(rest)?;
    let rest = rest.strip_prefix(br#","op":"#)?;
    let (op, rest) = digits(rest)?;
    let rest = rest.strip_prefix(br#","d":"#)?;
    let d = trailing_d(message, message.len() - rest.len())?;
    Some(Frame {
        op: OpCode::from_u8(u8::try_from(op).ok()?),
        seq: Some(s),
        name: Some(Cow::Borrowed(name)),
        data: d,
    })
}

/// The hand-written general fast path; `None` means "use serde_json".
fn fast(message: &[u8]) -> Option<Frame<'_>> {
    let mut c = Cursor {
        bytes: message,
        pos: 0,
    };
    c.eat(b'{')?;
    let mut op = None;
    let mut s = None;
    let mut t = None;
    loop {
        let key = c.plain_string()?;
        c.eat(b':')?;
        match key {
            b"op" => op = Some(u8::try_from(c.unsigned()?).ok()?),
            b"s" => s = if c.null() { None } else { Some(c.unsigned()?) },
            b"t" => {
                t = if c.null() {
                    None
                } else {
                    Some(std::str::from_utf8(c.plain_string()?).ok()?)
                };
            }
            b"d" => {
                c.skip_ws();
                let d = trailing_d(message, c.pos)?;
                return Some(Frame {
                    op: OpCode::from_u8(op?),
                    seq: s,
                    name: t.map(Cow::Borrowed),
                    data: d,
                });
            }
            _ => return None,
        }
        c.skip_ws();
        match c.peek()? {
            b',' => c.pos += 1,
            b'}' => {
                c.pos += 1;
                c.skip_ws();
                if c.pos != message.len() {
                    return None;
                }
                return Some(Frame {
                    op: OpCode::from_u8(op?),
                    seq: s,
                    name: t.map(Cow::Borrowed),
                    data: None,
                });
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{fast, read};

    #[test]
    fn fast_path_reads_discord_order() {
        let msg = br#"{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"content":"}"}}"#;
        let e = fast(msg).unwrap();
        assert_eq!(
            (e.op.as_u8(), e.seq, e.name.as_deref()),
            (0, Some(42), Some("MESSAGE_CREATE"))
        );
        assert_eq!(e.data.unwrap().as_bytes(), br#"{"content":"}"}"#);
    }

    #[test]
    fn dispatch_layout_matches_discord_bytes() {
        let msg = br#"{"t":"TYPING_START","s":7,"op":0,"d":{"a":[1]}} "#;
        let e = super::dispatch_layout(msg).unwrap();
        assert_eq!(
            (e.op.as_u8(), e.seq, e.name.as_deref()),
            (0, Some(7), Some("TYPING_START"))
        );
        assert_eq!(e.data.unwrap().as_bytes(), br#"{"a":[1]}"#);
        assert!(super::dispatch_layout(br#"{"t":"X","s":07,"op":0,"d":1}"#).is_none());
        assert!(super::dispatch_layout(br#"{"t":"X","s":1,"op":0,"d":}"#).is_none());
        assert!(super::dispatch_layout(br#"{"t":"X","s":1,"op":0,"d":1"#).is_none());
        assert!(super::dispatch_layout(br#"{"t":"X\"","s":1,"op":0,"d":1}"#).is_none());
    }

    #[test]
    fn fast_path_handles_nulls_and_missing_d() {
        let e = fast(br#"{"t":null,"s":null,"op":11,"d":null}"#).unwrap();
        assert_eq!((e.op.as_u8(), e.seq, e.name), (11, None, None));
        assert!(e.data.is_none());
        let e = fast(br#"{"op":11}"#).unwrap();
        assert_eq!(e.op.as_u8(), 11);
        assert!(fast(br#"{"op":11} x"#).is_none());
    }

    #[test]
    fn unusual_shapes_fall_back_to_serde() {
        // `d` first, escapes in `t`, unknown keys: all still decode.
        let e = read(br#"{"d":{"a":1},"op":0,"s":3,"t":"X"}"#).unwrap();
        assert_eq!(
            (e.op.as_u8(), e.seq, e.name.as_deref()),
            (0, Some(3), Some("X"))
        );
        assert_eq!(e.data.unwrap().as_bytes(), br#"{"a":1}"#);
        let e = read(br#"{"t":"A\u0042","op":0,"d":1}"#).unwrap();
        assert_eq!(e.name.as_deref(), Some("AB"));
        // Broken JSON inside (or after) `d` is only noticed when `d` is used.
        let broken = read(br#"{"op":0,"d":{}, "x": }"#).unwrap();
        assert!(broken.data.unwrap().parse::<serde_json::Value>().is_err());
        assert!(broken.data.unwrap().to_raw_value().is_err());
        assert!(read(br#"{"op":300}"#).is_err());
        assert!(read(br#"{"op":01}"#).is_err());
    }

    #[test]
    fn trailing_keys_after_d_are_recovered_on_parse() {
        let msg = br#"{"op":0,"t":"X","s":1,"d":{"a":1},"extra":true}"#;
        let e = read(msg).unwrap();
        let d = e.data.unwrap();
        let v: serde_json::Value = d.parse().unwrap();
        assert_eq!(v["a"], 1);
        assert_eq!(d.to_raw_value().unwrap().get(), r#"{"a":1}"#);
    }
}
