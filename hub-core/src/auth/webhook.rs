//! HMAC-SHA256 signatures of the internal webhook (contract §4).
//!
//! `X-Hub-Timestamp: <unix seconds>` and `X-Hub-Signature: sha256=<hex>` where the MAC is
//! HMAC-SHA256(secret, `"<ts>.<body>"`). Rules (research §1, checklist W2–W4):
//! - timestamp: 1–11 ASCII digits (no sign, space, dot), `|now - ts| <= 60` both ways;
//! - signature: exactly `sha256=` and 64 **lowercase** hex digits (the contract says
//!   lowercase; uppercase is refused so that one request has one spelling);
//! - the MAC is compared in constant time (`Mac::verify_slice`) against the current secret
//!   and, during rotation, the previous one;
//! - all of this runs on the raw bytes, before anything parses the body.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::error::WebhookError;
use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// Largest accepted distance between the request timestamp and now, seconds (contract §4).
pub const MAX_SKEW_SECS: i64 = 60;
/// Longest accepted timestamp, in digits (11 digits covers every date until year 5138).
const MAX_TIMESTAMP_DIGITS: usize = 11;
const PREFIX: &[u8] = b"sha256=";

/// Checks webhook signatures against the current secret and an optional previous one.
#[derive(Clone)]
pub struct WebhookVerifier {
    current: Secret,
    previous: Option<Secret>,
}

impl fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("current", &self.current)
            .field("previous", &self.previous)
            .finish()
    }
}

/// A request whose timestamp and signature checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedWebhook {
    /// The `X-Hub-Timestamp` value.
    pub timestamp: i64,
    /// The verified MAC: a captured request replayed has the same one (the replay key).
    pub mac: [u8; 32],
}

impl WebhookVerifier {
    /// A verifier accepting MACs under `current` and, if given, `previous` (rotation).
    /// Any key length works (HMAC hashes long keys); configuration enforces >= 32 bytes.
    pub fn new(current: Secret, previous: Option<Secret>) -> Self {
        Self { current, previous }
    }

    /// Checks the headers and the HMAC over `"<ts>.<body>"`, before anything parses the body.
    ///
    /// `timestamp` and `signature` are the raw header values (`None` when absent).
    ///
    /// # Errors
    /// A [`WebhookError`] for a missing or malformed header, a skew over 60 s, or a MAC that
    /// matches no secret. All of them mean `403`.
    pub fn verify(
        &self,
        timestamp: Option<&[u8]>,
        signature: Option<&[u8]>,
        body: &[u8],
        now_unix: i64,
    ) -> Result<VerifiedWebhook, WebhookError> {
        let ts_bytes = timestamp.ok_or(WebhookError::MissingTimestamp)?;
        let ts = parse_timestamp(ts_bytes)?;
        if ts.abs_diff(now_unix) > MAX_SKEW_SECS.unsigned_abs() {
            return Err(WebhookError::Skew);
        }
        let mac = parse_signature(signature.ok_or(WebhookError::MissingSignature)?)?;
        let accepted = std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .any(|secret| {
                keyed(secret.as_bytes(), ts_bytes, body)
                    .verify_slice(&mac)
                    .is_ok()
            });
        if !accepted {
            return Err(WebhookError::Mismatch);
        }
        Ok(VerifiedWebhook { timestamp: ts, mac })
    }
}

/// The MAC state over `"<ts>.<body>"`.
fn keyed(secret: &[u8], ts: &[u8], body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length (RFC 2104 §2), so this never fails.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("hmac takes keys of any length"));
    mac.update(ts);
    mac.update(b".");
    mac.update(body);
    mac
}

fn parse_timestamp(raw: &[u8]) -> Result<i64, WebhookError> {
    if raw.is_empty() || raw.len() > MAX_TIMESTAMP_DIGITS || !raw.iter().all(u8::is_ascii_digit) {
        return Err(WebhookError::MalformedTimestamp);
    }
    // At most 11 digits: always fits in i64.
    Ok(raw
        .iter()
        .fold(0_i64, |acc, d| acc * 10 + i64::from(d - b'0')))
}

fn parse_signature(raw: &[u8]) -> Result<[u8; 32], WebhookError> {
    let hex = raw
        .strip_prefix(PREFIX)
        .ok_or(WebhookError::MalformedSignature)?;
    if hex.len() != 64 {
        return Err(WebhookError::MalformedSignature);
    }
    let mut mac = [0_u8; 32];
    for (out, pair) in mac.iter_mut().zip(hex.chunks_exact(2)) {
        *out = (lower_hex_digit(pair[0])? << 4) | lower_hex_digit(pair[1])?;
    }
    Ok(mac)
}

fn lower_hex_digit(c: u8) -> Result<u8, WebhookError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(WebhookError::MalformedSignature),
    }
}

/// The `X-Hub-Signature` value for a request: `sha256=<lowercase hex>` of
/// HMAC-SHA256(secret, `"<timestamp>.<body>"`). For the worker, tests, benches and demos.
pub fn sign_webhook(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = keyed(secret, timestamp.to_string().as_bytes(), body)
        .finalize()
        .into_bytes();
    let mut out = String::with_capacity(PREFIX.len() + 64);
    out.push_str("sha256=");
    for byte in tag {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp(b"0"), Ok(0));
        assert_eq!(parse_timestamp(b"99999999999"), Ok(99_999_999_999));
        assert_eq!(
            parse_timestamp(b"999999999999"),
            Err(WebhookError::MalformedTimestamp)
        );
        assert_eq!(
            parse_timestamp(b"12a"),
            Err(WebhookError::MalformedTimestamp)
        );
        assert_eq!(parse_timestamp(b""), Err(WebhookError::MalformedTimestamp));
    }

    #[test]
    fn signatures_round_trip() {
        let sig = sign_webhook(b"k", 1_800_000_000, b"{}");
        // python3: hmac.new(b"k", b"1800000000.{}", sha256).hexdigest()
        assert_eq!(
            sig,
            "sha256=cdd93e246b17200236861b3061e5be1099fa09298de6cebf58e528db933f5c62"
        );
        let mac = parse_signature(sig.as_bytes()).expect("parses");
        assert_eq!(mac[0], 0xcd);
        assert_eq!(mac[31], 0x62);
    }
}
