//! Demo secrets: a hub secret and an ES256 key pair from OS randomness, the JWKS file the
//! hub reads, and session tokens minted for the dashboard.
//!
//! The hub only ever verifies tokens; an app backend signs them. Here the demo plays that
//! backend, so the private key lives in this process and never touches the disk.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::SigningKey;

/// `iss` of the demo tokens (the hub's `JWT_ISSUER`).
pub(crate) const ISSUER: &str = "spell-coven-demo";
/// `aud` of the demo tokens (the hub's `JWT_AUDIENCE`).
pub(crate) const AUDIENCE: &str = "spell-coven";
/// `sub` of the dashboard's session.
pub(crate) const DEMO_USER: &str = "demo-user";
/// Lifetime of a minted token; the dashboard asks for a new one on close 4401.
const TOKEN_LIFETIME_SECS: i64 = 24 * 60 * 60;

/// Why secrets could not be generated.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum KeyError {
    /// The OS random source failed.
    Random(getrandom::Error),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Random(e) => write!(f, "the os random source failed: {e}"),
        }
    }
}

impl std::error::Error for KeyError {}

/// The demo's generated secrets.
pub(crate) struct DemoKeys {
    signing: SigningKey,
    kid: String,
    hub_secret: String,
}

impl fmt::Debug for DemoKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoKeys")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn random<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(KeyError::Random)?;
    Ok(buf)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl DemoKeys {
    /// A fresh P-256 key (a random scalar, redrawn in the ~2^-128 case it is out of
    /// range) and a 32-byte hub secret (64 hex characters; the hub wants at least 32 bytes).
    ///
    /// # Errors
    /// The OS random source failed.
    pub(crate) fn generate() -> Result<Self, KeyError> {
        let signing = loop {
            if let Ok(key) = SigningKey::from_slice(&random::<32>()?) {
                break key;
            }
        };
        Ok(Self {
            signing,
            kid: format!("demo-{}", hex(&random::<4>()?)),
            hub_secret: hex(&random::<32>()?),
        })
    }

    /// The hub secret shared by the hub and the worker.
    pub(crate) fn hub_secret(&self) -> &str {
        &self.hub_secret
    }

    /// A JWKS document holding the public key only.
    pub(crate) fn jwks(&self) -> String {
        let point = self.signing.verifying_key().to_encoded_point(false);
        let coord = |c: Option<&p256::FieldBytes>| c.map(|c| URL_SAFE_NO_PAD.encode(c));
        serde_json::json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
            "x": coord(point.x()), "y": coord(point.y()),
        }]})
        .to_string()
    }

    /// A session token for `sub`, valid from now for a day.
    pub(crate) fn mint(&self, sub: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2));
        let claims = serde_json::json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": sub,
            "iat": now, "exp": now + TOKEN_LIFETIME_SECS,
        });
        hub_core::auth::sign_es256(&self.signing, Some(&self.kid), &claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hub_core::auth::{Validation, parse_jwks, verify_with_keys};

    #[test]
    fn minted_tokens_verify_against_the_jwks() {
        let keys = DemoKeys::generate().unwrap();
        let set = parse_jwks(keys.jwks().as_bytes()).unwrap();
        let token = keys.mint(DEMO_USER);
        let now = i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap();
        let claims =
            verify_with_keys(&token, &set, &Validation::new(ISSUER, AUDIENCE), now).unwrap();
        assert_eq!(claims.sub, DEMO_USER);
        assert!(!keys.jwks().contains("\"d\""), "no private key in the jwks");
        assert_eq!(keys.hub_secret().len(), 64);
        assert!(!format!("{keys:?}").contains(keys.hub_secret()));
    }

    #[test]
    fn two_runs_get_different_secrets() {
        let (a, b) = (DemoKeys::generate().unwrap(), DemoKeys::generate().unwrap());
        assert_ne!(a.hub_secret(), b.hub_secret());
        assert_ne!(a.jwks(), b.jwks());
    }
}
