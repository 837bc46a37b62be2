//! [`JwtVerifier`]: the JWT check used by `/create-room`, `/end-room` and WebSocket auth.
//!
//! Puts together the pure verification ([`verify_with_keys`](super::verify_with_keys)), the
//! key store ([`KeyStore`]) and the verified-token cache ([`TokenCache`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::claims::{Claims, DEFAULT_LEEWAY_SECS, Validation, validate_claims};
use super::error::{JwksError, JwtError};
use super::jwks::{JwksOptions, KeySource, KeyStore, RefreshReason};
use super::jwt::{MAX_TOKEN_LEN, parse_jws};
use super::token_cache::{DEFAULT_TOKEN_CACHE_ENTRIES, TokenCache};

/// What a token must match and where its keys are (from `JWT_*` configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// Expected `iss` (`JWT_ISSUER`).
    pub issuer: String,
    /// Our audience (`JWT_AUDIENCE`).
    pub audience: String,
    /// The JWKS (`JWT_PUBLIC_JWKS_FILE` or `JWT_PUBLIC_JWK_URL`).
    pub keys: KeySource,
}

/// Tuning beyond [`JwtConfig`]; [`Default`] gives the documented values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtOptions {
    /// Clock leeway for `exp` and `nbf`, seconds (default 60, the contract's maximum).
    pub leeway_secs: i64,
    /// Key refresh rules.
    pub jwks: JwksOptions,
    /// Verified tokens kept (default 16384; 0 disables the cache).
    pub token_cache_entries: usize,
}

impl Default for JwtOptions {
    fn default() -> Self {
        Self {
            leeway_secs: DEFAULT_LEEWAY_SECS,
            jwks: JwksOptions::default(),
            token_cache_entries: DEFAULT_TOKEN_CACHE_ENTRIES,
        }
    }
}

/// Verifies ES256 JWTs against a cached, refreshed JWKS. Cheap to clone (an `Arc` inside).
#[derive(Clone, Debug)]
pub struct JwtVerifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    rules: Validation,
    store: KeyStore,
    cache: TokenCache,
    /// Set while a background max-age refresh task exists: at most one is spawned.
    background: AtomicBool,
}

impl JwtVerifier {
    /// A verifier with default options. Nothing is fetched until [`Self::load`] or the first
    /// [`Self::verify`].
    ///
    /// # Errors
    /// [`JwksError::InvalidUrl`] when the JWKS URL is not `https://` (or loopback `http://`).
    pub fn new(cfg: JwtConfig) -> Result<Self, JwksError> {
        Self::with_options(cfg, JwtOptions::default())
    }

    /// A verifier with explicit options.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn with_options(cfg: JwtConfig, options: JwtOptions) -> Result<Self, JwksError> {
        let store = KeyStore::new(cfg.keys, options.jwks)?;
        let rules = Validation {
            issuer: cfg.issuer,
            audience: cfg.audience,
            leeway_secs: options.leeway_secs,
        };
        let cache = TokenCache::new(options.token_cache_entries);
        Ok(Self {
            inner: Arc::new(Inner {
                rules,
                store,
                cache,
                background: AtomicBool::new(false),
            }),
        })
    }

    /// Loads the keys now (startup): reads the file or fetches the URL, ignoring the cooldown.
    ///
    /// # Errors
    /// The [`JwksError`] of the read or fetch. The verifier stays usable: later calls retry
    /// (at most once per cooldown).
    pub async fn load(&self) -> Result<(), JwksError> {
        self.load_at(unix_now()).await
    }

    /// [`Self::load`] with an explicit clock (tests).
    ///
    /// # Errors
    /// As [`Self::load`].
    pub async fn load_at(&self, now_unix: i64) -> Result<(), JwksError> {
        let refresh = self.inner.refresh(now_unix, RefreshReason::Load).await;
        match refresh.error {
            Some(error) => Err(error),
            None if refresh.keys.is_none() => Err(JwksError::NoUsableKeys),
            None => Ok(()),
        }
    }

    /// Verifies a token at `now_unix` (unix seconds) and returns its claims.
    ///
    /// A token verified before is answered from the cache (still checked against `exp`).
    /// An unknown `kid` triggers one key refetch (at most one per cooldown); keys older
    /// than the max age are refreshed in the background (a task spawned on the current
    /// Tokio runtime, so call this from within one).
    ///
    /// # Errors
    /// A [`JwtError`] saying why the token is refused; every one of them means `401`.
    pub async fn verify(&self, token: &str, now_unix: i64) -> Result<Claims, JwtError> {
        let inner = &self.inner;
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::TooLarge);
        }
        let cache_key = TokenCache::key(token);
        if let Some(claims) = inner.cache.get(&cache_key, now_unix) {
            return Ok(claims);
        }
        let parsed = parse_jws(token)?;

        let keys = match inner.store.current() {
            Some(keys) => {
                if inner.store.is_stale(now_unix)
                    && !inner.store.in_cooldown(now_unix)
                    && !inner.background.swap(true, Ordering::AcqRel)
                {
                    // Stale-while-revalidate: this request goes on with the current keys.
                    let background = BackgroundRefresh(Arc::clone(inner));
                    tokio::spawn(async move {
                        background.0.refresh(now_unix, RefreshReason::Stale).await;
                    });
                }
                keys
            }
            None => inner
                .refresh(now_unix, RefreshReason::UnknownKey)
                .await
                .keys
                .ok_or(JwtError::KeysUnavailable)?,
        };
        let payload = match parsed.verify(&keys) {
            Err(JwtError::UnknownKey) => {
                // OIDC Core §10.1.1: an unfamiliar kid may mean the issuer rotated keys.
                let refresh = inner.refresh(now_unix, RefreshReason::UnknownKey).await;
                match refresh.keys {
                    Some(fresh) if !Arc::ptr_eq(&fresh, &keys) => parsed.verify(&fresh)?,
                    _ => return Err(JwtError::UnknownKey),
                }
            }
            other => other?,
        };
        let claims = validate_claims(&payload, &inner.rules, now_unix)?;
        let valid_until = claims.exp.saturating_add(inner.rules.leeway_secs);
        inner
            .cache
            .insert(cache_key, claims.clone(), valid_until, now_unix);
        Ok(claims)
    }

    /// The key store (fetch counters, last error: for health and metrics).
    pub fn key_store(&self) -> &KeyStore {
        &self.inner.store
    }

    /// How many verified tokens are cached.
    pub fn cached_tokens(&self) -> usize {
        self.inner.cache.len()
    }
}

/// Owns the "background refresh running" flag; clears it when the task ends, even by panic
/// or runtime shutdown, so the next stale request can start another.
struct BackgroundRefresh(Arc<Inner>);

impl Drop for BackgroundRefresh {
    fn drop(&mut self) {
        self.0.background.store(false, Ordering::Release);
    }
}

impl Inner {
    /// Refreshes the keys; a changed key set empties the token cache (a removed key must not
    /// keep validating tokens through the cache).
    async fn refresh(&self, now: i64, reason: RefreshReason) -> super::jwks::Refresh {
        let refresh = self.store.refresh(now, reason).await;
        if refresh.changed {
            self.cache.clear();
        }
        refresh
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
