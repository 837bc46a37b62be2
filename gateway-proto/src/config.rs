//! Session configuration.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::dispatch::EventFilter;
use crate::intents::Intents;
use crate::session::Session;

/// The default Gateway URL, used until [`Gateway::set_gateway_info`]
/// provides the one from `GET /gateway/bot`.
///
/// [`Gateway::set_gateway_info`]: crate::Gateway::set_gateway_info
pub const DEFAULT_GATEWAY_URL: &str = "wss://gateway.discord.gg";

/// The longest deadline any phase may have (connect, HELLO, READY/RESUMED,
/// close handshake). Longer configured values are clamped to it.
pub const MAX_PHASE_DEADLINE: Duration = Duration::from_secs(20);

/// A bot token. Its `Debug` output is redacted so it never lands in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wrap a token. A leading `Bot ` prefix (as used in REST headers) is
    /// removed: the Gateway wants the bare token.
    #[must_use]
    pub fn new(token: impl Into<String>) -> Self {
        let token = token.into();
        match token.strip_prefix("Bot ") {
            Some(bare) => Self(bare.to_owned()),
            None => Self(token),
        }
    }

    /// The secret itself, for IDENTIFY and RESUME. Never log it.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl From<String> for Token {
    fn from(token: String) -> Self {
        Self::new(token)
    }
}

impl From<&str> for Token {
    fn from(token: &str) -> Self {
        Self::new(token)
    }
}

/// The `properties` object of IDENTIFY (`events/gateway-events.mdx`,
/// "Identify Connection Properties").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionProperties {
    /// Operating system.
    pub os: String,
    /// Library name.
    pub browser: String,
    /// Library name.
    pub device: String,
}

impl Default for ConnectionProperties {
    fn default() -> Self {
        Self {
            os: std::env::consts::OS.to_owned(),
            browser: "gateway-proto".to_owned(),
            device: "gateway-proto".to_owned(),
        }
    }
}

/// Transport compression (`events/gateway.mdx`, "Transport Compression").
///
/// Choosing a variant whose cargo feature is off makes the machine connect
/// uncompressed (see [`Gateway::compression`](crate::Gateway::compression)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// Plain JSON text frames (the default without the `zlib` feature).
    #[cfg_attr(not(feature = "zlib"), default)]
    None,
    /// `compress=zlib-stream`: one zlib context per connection (the default
    /// with the `zlib` feature, which is on by default).
    #[cfg_attr(feature = "zlib", default)]
    ZlibStream,
    /// `compress=zstd-stream`: one zstd context per connection. Needs the
    /// `zstd` feature.
    ZstdStream,
}

impl Compression {
    /// The value of the `compress` query parameter, if any.
    #[must_use]
    pub const fn query_value(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::ZlibStream => Some("zlib-stream"),
            Self::ZstdStream => Some("zstd-stream"),
        }
    }
}

/// Everything the session machine needs to know up front. Build one with
/// [`Config::builder`].
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) token: Token,
    pub(crate) intents: Intents,
    pub(crate) properties: ConnectionProperties,
    pub(crate) shard: Option<[u32; 2]>,
    pub(crate) large_threshold: Option<u8>,
    pub(crate) compression: Compression,
    pub(crate) seed: u64,
    pub(crate) gateway_url: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) hello_timeout: Duration,
    pub(crate) ready_timeout: Duration,
    pub(crate) close_timeout: Duration,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_cap: Duration,
    pub(crate) healthy_after: Duration,
    pub(crate) max_resume_failures: u32,
    pub(crate) events: EventFilter,
    pub(crate) manual_acknowledge: bool,
    pub(crate) command_queue: usize,
    pub(crate) max_compressed_size: usize,
    pub(crate) max_message_size: usize,
    pub(crate) session: Option<Session>,
}

impl Config {
    /// Start building a configuration for `token` with `intents`.
    pub fn builder(token: impl Into<Token>, intents: Intents) -> ConfigBuilder {
        ConfigBuilder {
            config: Self {
                token: token.into(),
                intents,
                properties: ConnectionProperties::default(),
                shard: None,
                large_threshold: None,
                compression: Compression::default(),
                seed: 0x5eed_cafe_f00d_d00d,
                gateway_url: DEFAULT_GATEWAY_URL.to_owned(),
                connect_timeout: Duration::from_secs(10),
                hello_timeout: Duration::from_secs(10),
                ready_timeout: Duration::from_secs(15),
                close_timeout: Duration::from_secs(3),
                backoff_base: Duration::from_secs(1),
                backoff_cap: Duration::from_secs(60),
                healthy_after: Duration::from_secs(60),
                max_resume_failures: 3,
                events: EventFilter::default(),
                manual_acknowledge: false,
                command_queue: 64,
                max_compressed_size: 16 * 1024 * 1024,
                max_message_size: 16 * 1024 * 1024,
                session: None,
            },
        }
    }

    /// A configuration with every default.
    #[must_use]
    pub fn new(token: impl Into<Token>, intents: Intents) -> Self {
        Self::builder(token, intents).build()
    }

    /// The configured intents.
    #[must_use]
    pub const fn intents(&self) -> Intents {
        self.intents
    }

    /// The configured transport compression.
    #[must_use]
    pub const fn compression(&self) -> Compression {
        self.compression
    }

    /// The configured shard, `[shard_id, shard_count]`.
    #[must_use]
    pub const fn shard(&self) -> Option<[u32; 2]> {
        self.shard
    }

    /// The event filter.
    #[must_use]
    pub const fn events(&self) -> &EventFilter {
        &self.events
    }
}

/// Builder for [`Config`]. Every setter has a sensible default.
#[derive(Debug, Clone)]
#[must_use]
pub struct ConfigBuilder {
    config: Config,
}

impl ConfigBuilder {
    /// IDENTIFY `properties` (default: this OS, `gateway-proto`).
    pub fn properties(mut self, properties: ConnectionProperties) -> Self {
        self.config.properties = properties;
        self
    }

    /// IDENTIFY `shard` as `[shard_id, shard_count]` (default: none).
    pub const fn shard(mut self, shard_id: u32, shard_count: u32) -> Self {
        self.config.shard = Some([shard_id, shard_count]);
        self
    }

    /// IDENTIFY `large_threshold`, clamped to Discord's 50..=250 (default:
    /// not sent, Discord uses 50).
    pub fn large_threshold(mut self, threshold: u8) -> Self {
        self.config.large_threshold = Some(threshold.clamp(50, 250));
        self
    }

    /// Transport compression (default: `zlib-stream` when the `zlib` feature
    /// is on, else none).
    pub const fn compression(mut self, compression: Compression) -> Self {
        self.config.compression = compression;
        self
    }

    /// Seed of the random source used for heartbeat and backoff jitter. Give
    /// each process a different seed (for example from the OS) in
    /// production; tests use a fixed one.
    pub const fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// The Gateway URL to use until [`Gateway::set_gateway_info`] provides
    /// one (default [`DEFAULT_GATEWAY_URL`]). Query parameters `v`,
    /// `encoding` and `compress` are always set by the machine.
    ///
    /// [`Gateway::set_gateway_info`]: crate::Gateway::set_gateway_info
    pub fn gateway_url(mut self, url: impl Into<String>) -> Self {
        self.config.gateway_url = url.into();
        self
    }

    /// Deadline for the transport to open (default 10 s, at most 20 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout.min(MAX_PHASE_DEADLINE);
        self
    }

    /// Deadline for HELLO after the transport opened (default 10 s, at most
    /// 20 s).
    pub fn hello_timeout(mut self, timeout: Duration) -> Self {
        self.config.hello_timeout = timeout.min(MAX_PHASE_DEADLINE);
        self
    }

    /// Deadline for READY after IDENTIFY, or RESUMED after RESUME (default
    /// 15 s, at most 20 s). A long replay keeps a resume alive: every
    /// replayed dispatch pushes this deadline back.
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.config.ready_timeout = timeout.min(MAX_PHASE_DEADLINE);
        self
    }

    /// Deadline for the peer's close frame after we sent ours (default 3 s,
    /// at most 20 s); then the transport is dropped.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.config.close_timeout = timeout.min(MAX_PHASE_DEADLINE);
        self
    }

    /// Reconnect backoff: exponential from `base`, capped at `cap`, with full
    /// jitter (default 1 s and 60 s).
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.config.backoff_base = base;
        self.config.backoff_cap = cap.max(base);
        self
    }

    /// How long a session must stay connected before the backoff resets
    /// (default 60 s).
    pub const fn healthy_after(mut self, duration: Duration) -> Self {
        self.config.healthy_after = duration;
        self
    }

    /// Consecutive failed resumes after which the machine gives up on the
    /// session and identifies a new one (default 3, at least 1).
    pub fn max_resume_failures(mut self, failures: u32) -> Self {
        self.config.max_resume_failures = failures.max(1);
        self
    }

    /// Which dispatches are parsed into typed events and what happens to the
    /// others (default: every typed kind, others passed through raw).
    pub fn events(mut self, filter: EventFilter) -> Self {
        self.config.events = filter;
        self
    }

    /// When `true`, the exported session's seq (and the seq a RESUME asks
    /// for) only advances through [`Gateway::acknowledge`]; when `false`
    /// (default), a dispatch counts as acknowledged once it is handed out.
    ///
    /// [`Gateway::acknowledge`]: crate::Gateway::acknowledge
    pub const fn manual_acknowledge(mut self, manual: bool) -> Self {
        self.config.manual_acknowledge = manual;
        self
    }

    /// Capacity of the queue of commands waiting for the rate limit or a
    /// connection (default 64, at least 1). When full,
    /// [`Gateway::send`](crate::Gateway::send) refuses with
    /// [`SendError::QueueFull`](crate::SendError::QueueFull).
    pub fn command_queue(mut self, capacity: usize) -> Self {
        self.config.command_queue = capacity.max(1);
        self
    }

    /// Cap on the buffered compressed bytes of one message (default 16 MiB).
    pub fn max_compressed_size(mut self, bytes: usize) -> Self {
        self.config.max_compressed_size = bytes.max(1);
        self
    }

    /// Cap on one decompressed message (default 16 MiB).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.config.max_message_size = bytes.max(1);
        self
    }

    /// A session to resume on the first connection (for example one
    /// persisted by a previous process).
    pub fn session(mut self, session: Session) -> Self {
        self.config.session = Some(session);
        self
    }

    /// Finish building.
    #[must_use]
    pub fn build(self) -> Config {
        self.config
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Config, Token};
    use crate::intents::Intents;

    #[test]
    fn token_debug_is_redacted() {
        let token = Token::new("Bot secret.token.value");
        assert_eq!(token.expose_secret(), "secret.token.value");
        assert!(!format!("{token:?}").contains("secret"));
        let config = Config::new("secret.token.value", Intents::GUILDS);
        assert!(!format!("{config:?}").contains("secret"));
    }

    #[test]
    fn deadlines_are_clamped_to_twenty_seconds() {
        let config = Config::builder("t", Intents::GUILDS)
            .connect_timeout(Duration::from_secs(90))
            .hello_timeout(Duration::from_secs(21))
            .ready_timeout(Duration::from_secs(60))
            .close_timeout(Duration::from_secs(30))
            .build();
        for d in [
            config.connect_timeout,
            config.hello_timeout,
            config.ready_timeout,
            config.close_timeout,
        ] {
            assert!(d <= Duration::from_secs(20));
        }
    }
}
