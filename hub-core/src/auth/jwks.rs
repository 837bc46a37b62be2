//! Where the verification keys come from, and how they are kept fresh.
//!
//! A [`KeySource`] is a JWKS file or an `https://` URL (`http://` only on loopback, for tests
//! and sidecars). The [`KeyStore`] caches the last good key set and refreshes it:
//! - **max age** (default 10 min, jose's `cacheMaxAge`): older keys are refreshed in the
//!   background while they keep being used;
//! - **unknown `kid`** (OIDC Core §10.1.1): one refetch, then the lookup is retried; at most
//!   one fetch per **cooldown** (default 30 s, jose's `cooldownDuration`) for the whole
//!   store, so a flood of tokens with made-up `kid`s costs at most one fetch per cooldown;
//! - **single-flight**: concurrent callers that need a refresh wait for the one in flight
//!   and use its result;
//! - **stale-if-error** (a deliberate difference from jose): when a fetch fails, the last
//!   good keys keep being served, so a JWKS outage does not log everybody out; the failure
//!   is logged and retried after the cooldown.
//!
//! Fetching: hyper-util's legacy client over hyper-rustls (ring, webpki roots), no
//! redirects (a `3xx` is an error: status must be `200`), a 5 s timeout over the whole
//! exchange, a 64 KiB body cap, at most [`MAX_KEYS`](super::jwk::MAX_KEYS) keys. The file
//! source is read under the same rules (size cap, re-read on unknown `kid` / max age).
//!
//! Time is passed in (`now`, unix seconds) so the cooldown and max-age rules are tested
//! without sleeping.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncReadExt as _;

use super::error::JwksError;
use super::jwk::{JwkSet, parse_jwks};

/// Largest JWKS document accepted, bytes.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Where the JWKS comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A JWKS JSON file (`JWT_PUBLIC_JWKS_FILE`).
    File(PathBuf),
    /// A JWKS URL (`JWT_PUBLIC_JWK_URL`): `https://`, or `http://` on a loopback host.
    Url(String),
}

/// Timing and size knobs of key fetching and token caching. [`Default`] gives the documented
/// values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksOptions {
    /// Minimum time between two fetches not caused by age (unknown `kid`, retry after an
    /// error), seconds. Default 30.
    pub cooldown_secs: i64,
    /// Keys older than this are refreshed in the background, seconds. Default 600.
    pub max_age_secs: i64,
    /// Timeout of one fetch (connect, headers and body). Default 5 s.
    pub fetch_timeout: Duration,
}

impl Default for JwksOptions {
    fn default() -> Self {
        Self {
            cooldown_secs: 30,
            max_age_secs: 600,
            fetch_timeout: Duration::from_secs(5),
        }
    }
}

/// Why a refresh is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshReason {
    /// Explicit load (startup): always fetches.
    Load,
    /// No keys yet, or a token's `kid` is unknown: subject to the cooldown.
    UnknownKey,
    /// The keys are older than the max age: subject to the cooldown too.
    Stale,
}

/// The result of a refresh attempt.
#[derive(Debug, Clone)]
pub struct Refresh {
    /// The keys now in use (possibly the old ones, if the fetch failed or was skipped).
    pub keys: Option<Arc<JwkSet>>,
    /// Whether this call changed the key set.
    pub changed: bool,
    /// The fetch error, when this call (or the one it waited for) fetched and failed.
    pub error: Option<JwksError>,
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

enum Fetcher {
    File(PathBuf),
    Url { uri: Uri, client: Box<HttpsClient> },
}

#[derive(Default)]
struct State {
    keys: Option<Arc<JwkSet>>,
    /// When the current keys were fetched.
    fetched_at: Option<i64>,
    /// When the last fetch (successful or not) started.
    last_attempt: Option<i64>,
    /// Counts finished fetches: a waiter that sees it move knows someone fetched for it.
    generation: u64,
    last_error: Option<JwksError>,
}

/// The cached key set of one [`KeySource`], refreshed as described in the module docs.
pub struct KeyStore {
    fetcher: Fetcher,
    options: JwksOptions,
    state: Mutex<State>,
    /// Held for the whole of a fetch: the single-flight gate.
    fetch_gate: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match &self.fetcher {
            Fetcher::File(_) => "file",
            Fetcher::Url { .. } => "url",
        };
        f.debug_struct("KeyStore")
            .field("source", &source)
            .field("options", &self.options)
            .field("fetches", &self.fetch_count())
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// A store for `source`; nothing is fetched yet.
    ///
    /// # Errors
    /// [`JwksError::InvalidUrl`] when a URL is not `https://` or loopback `http://`, or has
    /// user info; [`JwksError::Fetch`] if the TLS configuration cannot be built.
    pub fn new(source: KeySource, options: JwksOptions) -> Result<Self, JwksError> {
        let fetcher = match source {
            KeySource::File(path) => Fetcher::File(path),
            KeySource::Url(url) => {
                let uri = validate_url(&url)?;
                Fetcher::Url {
                    uri,
                    client: Box::new(https_client()?),
                }
            }
        };
        Ok(Self {
            fetcher,
            options,
            state: Mutex::new(State::default()),
            fetch_gate: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
        })
    }

    /// The options in use.
    pub fn options(&self) -> &JwksOptions {
        &self.options
    }

    /// The current keys, if any were ever loaded.
    pub fn current(&self) -> Option<Arc<JwkSet>> {
        self.lock().keys.clone()
    }

    /// Whether the keys are older than the max age at `now` (or there are none).
    pub fn is_stale(&self, now: i64) -> bool {
        self.lock()
            .fetched_at
            .is_none_or(|at| now.saturating_sub(at) >= self.options.max_age_secs)
    }

    /// Whether a fetch not forced by [`RefreshReason::Load`] would be skipped at `now`
    /// because the last attempt started less than the cooldown ago.
    pub fn in_cooldown(&self, now: i64) -> bool {
        let state = self.lock();
        self.cooling(&state, now)
    }

    /// How many fetches (file reads or HTTP requests) were started.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The error of the last fetch, if it failed.
    pub fn last_error(&self) -> Option<JwksError> {
        self.lock().last_error.clone()
    }

    /// Fetches the key set, single-flight, unless the cooldown forbids it for `reason`.
    ///
    /// Concurrent callers wait for the fetch in flight and share its result. On error the
    /// previous keys stay in use (stale-if-error).
    pub async fn refresh(&self, now: i64, reason: RefreshReason) -> Refresh {
        let seen = self.lock().generation;
        let _gate = self.fetch_gate.lock().await;
        {
            let state = self.lock();
            if state.generation != seen {
                // Someone fetched while we waited: share their result.
                return Refresh {
                    keys: state.keys.clone(),
                    changed: false,
                    error: state.last_error.clone(),
                };
            }
            if reason != RefreshReason::Load && self.cooling(&state, now) {
                return Refresh {
                    keys: state.keys.clone(),
                    changed: false,
                    error: None,
                };
            }
        }
        self.lock().last_attempt = Some(now);
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let result = self.fetch().await;

        let mut state = self.lock();
        state.generation += 1;
        match result {
            Ok(keys) => {
                let changed = state.keys.as_deref() != Some(&keys);
                if changed {
                    state.keys = Some(Arc::new(keys));
                }
                state.fetched_at = Some(now);
                state.last_error = None;
                Refresh {
                    keys: state.keys.clone(),
                    changed,
                    error: None,
                }
            }
            Err(error) => {
                tracing::warn!(%error, "jwks refresh failed; keeping the last good keys");
                state.last_error = Some(error.clone());
                Refresh {
                    keys: state.keys.clone(),
                    changed: false,
                    error: Some(error),
                }
            }
        }
    }

    fn cooling(&self, state: &State, now: i64) -> bool {
        state
            .last_attempt
            .is_some_and(|at| (0..self.options.cooldown_secs).contains(&now.saturating_sub(at)))
    }

    async fn fetch(&self) -> Result<JwkSet, JwksError> {
        let bytes = match &self.fetcher {
            Fetcher::File(path) => read_file(path).await?,
            Fetcher::Url { uri, client } => {
                tokio::time::timeout(self.options.fetch_timeout, get(client, uri))
                    .await
                    .map_err(|_| JwksError::Timeout)??
            }
        };
        parse_jwks(&bytes)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves State consistent; a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn read_file(path: &std::path::Path) -> Result<Bytes, JwksError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| JwksError::Io(e.to_string()))?;
    let mut bytes = Vec::new();
    // Read one byte past the cap to tell "exactly at the cap" from "over it".
    file.take(MAX_JWKS_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| JwksError::Io(e.to_string()))?;
    if bytes.len() > MAX_JWKS_BYTES {
        return Err(JwksError::TooLarge);
    }
    Ok(bytes.into())
}

async fn get(client: &HttpsClient, uri: &Uri) -> Result<Bytes, JwksError> {
    let request = Request::get(uri.clone())
        .header(header::ACCEPT, "application/json")
        .header(header::USER_AGENT, "spell-coven-hub")
        .body(Empty::new())
        .map_err(|e| JwksError::Fetch(e.to_string()))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| JwksError::Fetch(error_chain(&e)))?;
    // jose requires 200; redirects are not followed (the legacy client never does).
    if response.status() != StatusCode::OK {
        return Err(JwksError::Status(response.status().as_u16()));
    }
    let declared = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_JWKS_BYTES as u64) {
        return Err(JwksError::TooLarge);
    }
    let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                JwksError::TooLarge
            } else {
                JwksError::Fetch(error_chain(&*e))
            }
        })?;
    Ok(body.to_bytes())
}

/// An error and its causes, joined (hyper's top-level message alone says little).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn https_client() -> Result<HttpsClient, JwksError> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| JwksError::Fetch(e.to_string()))?
        .https_or_http()
        .enable_http1()
        .build();
    // Fetches are rare (minutes apart): no idle connections kept.
    Ok(Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector))
}

/// Checks a JWKS URL: `https://`, or `http://` only when the host is loopback
/// (`localhost`, `127.0.0.0/8`, `::1`); no user info (credentials do not belong in config
/// URLs that end up in logs).
///
/// # Errors
/// [`JwksError::InvalidUrl`] naming what is wrong.
pub fn validate_url(url: &str) -> Result<Uri, JwksError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| JwksError::InvalidUrl("not a valid url"))?;
    let authority = uri
        .authority()
        .ok_or(JwksError::InvalidUrl("url has no host"))?;
    if authority.as_str().contains('@') {
        return Err(JwksError::InvalidUrl("url must not contain user info"));
    }
    let host = authority.host();
    if host.is_empty() {
        return Err(JwksError::InvalidUrl("url has no host"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback(host) => Ok(uri),
        Some("http") => Err(JwksError::InvalidUrl(
            "http is only allowed on loopback; use https",
        )),
        _ => Err(JwksError::InvalidUrl("scheme must be https")),
    }
}

fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback()
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| Ipv4Addr::is_loopback(&v4))
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.255.0.9",
            "[::1]",
            "::1",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "example.com",
            "10.0.0.1",
            "0.0.0.0",
            "[::]",
            "128.0.0.1",
            "localhost.",
            "127.0.0.1.nip.io",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[tokio::test]
    async fn cooldown_and_max_age_follow_the_injected_clock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("jwks.json");
        let key = crate::auth::TestIssuer::new("k");
        std::fs::write(&path, crate::auth::TestIssuer::jwks(&[&key])).expect("write");
        let store = KeyStore::new(KeySource::File(path), JwksOptions::default()).expect("store");
        assert!(store.is_stale(0) && !store.in_cooldown(0));

        let first = store.refresh(1000, RefreshReason::Load).await;
        assert!(first.changed && first.error.is_none() && first.keys.is_some());
        assert!(store.in_cooldown(1000) && store.in_cooldown(1029) && !store.in_cooldown(1030));
        assert!(
            !store.in_cooldown(999),
            "a clock that went back does not block fetching"
        );
        assert!(!store.is_stale(1599) && store.is_stale(1600));

        let skipped = store.refresh(1010, RefreshReason::UnknownKey).await;
        assert!(!skipped.changed && skipped.keys.is_some());
        assert_eq!(store.fetch_count(), 1);
        let forced = store.refresh(1011, RefreshReason::Load).await;
        assert!(!forced.changed, "same keys");
        assert_eq!(store.fetch_count(), 2);
    }
}
