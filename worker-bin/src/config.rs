//! Worker configuration from environment variables (contract §1, worker table).
//!
//! Every variable is validated up front; the first bad or missing one becomes
//! a [`ConfigError`] that names it, and `main` prints that one line and exits
//! with status 2.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::secret::Secret;

/// Default REST base (contract §1).
pub const DEFAULT_API_BASE: &str = "https://discord.com/api/v10";
/// Default outbox bound, in events.
pub const DEFAULT_OUTBOX_CAPACITY: usize = 10_000;
/// The shortest hub secret accepted (contract §1: "at least 32 bytes").
pub const MIN_HUB_SECRET_BYTES: usize = 32;

/// One documented variable: name, default (if any), meaning. Drives `--help`.
#[derive(Debug, Clone, Copy)]
pub struct VariableDoc {
    /// Environment variable name.
    pub name: &'static str,
    /// `None` when required; otherwise the default shown in `--help`.
    pub default: Option<&'static str>,
    /// One-line meaning.
    pub meaning: &'static str,
}

/// Every variable the worker reads, in `--help` order.
pub const VARIABLES: &[VariableDoc] = &[
    VariableDoc {
        name: "DISCORD_BOT_TOKEN",
        default: None,
        meaning: "bot token (never logged)",
    },
    VariableDoc {
        name: "PRIMARY_GUILD_ID",
        default: None,
        meaning: "the guild whose voice events are forwarded (digits only)",
    },
    VariableDoc {
        name: "HUB_ENDPOINT",
        default: None,
        meaning: "full http(s) URL of the hub's /internal/events",
    },
    VariableDoc {
        name: "HUB_SECRET",
        default: None,
        meaning: "HMAC key shared with the hub, at least 32 bytes (never logged)",
    },
    VariableDoc {
        name: "DISCORD_API_BASE",
        default: Some(DEFAULT_API_BASE),
        meaning: "Discord REST base, used for GET /gateway/bot",
    },
    VariableDoc {
        name: "DISCORD_GATEWAY_URL",
        default: Some("(unset: ask GET /gateway/bot)"),
        meaning: "ws(s) URL to connect to instead of asking GET /gateway/bot",
    },
    VariableDoc {
        name: "WORKER_STATE_FILE",
        default: Some("(unset: nothing persisted)"),
        meaning: "file where the session and voice cache are saved so a restart RESUMEs",
    },
    VariableDoc {
        name: "HEALTH_ADDR",
        default: Some("(unset: off)"),
        meaning: "ip:port serving GET /health (JSON) and GET /metrics (Prometheus)",
    },
    VariableDoc {
        name: "WORKER_OUTBOX_CAPACITY",
        default: Some("10000"),
        meaning: "events kept while the hub is unreachable; on overflow the oldest are dropped and a guild.sync follows",
    },
    VariableDoc {
        name: "LOG_FORMAT",
        default: Some("pretty"),
        meaning: "pretty or json (one JSON object per line); level via RUST_LOG",
    },
];

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// The validated worker configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DISCORD_BOT_TOKEN`, without any `Bot ` prefix.
    pub token: Secret,
    /// `PRIMARY_GUILD_ID`, as the decimal string Discord uses.
    pub guild_id: String,
    /// `HUB_ENDPOINT`.
    pub hub_endpoint: http::Uri,
    /// `HUB_SECRET`.
    pub hub_secret: Secret,
    /// `DISCORD_API_BASE`, without a trailing slash.
    pub api_base: String,
    /// `DISCORD_GATEWAY_URL`.
    pub gateway_url: Option<String>,
    /// `WORKER_STATE_FILE`.
    pub state_file: Option<PathBuf>,
    /// `HEALTH_ADDR`.
    pub health_addr: Option<SocketAddr>,
    /// `WORKER_OUTBOX_CAPACITY`.
    pub outbox_capacity: usize,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
}

/// A missing or invalid variable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required variable is unset or empty.
    Missing {
        /// The variable.
        name: &'static str,
    },
    /// A variable is set to something unusable.
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong, in plain words (never the secret value).
        reason: String,
    },
}

impl ConfigError {
    /// The variable this error is about.
    #[must_use]
    pub fn variable(&self) -> &'static str {
        match self {
            Self::Missing { name } | Self::Invalid { name, .. } => name,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { name } => write!(f, "{name} is required but not set"),
            Self::Invalid { name, reason } => write!(f, "{name} is invalid: {reason}"),
        }
    }
}

impl std::error::Error for ConfigError {}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
}

impl Config {
    /// Read the configuration from the process environment.
    ///
    /// # Errors
    /// The first missing or invalid variable, named.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read the configuration from `(name, value)` pairs (tests, embedding).
    ///
    /// ```
    /// let config = worker::Config::from_pairs([
    ///     ("DISCORD_BOT_TOKEN", "abc.def.ghi"),
    ///     ("PRIMARY_GUILD_ID", "123456789012345678"),
    ///     ("HUB_ENDPOINT", "http://127.0.0.1:3000/internal/events"),
    ///     ("HUB_SECRET", "0123456789abcdef0123456789abcdef"),
    /// ])
    /// .unwrap();
    /// assert_eq!(config.api_base, "https://discord.com/api/v10");
    /// ```
    ///
    /// # Errors
    /// The first missing or invalid variable, named.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let pairs: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self::from_lookup(|name| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // An empty value counts as unset: `FOO= cmd` is how shells unset.
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing { name });

        let token = parse_token(&required("DISCORD_BOT_TOKEN")?)?;
        let guild_id = parse_snowflake("PRIMARY_GUILD_ID", &required("PRIMARY_GUILD_ID")?)?;
        let hub_endpoint = parse_http_url("HUB_ENDPOINT", &required("HUB_ENDPOINT")?)?;
        let hub_secret = required("HUB_SECRET")?;
        if hub_secret.len() < MIN_HUB_SECRET_BYTES {
            return Err(invalid(
                "HUB_SECRET",
                format!(
                    "must be at least {MIN_HUB_SECRET_BYTES} bytes, got {}",
                    hub_secret.len()
                ),
            ));
        }
        let api_base = match get("DISCORD_API_BASE") {
            Some(v) => {
                parse_http_url("DISCORD_API_BASE", &v)?;
                v.trim().trim_end_matches('/').to_owned()
            }
            None => DEFAULT_API_BASE.to_owned(),
        };
        let gateway_url = get("DISCORD_GATEWAY_URL")
            .map(|v| parse_ws_url("DISCORD_GATEWAY_URL", &v))
            .transpose()?;
        let state_file = get("WORKER_STATE_FILE")
            .map(|v| parse_state_file(&v))
            .transpose()?;
        let health_addr = get("HEALTH_ADDR")
            .map(|v| {
                v.trim().parse::<SocketAddr>().map_err(|_| {
                    invalid(
                        "HEALTH_ADDR",
                        "expected ip:port, for example 127.0.0.1:9101",
                    )
                })
            })
            .transpose()?;
        let outbox_capacity = match get("WORKER_OUTBOX_CAPACITY") {
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=10_000_000).contains(&n) => n,
                _ => {
                    return Err(invalid(
                        "WORKER_OUTBOX_CAPACITY",
                        "expected a whole number from 1 to 10000000",
                    ));
                }
            },
            None => DEFAULT_OUTBOX_CAPACITY,
        };
        let log_format = match get("LOG_FORMAT").as_deref().map(str::trim) {
            None => LogFormat::Pretty,
            Some(v) if v.eq_ignore_ascii_case("pretty") => LogFormat::Pretty,
            Some(v) if v.eq_ignore_ascii_case("json") => LogFormat::Json,
            Some(_) => return Err(invalid("LOG_FORMAT", "expected pretty or json")),
        };

        Ok(Self {
            token,
            guild_id,
            hub_endpoint,
            hub_secret: Secret::new(hub_secret),
            api_base,
            gateway_url,
            state_file,
            health_addr,
            outbox_capacity,
            log_format,
        })
    }
}

fn parse_token(raw: &str) -> Result<Secret, ConfigError> {
    let trimmed = raw.trim();
    let bare = trimmed.strip_prefix("Bot ").unwrap_or(trimmed);
    // The token goes into an HTTP header and a JSON string; reject anything
    // that cannot be a Discord token rather than fail later.
    if bare.is_empty() || !bare.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "DISCORD_BOT_TOKEN",
            "must be printable ASCII without spaces",
        ));
    }
    Ok(Secret::new(bare))
}

/// The state file must be creatable: its directory has to exist (checked
/// at start, so a typo fails fast instead of silently never saving).
fn parse_state_file(raw: &str) -> Result<PathBuf, ConfigError> {
    let path = PathBuf::from(raw.trim());
    if path.is_dir() {
        return Err(invalid(
            "WORKER_STATE_FILE",
            "is a directory, expected a file path",
        ));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    if !dir.is_dir() {
        return Err(invalid(
            "WORKER_STATE_FILE",
            format!("directory {} does not exist", dir.display()),
        ));
    }
    Ok(path)
}

/// Discord snowflakes are unsigned 64-bit integers written in decimal
/// (`reference.mdx`, "Snowflakes").
fn parse_snowflake(name: &'static str, raw: &str) -> Result<String, ConfigError> {
    let v = raw.trim();
    if !v.bytes().all(|b| b.is_ascii_digit()) || v.parse::<u64>().is_err() {
        return Err(invalid(name, "expected a Discord snowflake (digits only)"));
    }
    Ok(v.to_owned())
}

fn parse_http_url(name: &'static str, raw: &str) -> Result<http::Uri, ConfigError> {
    let uri: http::Uri = raw
        .trim()
        .parse()
        .map_err(|_| invalid(name, "not a valid URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(invalid(name, "expected an http:// or https:// URL")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid(name, "the URL has no host"));
    }
    Ok(uri)
}

fn parse_ws_url(name: &'static str, raw: &str) -> Result<String, ConfigError> {
    let v = raw.trim();
    let uri: http::Uri = v.parse().map_err(|_| invalid(name, "not a valid URL"))?;
    match uri.scheme_str() {
        Some("ws" | "wss") => {}
        _ => return Err(invalid(name, "expected a ws:// or wss:// URL")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid(name, "the URL has no host"));
    }
    Ok(v.to_owned())
}

/// The `--help` text: usage and every variable with its default.
#[must_use]
pub fn help_text() -> String {
    let mut out = String::from(
        "spell-coven-worker: one Discord Gateway session, forwarded to the hub in order, at least once.\n\n\
         Usage: spell-coven-worker [--help | --version]\n\n\
         Configuration comes from environment variables:\n",
    );
    for var in VARIABLES {
        let default = var.default.unwrap_or("(required)");
        out.push_str(&format!(
            "  {:<24} {}\n  {:<24}   default: {}\n",
            var.name, var.meaning, "", default
        ));
    }
    out.push_str(
        "\nExit status: 0 after SIGTERM/SIGINT, 2 on bad configuration, 1 on a fatal gateway close.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("DISCORD_BOT_TOKEN", "Bot abc.def.ghi"),
            ("PRIMARY_GUILD_ID", "123456789012345678"),
            ("HUB_ENDPOINT", "http://127.0.0.1:3000/internal/events"),
            ("HUB_SECRET", SECRET),
        ]
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let mut pairs = base();
        pairs.extend_from_slice(extra);
        Config::from_pairs(pairs)
    }

    #[test]
    fn defaults() {
        let c = with(&[]).unwrap();
        assert_eq!(c.token.expose(), "abc.def.ghi");
        assert_eq!(c.guild_id, "123456789012345678");
        assert_eq!(c.api_base, DEFAULT_API_BASE);
        assert_eq!(c.gateway_url, None);
        assert_eq!(c.state_file, None);
        assert_eq!(c.health_addr, None);
        assert_eq!(c.outbox_capacity, DEFAULT_OUTBOX_CAPACITY);
        assert_eq!(c.log_format, LogFormat::Pretty);
    }

    #[test]
    fn optional_values() {
        let c = with(&[
            ("DISCORD_API_BASE", "http://127.0.0.1:9/api/v10/"),
            ("DISCORD_GATEWAY_URL", "ws://127.0.0.1:9"),
            ("WORKER_STATE_FILE", "/tmp/x.json"),
            ("HEALTH_ADDR", "127.0.0.1:9101"),
            ("WORKER_OUTBOX_CAPACITY", "5"),
            ("LOG_FORMAT", "json"),
        ])
        .unwrap();
        assert_eq!(c.api_base, "http://127.0.0.1:9/api/v10");
        assert_eq!(c.gateway_url.as_deref(), Some("ws://127.0.0.1:9"));
        assert_eq!(c.state_file, Some(PathBuf::from("/tmp/x.json")));
        assert_eq!(c.health_addr, Some("127.0.0.1:9101".parse().unwrap()));
        assert_eq!(c.outbox_capacity, 5);
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn each_required_variable_is_named_when_missing() {
        for name in [
            "DISCORD_BOT_TOKEN",
            "PRIMARY_GUILD_ID",
            "HUB_ENDPOINT",
            "HUB_SECRET",
        ] {
            let pairs: Vec<_> = base().into_iter().filter(|(k, _)| *k != name).collect();
            let err = Config::from_pairs(pairs).unwrap_err();
            assert_eq!(err, ConfigError::Missing { name });
            assert!(err.to_string().contains(name));
        }
    }

    #[test]
    fn empty_counts_as_missing() {
        let err = with(&[("HUB_SECRET", "")]).unwrap_err();
        assert_eq!(err.variable(), "HUB_SECRET");
    }

    #[test]
    fn invalid_values_are_named() {
        let cases: &[(&str, &str)] = &[
            ("PRIMARY_GUILD_ID", "12ab"),
            ("PRIMARY_GUILD_ID", "-5"),
            ("PRIMARY_GUILD_ID", "99999999999999999999999"),
            ("HUB_ENDPOINT", "ftp://x/y"),
            ("HUB_ENDPOINT", "not a url"),
            ("HUB_ENDPOINT", "/internal/events"),
            ("HUB_SECRET", "short"),
            ("DISCORD_API_BASE", "discord.com"),
            ("DISCORD_GATEWAY_URL", "http://x"),
            ("HEALTH_ADDR", "nope"),
            ("WORKER_OUTBOX_CAPACITY", "0"),
            ("LOG_FORMAT", "xml"),
            ("WORKER_STATE_FILE", "/nonexistent-dir-for-test/state.json"),
            ("WORKER_STATE_FILE", "/"),
            ("DISCORD_BOT_TOKEN", "has space"),
        ];
        for (name, value) in cases {
            let err = with(&[(name, value)]).unwrap_err();
            assert_eq!(err.variable(), *name, "{name}={value}");
            assert!(err.to_string().starts_with(name));
        }
    }

    #[test]
    fn secrets_never_in_errors_or_debug() {
        let err = with(&[("HUB_SECRET", "tooshort-secret")]).unwrap_err();
        assert!(!err.to_string().contains("tooshort-secret"));
        let c = with(&[]).unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("abc.def.ghi"));
        assert!(!debug.contains(SECRET));
    }

    #[test]
    fn help_lists_every_variable_with_default() {
        let help = help_text();
        for var in VARIABLES {
            assert!(help.contains(var.name));
        }
        assert!(help.contains(DEFAULT_API_BASE));
    }
}
