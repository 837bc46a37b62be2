//! Authentication: ES256 JWTs for users, HMAC-SHA256 signatures for the worker's webhook.
//!
//! - [`JwtVerifier`] checks `Authorization: Bearer` and WebSocket `auth` tokens (contract
//!   §2): `alg` exactly `ES256`, `kid` resolved in the JWKS ([`KeySource`]: file or URL,
//!   cached, refetched on unknown `kid` at most once per cooldown, last good keys kept while
//!   the URL is down), `iss`, `aud` (string or array), `exp`, `nbf` with 60 s leeway.
//!   Verified tokens are cached by hash until they expire.
//! - [`verify_with_keys`], [`parse_jwks`], [`validate_claims`] are the pure pieces
//!   (no IO) for fuzzing and tests.
//! - [`WebhookVerifier`] checks `X-Hub-Timestamp` / `X-Hub-Signature` (contract §4) before
//!   the body is parsed.
//!
//! # Decisions where the contract is silent
//!
//! - **Stale-if-error**: when the JWKS URL fails (error status, timeout, bad document), the
//!   last good keys stay in use and the fetch is retried after the cooldown (jose does not
//!   do this; we prefer not logging everybody out during an issuer outage). A document with
//!   a private key (`d`) is refused and does not replace good keys.
//! - **Refresh**: keys older than 10 min are refreshed in the background while the old ones
//!   keep verifying; an unknown `kid` waits for one refetch (at most one per 30 s for the
//!   whole verifier, single-flight). `Cache-Control` is not honoured. A JWKS file is
//!   re-read under the same rules, so file keys rotate without a restart.
//! - **Key selection**: keys that are not EC P-256 for ES256 signatures (RSA, `use: enc`,
//!   another `alg`) are skipped, not fatal; a token without `kid` is accepted only when the
//!   set has exactly one usable key; two keys with the token's `kid` refuse the token.
//! - **Header**: `typ` and `cty` are not checked (issuers disagree on `JWT` vs `at+jwt`);
//!   `crit` in any form and `b64` are refused; duplicate header or claim members are refused.
//! - **Claims**: `iss`, `aud`, `exp` and a non-empty string `sub` are required; fractional
//!   `exp`/`nbf` are rounded down; `iat`, if present, must be a number but is not compared.
//! - **Token cache**: a changed key set empties it, so a key removed from the JWKS stops
//!   validating cached tokens at the next refresh.
//! - **Webhook**: only lowercase hex is accepted (the contract says lowercase); the MAC is
//!   computed over the timestamp header bytes exactly as sent.
//!
//! Hand-written on `p256` + `base64` + `hmac` on purpose (small, auditable, every rule named
//! where it is enforced). No error message contains a token or a secret.
//!
//! ```
//! use hub_core::auth::{TestIssuer, Validation, parse_jwks, verify_with_keys};
//!
//! let issuer = TestIssuer::new("key-1");
//! let keys = parse_jwks(TestIssuer::jwks(&[&issuer]).as_bytes()).unwrap();
//! let token = issuer.token_for("https://app.example", "spell-coven", "user-1", 2_000);
//! let rules = Validation::new("https://app.example", "spell-coven");
//! let claims = verify_with_keys(&token, &keys, &rules, 1_000).unwrap();
//! assert_eq!(claims.sub, "user-1");
//! ```

mod claims;
mod error;
mod jwk;
mod jwks;
mod jwt;
mod testing;
mod token_cache;
mod verifier;
mod webhook;

pub use claims::{Claims, DEFAULT_LEEWAY_SECS, Validation, validate_claims};
pub use error::{JwksError, JwtError, WebhookError};
pub use jwk::{Jwk, JwkSet, KeyLookup, MAX_KEYS, MAX_KID_LEN, parse_jwks};
pub use jwks::{
    JwksOptions, KeySource, KeyStore, MAX_JWKS_BYTES, Refresh, RefreshReason, validate_url,
};
pub use jwt::{
    MAX_TOKEN_LEN, ParsedJws, decode_signature, parse_jws, sign_es256, sign_raw, verify_jws,
    verify_signature, verify_with_keys,
};
pub use testing::TestIssuer;
pub use token_cache::{DEFAULT_TOKEN_CACHE_ENTRIES, TokenCache};
pub use verifier::{JwtConfig, JwtOptions, JwtVerifier};
pub use webhook::{MAX_SKEW_SECS, VerifiedWebhook, WebhookVerifier, sign_webhook};
