//! Reading the payload structure `{op, d, s, t}` without touching `d`.
//!
//! Discord sends the envelope keys first and `d` last
//! (`{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{...}}`). The fast path scans
//! the keys before `d` by hand and takes `d` as the slice up to the closing
//! brace, so an unwanted event costs a few dozen bytes of scanning whatever
//! its size. Anything unusual (escapes in keys or `t`, `d` not last, odd
//! whitespace) falls back to serde_json, which validates everything; a `d`
//! slice from the fast path is validated when (and only if) it is parsed,
//! and re-extracted through serde_json if that fails.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

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

/// The payload structure with `d` unparsed.
#[derive(Debug, Clone)]
pub(crate) struct Envelope<'a> {
    pub(crate) op: u8,
    pub(crate) s: Option<u64>,
    pub(crate) t: Option<Cow<'a, str>>,
    pub(crate) d: Option<RawData<'a>>,
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

/// Read the envelope: the fast path, else serde_json.
pub(crate) fn read(message: &[u8]) -> Result<Envelope<'_>, serde_json::Error> {
    if let Some(envelope) = fast(message) {
        return Ok(envelope);
    }
    let e: SerdeEnvelope<'_> = serde_json::from_slice(message)?;
    Ok(Envelope {
        op: e.op,
        s: e.s,
        t: e.t,
        d: e.d.map(|d| RawData::new(d.get())),
    })
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_ws();
        (self.bytes.get(self.pos) == Some(&byte)).then(|| self.pos += 1)
    }

    /// A string without escapes; `None` (fall back) otherwise.
    fn plain_string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.pos;
        let len = self.bytes[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\')?;
        let end = start + len;
        if self.bytes[end] != b'"' {
            return None;
        }
        self.pos = end + 1;
        std::str::from_utf8(&self.bytes[start..end]).ok()
    }

    fn null(&mut self) -> bool {
        self.skip_ws();
        if self.bytes[self.pos..].starts_with(b"null") {
            self.pos += 4;
            true
        } else {
            false
        }
    }

    fn unsigned(&mut self) -> Option<u64> {
        self.skip_ws();
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(&b) = self.bytes.get(self.pos) {
            if !b.is_ascii_digit() {
                break;
            }
            value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            self.pos += 1;
        }
        // Leading zeros are not JSON; let serde_json report them.
        let digits = self.pos - start;
        (digits > 0 && !(digits > 1 && self.bytes[start] == b'0')).then_some(value)
    }
}

/// The hand-written fast path; `None` means "use serde_json".
fn fast(message: &[u8]) -> Option<Envelope<'_>> {
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
            "op" => op = Some(u8::try_from(c.unsigned()?).ok()?),
            "s" => s = if c.null() { None } else { Some(c.unsigned()?) },
            "t" => {
                t = if c.null() {
                    None
                } else {
                    Some(c.plain_string()?)
                }
            }
            "d" => {
                c.skip_ws();
                let start = c.pos;
                // `d` is taken to run to the closing brace of the message.
                let mut end = message.len();
                while end > start && message[end - 1].is_ascii_whitespace() {
                    end -= 1;
                }
                if end <= start + 1 || message[end - 1] != b'}' {
                    return None;
                }
                end -= 1;
                while end > start && message[end - 1].is_ascii_whitespace() {
                    end -= 1;
                }
                let bytes = &message[start..end];
                let d = (bytes != b"null").then_some(RawData {
                    bytes,
                    message: Some(message),
                });
                return Some(Envelope {
                    op: op?,
                    s,
                    t: t.map(Cow::Borrowed),
                    d,
                });
            }
            _ => return None,
        }
        c.skip_ws();
        match c.bytes.get(c.pos)? {
            b',' => c.pos += 1,
            b'}' => {
                c.pos += 1;
                c.skip_ws();
                if c.pos != message.len() {
                    return None;
                }
                return Some(Envelope {
                    op: op?,
                    s,
                    t: t.map(Cow::Borrowed),
                    d: None,
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
            (e.op, e.s, e.t.as_deref()),
            (0, Some(42), Some("MESSAGE_CREATE"))
        );
        assert_eq!(e.d.unwrap().as_bytes(), br#"{"content":"}"}"#);
    }

    #[test]
    fn fast_path_handles_nulls_and_missing_d() {
        let e = fast(br#"{"t":null,"s":null,"op":11,"d":null}"#).unwrap();
        assert_eq!((e.op, e.s, e.t), (11, None, None));
        assert!(e.d.is_none());
        let e = fast(br#"{"op":11}"#).unwrap();
        assert_eq!(e.op, 11);
        assert!(fast(br#"{"op":11} x"#).is_none());
    }

    #[test]
    fn unusual_shapes_fall_back_to_serde() {
        // `d` first, escapes in `t`, unknown keys: all still decode.
        let e = read(br#"{"d":{"a":1},"op":0,"s":3,"t":"X"}"#).unwrap();
        assert_eq!((e.op, e.s, e.t.as_deref()), (0, Some(3), Some("X")));
        assert_eq!(e.d.unwrap().as_bytes(), br#"{"a":1}"#);
        let e = read(br#"{"t":"A\u0042","op":0,"d":1}"#).unwrap();
        assert_eq!(e.t.as_deref(), Some("AB"));
        // Broken JSON inside (or after) `d` is only noticed when `d` is used.
        let broken = read(br#"{"op":0,"d":{}, "x": }"#).unwrap();
        assert!(broken.d.unwrap().parse::<serde_json::Value>().is_err());
        assert!(broken.d.unwrap().to_raw_value().is_err());
        assert!(read(br#"{"op":300}"#).is_err());
        assert!(read(br#"{"op":01}"#).is_err());
    }

    #[test]
    fn trailing_keys_after_d_are_recovered_on_parse() {
        let msg = br#"{"op":0,"t":"X","s":1,"d":{"a":1},"extra":true}"#;
        let e = read(msg).unwrap();
        let d = e.d.unwrap();
        let v: serde_json::Value = d.parse().unwrap();
        assert_eq!(v["a"], 1);
        assert_eq!(d.to_raw_value().unwrap().get(), r#"{"a":1}"#);
    }
}
