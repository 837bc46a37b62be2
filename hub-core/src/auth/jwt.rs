//! Compact JWS parsing and ES256 verification (RFC 7515, RFC 7518 §3.4, RFC 8725).
//!
//! Order of checks, cheapest first, nothing trusted before the signature verifies:
//! 1. size cap ([`MAX_TOKEN_LEN`]) before anything else;
//! 2. exactly three `.`-separated segments, strict base64url without padding
//!    (RFC 7515 §2, `URL_SAFE_NO_PAD`: rejects `=`, `+`, `/` and non-canonical trailing bits);
//! 3. header: a JSON object, `alg` exactly `ES256` (RFC 8725 §3.1), no `crit`
//!    (RFC 7515 §4.1.11: we understand no extension) and no `b64` (RFC 7797), `kid`
//!    length-capped; `jwk`/`jku`/`x5u`/`x5c` are ignored, never used to find a key
//!    (RFC 8725 §3.10);
//! 4. signature: exactly 64 bytes `r‖s`, both in `1..n` (RFC 7518 §3.4; DER is rejected).
//!    High-S is valid ECDSA and accepted (Wycheproof "signature malleability" is `valid`);
//! 5. key lookup by `kid` ([`JwkSet::find`]), then ECDSA P-256/SHA-256 over
//!    `<header_b64>.<payload_b64>`;
//! 6. only then the payload is decoded and the claims validated ([`validate_claims`]).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny};

use super::claims::{Claims, Validation, is_json_object, validate_claims};
use super::error::JwtError;
use super::jwk::{JwkSet, KeyLookup, MAX_KID_LEN};

/// Largest token accepted, in bytes (checked before any decoding).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The only algorithm accepted (RFC 8725 §3.1 allow-list).
const ALG: &str = "ES256";

/// A token whose structure, header and signature encoding are valid, but whose signature is
/// not verified yet. Its `Debug` shows only the `kid`: a token is a credential.
#[derive(Clone)]
pub struct ParsedJws<'a> {
    signing_input: &'a str,
    payload_b64: &'a str,
    kid: Option<String>,
    signature: Signature,
}

impl std::fmt::Debug for ParsedJws<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedJws")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The header members we read. Duplicate known members fail (serde derive).
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Present,
    #[serde(default)]
    b64: Present,
}

/// Whether a member is present at all, whatever its value (even `null`).
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d)?;
        Ok(Self(true))
    }
}

fn b64(segment: &str, what: &'static str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| JwtError::Malformed(what))
}

/// Parses a compact JWS: structure, header and signature encoding (steps 1–4 above).
///
/// # Errors
/// [`JwtError::TooLarge`], [`JwtError::Malformed`], [`JwtError::UnsupportedAlgorithm`],
/// [`JwtError::CriticalHeader`], [`JwtError::MalformedSignature`].
pub fn parse_jws(token: &str) -> Result<ParsedJws<'_>, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed(
            "token must have exactly three segments",
        ));
    };
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];

    let header_json = b64(header_b64, "header is not base64url")?;
    if !is_json_object(&header_json) {
        return Err(JwtError::Malformed("header is not a json object"));
    }
    let header: Header = serde_json::from_slice(&header_json)
        .map_err(|_| JwtError::Malformed("header is not a valid jose header"))?;
    if header.alg != ALG {
        return Err(JwtError::UnsupportedAlgorithm);
    }
    if header.crit.0 || header.b64.0 {
        return Err(JwtError::CriticalHeader);
    }
    if header.kid.as_ref().is_some_and(|k| k.len() > MAX_KID_LEN) {
        return Err(JwtError::Malformed("kid too long"));
    }

    let raw_sig = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| JwtError::MalformedSignature)?;
    let signature = decode_signature(&raw_sig)?;

    Ok(ParsedJws {
        signing_input,
        payload_b64,
        kid: header.kid,
        signature,
    })
}

impl ParsedJws<'_> {
    /// The header's `kid`, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Verifies the signature with the key the `kid` selects and returns the decoded payload.
    ///
    /// # Errors
    /// [`JwtError::UnknownKey`], [`JwtError::AmbiguousKey`], [`JwtError::BadSignature`],
    /// [`JwtError::Malformed`] when the payload is not base64url.
    pub fn verify(&self, keys: &JwkSet) -> Result<Vec<u8>, JwtError> {
        let key = match keys.find(self.kid()) {
            KeyLookup::Found(key) => key,
            KeyLookup::NotFound => return Err(JwtError::UnknownKey),
            KeyLookup::Ambiguous => return Err(JwtError::AmbiguousKey),
        };
        verify_signature(
            key.verifying_key(),
            self.signing_input.as_bytes(),
            &self.signature,
        )?;
        b64(self.payload_b64, "payload is not base64url")
    }
}

/// Decodes an ES256 signature: exactly 64 octets `R‖S` (RFC 7518 §3.4; DER and any other
/// length are invalid), with `0 < r, s < n` (`Signature::from_slice`).
///
/// # Errors
/// [`JwtError::MalformedSignature`].
pub fn decode_signature(raw: &[u8]) -> Result<Signature, JwtError> {
    if raw.len() != 64 {
        return Err(JwtError::MalformedSignature);
    }
    Signature::from_slice(raw).map_err(|_| JwtError::MalformedSignature)
}

/// Verifies an ECDSA P-256/SHA-256 signature over `message`. High-S signatures are valid
/// (ECDSA itself does not require low-S; Wycheproof tcId 1 is `valid`).
///
/// # Errors
/// [`JwtError::BadSignature`].
pub fn verify_signature(
    key: &VerifyingKey,
    message: &[u8],
    signature: &Signature,
) -> Result<(), JwtError> {
    key.verify(message, signature)
        .map_err(|_| JwtError::BadSignature)
}

/// Verifies a compact JWS (any payload) and returns the payload bytes.
///
/// # Errors
/// Everything [`parse_jws`] and [`ParsedJws::verify`] return.
pub fn verify_jws(token: &str, keys: &JwkSet) -> Result<Vec<u8>, JwtError> {
    parse_jws(token)?.verify(keys)
}

/// Verifies a JWT against a fixed key set and validates its claims at `now` (unix seconds).
///
/// Pure (no IO, no cache): what [`super::JwtVerifier`] does after choosing the keys, and the
/// entry point for fuzz targets.
///
/// # Errors
/// Any [`JwtError`] except [`JwtError::KeysUnavailable`].
pub fn verify_with_keys(
    token: &str,
    keys: &JwkSet,
    rules: &Validation,
    now: i64,
) -> Result<Claims, JwtError> {
    let payload = verify_jws(token, keys)?;
    validate_claims(&payload, rules, now)
}

/// Signs `claims` as an ES256 JWT (header `{"alg":"ES256","typ":"JWT","kid":...}`).
///
/// For tests, benchmarks and demos: the hub itself never signs tokens.
pub fn sign_es256(key: &SigningKey, kid: Option<&str>, claims: &serde_json::Value) -> String {
    let mut header = serde_json::json!({ "alg": ALG, "typ": "JWT" });
    if let Some(kid) = kid {
        header["kid"] = serde_json::Value::from(kid);
    }
    sign_raw(
        key,
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
    )
}

/// Signs arbitrary header and payload bytes (tests build malformed headers with it).
pub fn sign_raw(key: &SigningKey, header_json: &[u8], payload: &[u8]) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(header_json);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let signature: Signature = key.sign(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
    token
}
