//! Typed failures of token, key-set and webhook verification.
//!
//! No variant carries token bytes, secrets or MACs: every message is safe to log and to
//! show. Every JWT failure maps to `401` (or WebSocket close `4401`), every webhook failure
//! to `403`; [`JwtError::reason`] and [`WebhookError::reason`] give a short label for metrics.

use std::fmt;

/// Why a JWT was rejected. Every variant means "401"; the variant only says why (for logs and
/// metrics). Messages never include the token.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// The token is over the size cap (8 KiB).
    TooLarge,
    /// Not a compact JWS: wrong segment count, bad base64url, bad JSON, or a bad header field.
    Malformed(&'static str),
    /// The header `alg` is not `ES256` (RFC 8725 §3.1: allow-list of one).
    UnsupportedAlgorithm,
    /// The header has `crit` (or `b64`): we understand no extensions (RFC 7515 §4.1.11).
    CriticalHeader,
    /// The signature is not exactly 64 bytes of `r‖s` with `r`, `s` in `1..n` (RFC 7518 §3.4).
    MalformedSignature,
    /// No key in the key set has the token's `kid` (or the token has no `kid` and the set
    /// does not have exactly one key).
    UnknownKey,
    /// More than one key in the key set has the token's `kid`.
    AmbiguousKey,
    /// The signature does not verify.
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    WrongAudience,
    /// A required claim is absent (`exp`, `sub`, `iss`, `aud`).
    MissingClaim(&'static str),
    /// A claim has the wrong type or an out-of-range value (string `exp`, empty `sub`...).
    InvalidClaim(&'static str),
    /// No keys are loaded and none could be fetched; the token could not be checked.
    KeysUnavailable,
}

impl JwtError {
    /// A short stable label for metrics (`auth_failed{reason=...}`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Malformed(_) => "malformed",
            Self::UnsupportedAlgorithm => "alg",
            Self::CriticalHeader => "crit",
            Self::MalformedSignature => "malformed_signature",
            Self::UnknownKey => "unknown_kid",
            Self::AmbiguousKey => "ambiguous_kid",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "issuer",
            Self::WrongAudience => "audience",
            Self::MissingClaim(_) => "missing_claim",
            Self::InvalidClaim(_) => "invalid_claim",
            Self::KeysUnavailable => "keys_unavailable",
        }
    }
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => f.write_str("token too large"),
            Self::Malformed(what) => write!(f, "malformed token: {what}"),
            Self::UnsupportedAlgorithm => f.write_str("token algorithm not allowed (only ES256)"),
            Self::CriticalHeader => f.write_str("token has a critical header extension"),
            Self::MalformedSignature => {
                f.write_str("token signature is not a 64-byte ES256 signature")
            }
            Self::UnknownKey => f.write_str("token key id not found in the key set"),
            Self::AmbiguousKey => f.write_str("token key id matches more than one key"),
            Self::BadSignature => f.write_str("token signature does not verify"),
            Self::Expired => f.write_str("token expired"),
            Self::NotYetValid => f.write_str("token not yet valid"),
            Self::WrongIssuer => f.write_str("token issuer not accepted"),
            Self::WrongAudience => f.write_str("token audience not accepted"),
            Self::MissingClaim(name) => write!(f, "token claim {name} missing"),
            Self::InvalidClaim(name) => write!(f, "token claim {name} invalid"),
            Self::KeysUnavailable => f.write_str("signing keys unavailable"),
        }
    }
}

impl std::error::Error for JwtError {}

/// Why a key set could not be used (configuration, file, fetch or content).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    /// The JWKS URL is not `https://`, or `http://` on a loopback host; or it has user info.
    InvalidUrl(&'static str),
    /// The JWKS file could not be read (the message is the I/O error).
    Io(String),
    /// The request failed (connection refused, TLS, protocol); the message is the cause.
    Fetch(String),
    /// The server did not answer within the timeout.
    Timeout,
    /// The server answered with a status other than `200`.
    Status(u16),
    /// The document is over the size cap (64 KiB).
    TooLarge,
    /// The document is not a JWKS (`{"keys":[...]}`) or a key in it is malformed.
    Invalid(String),
    /// The document has more keys than the cap (32).
    TooManyKeys,
    /// A key carries private material (`d`): the issuer published a private key. Rotate it.
    PrivateKey,
    /// No key in the set is an ES256 signing key (`kty=EC`, `crv=P-256`).
    NoUsableKeys,
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl(why) => write!(f, "invalid jwks url: {why}"),
            Self::Io(e) => write!(f, "cannot read jwks file: {e}"),
            Self::Fetch(e) => write!(f, "jwks fetch failed: {e}"),
            Self::Timeout => f.write_str("jwks fetch timed out"),
            Self::Status(s) => write!(f, "jwks fetch returned status {s} (expected 200)"),
            Self::TooLarge => f.write_str("jwks document too large"),
            Self::Invalid(e) => write!(f, "invalid jwks document: {e}"),
            Self::TooManyKeys => f.write_str("jwks document has too many keys"),
            Self::PrivateKey => f.write_str(
                "jwks contains a private key (d): remove it and rotate that key at the issuer",
            ),
            Self::NoUsableKeys => f.write_str("jwks has no ES256 (EC P-256) signing key"),
        }
    }
}

impl std::error::Error for JwksError {}

/// Why a webhook request was refused. Every variant maps to `403`; nothing is broadcast.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookError {
    /// No `X-Hub-Timestamp` header.
    MissingTimestamp,
    /// `X-Hub-Timestamp` is not 1–11 ASCII digits.
    MalformedTimestamp,
    /// The timestamp is more than 60 s away from now (either direction).
    Skew,
    /// No `X-Hub-Signature` header.
    MissingSignature,
    /// `X-Hub-Signature` is not `sha256=` followed by 64 lowercase hex digits.
    MalformedSignature,
    /// The MAC matches neither the current nor the previous secret.
    Mismatch,
}

impl WebhookError {
    /// A short stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingTimestamp => "missing_timestamp",
            Self::MalformedTimestamp => "malformed_timestamp",
            Self::Skew => "skew",
            Self::MissingSignature => "missing_signature",
            Self::MalformedSignature => "malformed_signature",
            Self::Mismatch => "mismatch",
        }
    }
}

impl fmt::Display for WebhookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingTimestamp => "missing x-hub-timestamp header",
            Self::MalformedTimestamp => "x-hub-timestamp must be unix seconds in ascii digits",
            Self::Skew => "x-hub-timestamp too far from the current time",
            Self::MissingSignature => "missing x-hub-signature header",
            Self::MalformedSignature => {
                "x-hub-signature must be sha256= and 64 lowercase hex digits"
            }
            Self::Mismatch => "x-hub-signature does not match",
        })
    }
}

impl std::error::Error for WebhookError {}
