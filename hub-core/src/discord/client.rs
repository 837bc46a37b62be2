//! The Discord REST client: one kept-alive HTTPS connection pool, the bot token, the buckets.
//!
//! Retry policy (never loops): a request waits at most once, for at most
//! [`MAX_SHORT_WAIT`] — either before sending, when its bucket is known empty, or after a
//! 429 whose `retry_after` is that short — and is sent at most twice. A longer wait is
//! returned as [`DiscordError::RateLimited`] (the hub answers 503 with `Retry-After`).
//! 4xx answers are never retried (Discord bans IPs that make too many invalid requests,
//! `rate-limits.mdx`, "Invalid Request Limit"); after a 401 the token rests for
//! [`UNAUTHORIZED_PAUSE`]; 5xx and transport failures are returned at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use http::{Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use super::error::{DiscordError, classify};
use super::ratelimit::{RateLimits, Verdict, parse_seconds};
use crate::metrics::{Metrics, inc};
use crate::secret::Secret;

/// The longest rate-limit wait the client sits out itself before retrying once.
pub const MAX_SHORT_WAIT: Duration = Duration::from_secs(2);
/// Deadline of one HTTP exchange with Discord (connect, send, read the answer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer body read from Discord.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// After a 401 the token is not used again for this long: Discord bans IPs that make too many
/// invalid (401/403/429) requests (`rate-limits.mdx`, "Invalid Request Limit") and asks to
/// stop using a token that was rejected. Requests in the pause fail at once, without a call.
pub const UNAUTHORIZED_PAUSE: Duration = Duration::from_secs(60);

const CREATE_ROUTE: &str = "POST /guilds/{guild.id}/channels";
const DELETE_ROUTE: &str = "DELETE /channels/{channel.id}";

/// A voice channel to create (`developers/resources/guild.mdx`, "Create Guild Channel").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateChannel {
    /// 1–100 characters.
    pub name: String,
    /// 0 (unlimited) to 99.
    pub user_limit: Option<u8>,
    /// The category to put it in.
    pub parent_id: Option<u64>,
}

/// The part of Discord's channel object the hub uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// The channel id.
    pub id: u64,
    /// The name as Discord stored it.
    pub name: String,
}

#[derive(Deserialize)]
struct ChannelBody {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize, Default)]
struct TooManyRequests {
    #[serde(default)]
    retry_after: Option<f64>,
    #[serde(default)]
    global: bool,
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The Discord REST client. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct DiscordClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: HttpsClient,
    base: String,
    token: Secret,
    limits: Mutex<RateLimits>,
    /// After a 401, no request is sent until this instant (see [`UNAUTHORIZED_PAUSE`]).
    paused_until: Mutex<Option<Instant>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for DiscordClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordClient")
            .field("base", &self.inner.base)
            .finish_non_exhaustive()
    }
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl DiscordClient {
    /// A client for `base` (e.g. `https://discord.com/api/v10`, already validated by the
    /// config: https, or http on loopback) authenticating as the bot.
    ///
    /// # Errors
    /// [`DiscordError::Transport`] if the TLS configuration cannot be built.
    pub fn new(base: &str, token: Secret, metrics: Arc<Metrics>) -> Result<Self, DiscordError> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| DiscordError::Transport(format!("tls setup: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(8)
            .build(https);
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base: base.trim_end_matches('/').to_owned(),
                token,
                limits: Mutex::new(RateLimits::new()),
                paused_until: Mutex::new(None),
                metrics,
            }),
        })
    }

    /// Creates a voice channel (type 2) in `guild_id`.
    ///
    /// # Errors
    /// Any [`DiscordError`].
    pub async fn create_voice_channel(
        &self,
        guild_id: u64,
        req: &CreateChannel,
        reason: HeaderValue,
    ) -> Result<Channel, DiscordError> {
        let mut body = serde_json::json!({ "name": req.name, "type": 2 });
        if let Some(limit) = req.user_limit {
            body["user_limit"] = limit.into();
        }
        if let Some(parent) = req.parent_id {
            body["parent_id"] = parent.to_string().into();
        }
        let body = serde_json::to_vec(&body).map_err(|e| DiscordError::Transport(e.to_string()))?;
        // The URL is built from the parsed integer, never from request text.
        let url = format!("{}/guilds/{guild_id}/channels", self.inner.base);
        let answer = self
            .send(
                Method::POST,
                CREATE_ROUTE,
                guild_id,
                &url,
                Some(body),
                reason,
            )
            .await?;
        let channel: ChannelBody = serde_json::from_slice(&answer.body)
            .map_err(|_| DiscordError::Transport("unreadable channel object".into()))?;
        let id = crate::config::parse_snowflake_str(&channel.id)
            .ok_or_else(|| DiscordError::Transport("channel id is not a snowflake".into()))?;
        Ok(Channel {
            id,
            name: channel.name.unwrap_or_else(|| req.name.clone()),
        })
    }

    /// Deletes a channel.
    ///
    /// # Errors
    /// Any [`DiscordError`]; [`DiscordError::UnknownChannel`] when it is already gone.
    pub async fn delete_channel(
        &self,
        channel_id: u64,
        reason: HeaderValue,
    ) -> Result<(), DiscordError> {
        let url = format!("{}/channels/{channel_id}", self.inner.base);
        self.send(Method::DELETE, DELETE_ROUTE, channel_id, &url, None, reason)
            .await
            .map(|_| ())
    }

    /// Sends one request with the retry policy in the module docs; returns a 2xx answer.
    async fn send(
        &self,
        method: Method,
        route: &'static str,
        major: u64,
        url: &str,
        body: Option<Vec<u8>>,
        reason: HeaderValue,
    ) -> Result<Answer, DiscordError> {
        let paused = *self
            .inner
            .paused_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if paused.is_some_and(|until| until > Instant::now()) {
            return Err(DiscordError::Unauthorized);
        }
        let mut waited = false;
        loop {
            // Wait before sending when the bucket is known empty (rate-limits.mdx: "avoid
            // hitting the rate limit" by reading the headers).
            let verdict = self.limits().check(route, major, Instant::now());
            if let Verdict::Wait(wait) = verdict {
                if waited || wait > MAX_SHORT_WAIT {
                    return Err(DiscordError::RateLimited {
                        retry_after: wait,
                        global: false,
                    });
                }
                waited = true;
                tokio::time::sleep(wait).await;
                continue;
            }
            let answer = self
                .exchange(&method, url, body.clone(), reason.clone())
                .await?;
            let now = Instant::now();
            let header = |name: &str| answer.headers.get(name).and_then(|v| v.to_str().ok());
            self.limits().observe(
                route,
                major,
                header("x-ratelimit-bucket"),
                header("x-ratelimit-remaining").and_then(|v| v.parse().ok()),
                header("x-ratelimit-reset-after").and_then(parse_seconds),
                now,
            );
            if answer.status == 429 {
                let parsed: TooManyRequests =
                    serde_json::from_slice(&answer.body).unwrap_or_default();
                let wait = parsed
                    .retry_after
                    .and_then(|s| parse_seconds(&s.to_string()))
                    .or_else(|| header("retry-after").and_then(parse_seconds))
                    .unwrap_or(Duration::from_secs(1));
                let global = parsed.global
                    || header("x-ratelimit-global").is_some_and(|v| v.eq_ignore_ascii_case("true"));
                self.limits().observe_429(route, major, wait, global, now);
                tracing::warn!(
                    route,
                    wait_ms = wait.as_millis() as u64,
                    global,
                    "discord 429"
                );
                if waited || wait > MAX_SHORT_WAIT {
                    return Err(DiscordError::RateLimited {
                        retry_after: wait,
                        global,
                    });
                }
                waited = true;
                tokio::time::sleep(wait).await;
                continue;
            }
            if (200..300).contains(&answer.status) {
                return Ok(answer);
            }
            let err = classify(answer.status, &answer.body);
            if err == DiscordError::Unauthorized {
                *self
                    .inner
                    .paused_until
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(Instant::now() + UNAUTHORIZED_PAUSE);
                tracing::error!(
                    route,
                    "discord answered 401: DISCORD_BOT_TOKEN is wrong or revoked"
                );
            } else {
                tracing::warn!(route, status = answer.status, error = %err, "discord request failed");
            }
            return Err(err);
        }
    }

    fn limits(&self) -> std::sync::MutexGuard<'_, RateLimits> {
        // A poisoned lock only means another request panicked mid-update; the table is
        // still a valid cache of hints.
        self.inner
            .limits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One HTTP exchange, timed and counted.
    async fn exchange(
        &self,
        method: &Method,
        url: &str,
        body: Option<Vec<u8>>,
        reason: HeaderValue,
    ) -> Result<Answer, DiscordError> {
        let mut auth = HeaderValue::from_str(&format!("Bot {}", self.inner.token.expose()))
            .map_err(|_| DiscordError::Transport("the bot token is not a valid header".into()))?;
        auth.set_sensitive(true);
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(url)
            .header(AUTHORIZATION, auth)
            .header(
                USER_AGENT,
                "DiscordBot (https://example.invalid/spell-coven, 0.1)",
            )
            .header("x-audit-log-reason", reason);
        if body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|_| DiscordError::Transport("invalid request url".into()))?;
        let started = Instant::now();
        let metrics = &self.inner.metrics;
        let result = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let response = self
                .inner
                .http
                .request(request)
                .await
                .map_err(|e| DiscordError::Transport(transport_reason(&e)))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|_| DiscordError::Transport("unreadable answer".into()))?
                .to_bytes();
            Ok(Answer {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        })
        .await
        .unwrap_or_else(|_| Err(DiscordError::Transport("timed out".into())));
        let elapsed = started.elapsed().as_micros() as u64;
        metrics
            .discord_latency_us_sum
            .fetch_add(elapsed, std::sync::atomic::Ordering::Relaxed);
        inc(&metrics.discord_latency_count);
        match &result {
            Ok(a) if a.status == 429 => inc(&metrics.discord_requests_429),
            Ok(a) if (200..300).contains(&a.status) => inc(&metrics.discord_requests_2xx),
            Ok(a) if a.status < 500 => inc(&metrics.discord_requests_4xx),
            _ => inc(&metrics.discord_requests_5xx),
        }
        result
    }
}

/// A short, token-free description of a transport failure.
fn transport_reason(e: &hyper_util::client::legacy::Error) -> String {
    if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}
