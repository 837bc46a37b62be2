//! JWK and JWKS parsing (RFC 7517): only ES256 verification keys are kept.
//!
//! Selection rules (RFC 8725 §3.1 "one algorithm per key", after jose's `jwks/local`):
//! - a key with private material (`d`) makes the whole set invalid: the issuer leaked a
//!   private key, and serving it would be worse than serving nothing;
//! - keys that are not `kty=EC` + `crv=P-256`, or whose `alg` (if set) is not `ES256`, whose
//!   `use` (if set) is not `sig`, or whose `key_ops` (if set) lacks `verify`, are skipped (an
//!   issuer may publish RSA or encryption keys beside ours);
//! - an EC P-256 key whose `x`/`y` are not 32-byte strict base64url, or whose point is not on
//!   the curve (RFC 8725 §3.4), makes the set invalid;
//! - at most [`MAX_KEYS`] entries, and at least one usable key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::EncodedPoint;
use p256::ecdsa::VerifyingKey;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::error::JwksError;

/// Most entries a JWKS document may hold (usable or not).
pub const MAX_KEYS: usize = 32;
/// Longest `kid` accepted, in bytes, in a JWKS and in a token header.
pub const MAX_KID_LEN: usize = 256;

/// One ES256 verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    kid: Option<String>,
    key: VerifyingKey,
}

impl Jwk {
    /// Wraps a verifying key (tests and tools; keys normally come from [`parse_jwks`]).
    pub fn new(kid: Option<String>, key: VerifyingKey) -> Self {
        Self { kid, key }
    }

    /// The key id, if the JWK had one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The P-256 public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// A set of ES256 verification keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwkSet {
    keys: Vec<Jwk>,
}

/// The outcome of looking a token's `kid` up in a [`JwkSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLookup<'a> {
    /// Exactly one key fits.
    Found(&'a Jwk),
    /// No key fits (an unknown `kid`, or no `kid` and not exactly one key).
    NotFound,
    /// Several keys have this `kid`.
    Ambiguous,
}

impl JwkSet {
    /// Builds a set from keys (tests and tools).
    pub fn new(keys: Vec<Jwk>) -> Self {
        Self { keys }
    }

    /// The usable keys.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// Whether the set has no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Finds the key for a token: with a `kid`, the one key whose `kid` is exactly equal;
    /// without one, the set's only key (OIDC Core §10.1: `kid` may be omitted only when the
    /// set has a single key).
    pub fn find(&self, kid: Option<&str>) -> KeyLookup<'_> {
        match kid {
            Some(kid) => {
                let mut found = None;
                for key in self.keys.iter().filter(|k| k.kid() == Some(kid)) {
                    if found.is_some() {
                        return KeyLookup::Ambiguous;
                    }
                    found = Some(key);
                }
                found.map_or(KeyLookup::NotFound, KeyLookup::Found)
            }
            None => match self.keys.as_slice() {
                [only] => KeyLookup::Found(only),
                _ => KeyLookup::NotFound,
            },
        }
    }
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<RawJwk>,
}

/// One JWK as published: only members whose type is the same for every `kty`. serde's
/// derive rejects duplicate known members.
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    d: Option<IgnoredAny>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
}

/// Parses a JWKS document (`{"keys":[...]}`) into its ES256 verification keys.
///
/// Pure (no IO), so a fuzz target can call it directly.
///
/// # Errors
/// [`JwksError::Invalid`] for malformed JSON or keys, [`JwksError::TooManyKeys`] over
/// [`MAX_KEYS`] entries, [`JwksError::PrivateKey`] when any key has `d`,
/// [`JwksError::NoUsableKeys`] when no entry is an ES256 key.
pub fn parse_jwks(bytes: &[u8]) -> Result<JwkSet, JwksError> {
    let raw: RawSet = serde_json::from_slice(bytes).map_err(|e| invalid(&e))?;
    if raw.keys.len() > MAX_KEYS {
        return Err(JwksError::TooManyKeys);
    }
    let mut keys = Vec::new();
    for raw in raw.keys {
        if let Some(key) = usable_key(raw)? {
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err(JwksError::NoUsableKeys);
    }
    Ok(JwkSet { keys })
}

fn invalid(e: &serde_json::Error) -> JwksError {
    // serde_json's message names the problem and position; a JWKS is public data anyway.
    JwksError::Invalid(e.to_string())
}

fn usable_key(raw: RawJwk) -> Result<Option<Jwk>, JwksError> {
    if raw.d.is_some() {
        return Err(JwksError::PrivateKey);
    }
    let fits = raw.kty == "EC"
        && raw.crv.as_deref() == Some("P-256")
        && raw.alg.as_deref().is_none_or(|a| a == "ES256")
        && raw.use_.as_deref().is_none_or(|u| u == "sig")
        && raw
            .key_ops
            .as_ref()
            .is_none_or(|ops| ops.iter().any(|op| op == "verify"));
    if !fits {
        return Ok(None);
    }
    if raw.kid.as_ref().is_some_and(|k| k.len() > MAX_KID_LEN) {
        return Err(JwksError::Invalid("kid too long".into()));
    }
    let x = coordinate(raw.x.as_deref(), "x")?;
    let y = coordinate(raw.y.as_deref(), "y")?;
    let point = EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
    // RFC 8725 §3.4: the point must be on P-256 (and not the identity).
    let key = VerifyingKey::from_encoded_point(&point)
        .map_err(|_| JwksError::Invalid("ec key is not a point on p-256".into()))?;
    Ok(Some(Jwk { kid: raw.kid, key }))
}

fn coordinate(value: Option<&str>, name: &str) -> Result<[u8; 32], JwksError> {
    let value = value.ok_or_else(|| JwksError::Invalid(format!("ec key without {name}")))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| JwksError::Invalid(format!("ec key {name} is not base64url")))?;
    bytes
        .try_into()
        .map_err(|_| JwksError::Invalid(format!("ec key {name} is not 32 bytes")))
}
