//! A deterministic test issuer: a P-256 key pair, its JWKS and signed tokens.
//!
//! For tests, benchmarks and demos across the workspace (HTTP and WebSocket tests need valid
//! tokens). Never used by the hub itself, which only verifies.

use p256::ecdsa::SigningKey;
use sha2::{Digest as _, Sha256};

use super::jwt::sign_es256;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A signing key with a `kid`, derived deterministically from a label.
#[derive(Clone)]
pub struct TestIssuer {
    key: SigningKey,
    kid: String,
}

impl std::fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIssuer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TestIssuer {
    /// The key derived from `label` (SHA-256, rehashed until it is a valid scalar), with
    /// `kid` = `label`.
    pub fn new(label: &str) -> Self {
        let mut seed: [u8; 32] = Sha256::digest(label.as_bytes()).into();
        let key = loop {
            match SigningKey::from_slice(&seed) {
                Ok(key) => break key,
                Err(_) => seed = Sha256::digest(seed).into(),
            }
        };
        Self {
            key,
            kid: label.to_owned(),
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// This key's public JWK (`kty`, `crv`, `x`, `y`, `kid`, `alg`, `use`).
    pub fn jwk(&self) -> serde_json::Value {
        let point = self.key.verifying_key().to_encoded_point(false);
        let (x, y) = match (point.x(), point.y()) {
            (Some(x), Some(y)) => (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y)),
            // An uncompressed encoding of a valid key always has both coordinates.
            _ => (String::new(), String::new()),
        };
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "kid": self.kid, "alg": "ES256", "use": "sig",
        })
    }

    /// A JWKS document with the public keys of `issuers`.
    pub fn jwks(issuers: &[&Self]) -> String {
        let keys: Vec<_> = issuers.iter().map(|i| i.jwk()).collect();
        serde_json::json!({ "keys": keys }).to_string()
    }

    /// A token with these claims, signed with this key and its `kid`.
    pub fn token(&self, claims: &serde_json::Value) -> String {
        sign_es256(&self.key, Some(&self.kid), claims)
    }

    /// A token with only `iss`, `aud`, `sub` and `exp` (unix seconds).
    pub fn token_for(&self, iss: &str, aud: &str, sub: &str, exp: i64) -> String {
        self.token(&serde_json::json!({ "iss": iss, "aud": aud, "sub": sub, "exp": exp }))
    }
}
