//! The hub's configuration: every environment variable of contract §1, with its default.
//!
//! [`Config::from_env`] reads the process environment; [`Config::from_vars`] reads any list of
//! `(name, value)` pairs (tests). An invalid or missing value is a [`ConfigError`] whose
//! `Display` is one line naming the variable and what is wrong, e.g.
//! `PRIMARY_GUILD_ID: must be a Discord snowflake (digits only)`.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::secret::Secret;

/// Where the hub finds the public keys of app session JWTs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwtKeys {
    /// `JWT_PUBLIC_JWK_URL`: fetched over HTTPS (or HTTP on loopback).
    Url(String),
    /// `JWT_PUBLIC_JWKS_FILE`: a JWKS JSON file.
    File(PathBuf),
}

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Pretty,
    /// One JSON object per line.
    Json,
}

/// The hub's validated configuration. Secrets are [`Secret`]s, so `Debug` never shows them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// `HOST`: the bind address (default `0.0.0.0`).
    pub host: IpAddr,
    /// `PORT`: the TCP port (default 3000; 0 picks a free port).
    pub port: u16,
    /// `PRIMARY_GUILD_ID`: the one guild this hub serves.
    pub guild_id: u64,
    /// `HUB_SECRET`: HMAC key shared with the worker (at least 32 bytes).
    pub hub_secret: Secret,
    /// `HUB_SECRET_PREVIOUS`: a second accepted key during rotation.
    pub hub_secret_previous: Option<Secret>,
    /// `DISCORD_BOT_TOKEN`: bot token for Discord REST.
    pub bot_token: Secret,
    /// `DISCORD_API_BASE`: REST base URL, without a trailing slash.
    pub discord_api_base: String,
    /// `JWT_ISSUER`: expected `iss`.
    pub jwt_issuer: String,
    /// `JWT_AUDIENCE`: expected `aud`.
    pub jwt_audience: String,
    /// `JWT_PUBLIC_JWK_URL` or `JWT_PUBLIC_JWKS_FILE` (exactly one).
    pub jwt_keys: JwtKeys,
    /// `CORS_ORIGINS`: exact origins allowed by CORS and the WebSocket `Origin` check.
    pub cors_origins: Vec<String>,
    /// `ROOM_PARENT_ID`: default category of new rooms.
    pub room_parent_id: Option<u64>,
    /// `DATA_DIR`: durable state (room registry, idempotency keys). Default `./data`.
    pub data_dir: PathBuf,
    /// `ROOM_IDLE_TIMEOUT_SECS`: idle rooms are deleted after this long; 0 = never. Default 900.
    pub room_idle_timeout_secs: u64,
    /// `ROOM_CREATE_PER_MINUTE`: rooms one user may create per minute. Default 10.
    pub room_create_per_minute: u32,
    /// `REPLAY_MAX_EVENTS`: events kept for `since` resume. Default 5000.
    pub replay_max_events: usize,
    /// `CLIENT_QUEUE_MAX_BYTES`: unsent bytes per WebSocket client before `1013`. Default 1 MiB.
    pub client_queue_max_bytes: usize,
    /// `REDIS_URL`: shared event stream and state for several replicas (see `hub::redis`).
    pub redis_url: Option<Secret>,
    /// `METRICS_ADDR`: where `GET /metrics` is served; off when absent.
    pub metrics_addr: Option<SocketAddr>,
    /// `LOG_FORMAT`: `pretty` (default) or `json`.
    pub log_format: LogFormat,
}

/// A configuration value that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What is wrong with it, in plain words.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// One documented variable: name, default (`None` = required or off) and meaning.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    /// The environment variable.
    pub name: &'static str,
    /// Its default, as shown in `--help`.
    pub default: &'static str,
    /// What it means.
    pub meaning: &'static str,
}

/// Every hub variable of contract §1, in the contract's order (used by `--help`).
pub const VARIABLES: &[Variable] = &[
    Variable {
        name: "PORT",
        default: "3000",
        meaning: "TCP port",
    },
    Variable {
        name: "HOST",
        default: "0.0.0.0",
        meaning: "bind address",
    },
    Variable {
        name: "PRIMARY_GUILD_ID",
        default: "(required)",
        meaning: "Discord snowflake of the guild (digits only)",
    },
    Variable {
        name: "HUB_SECRET",
        default: "(required)",
        meaning: "HMAC key shared with the worker; at least 32 bytes",
    },
    Variable {
        name: "HUB_SECRET_PREVIOUS",
        default: "(none)",
        meaning: "a second key also accepted, for rotation",
    },
    Variable {
        name: "DISCORD_BOT_TOKEN",
        default: "(required)",
        meaning: "bot token for Discord REST",
    },
    Variable {
        name: "DISCORD_API_BASE",
        default: DEFAULT_DISCORD_API_BASE,
        meaning: "REST base URL (https, or http on loopback)",
    },
    Variable {
        name: "JWT_ISSUER",
        default: "(required)",
        meaning: "expected iss of app session JWTs",
    },
    Variable {
        name: "JWT_AUDIENCE",
        default: "(required)",
        meaning: "expected aud of app session JWTs",
    },
    Variable {
        name: "JWT_PUBLIC_JWK_URL",
        default: "(one of these two)",
        meaning: "JWKS URL (https, or http on loopback)",
    },
    Variable {
        name: "JWT_PUBLIC_JWKS_FILE",
        default: "(one of these two)",
        meaning: "path to a JWKS JSON file",
    },
    Variable {
        name: "CORS_ORIGINS",
        default: "(none)",
        meaning: "comma-separated exact origins allowed by CORS and WS Origin",
    },
    Variable {
        name: "ROOM_PARENT_ID",
        default: "(none)",
        meaning: "default category (snowflake) for new rooms",
    },
    Variable {
        name: "DATA_DIR",
        default: "./data",
        meaning: "durable state: room registry, idempotency keys",
    },
    Variable {
        name: "ROOM_IDLE_TIMEOUT_SECS",
        default: "900",
        meaning: "delete a room empty for this long; 0 = never",
    },
    Variable {
        name: "ROOM_CREATE_PER_MINUTE",
        default: "10",
        meaning: "rooms one user may create per minute",
    },
    Variable {
        name: "REPLAY_MAX_EVENTS",
        default: "5000",
        meaning: "events kept for `since` resume",
    },
    Variable {
        name: "CLIENT_QUEUE_MAX_BYTES",
        default: "1048576",
        meaning: "unsent bytes per WebSocket client before close 1013",
    },
    Variable {
        name: "REDIS_URL",
        default: "(none)",
        meaning: "share state between replicas through Redis",
    },
    Variable {
        name: "METRICS_ADDR",
        default: "(off)",
        meaning: "address for GET /metrics, e.g. 127.0.0.1:9100",
    },
    Variable {
        name: "LOG_FORMAT",
        default: "pretty",
        meaning: "`json` for one JSON object per line; level via RUST_LOG",
    },
];

/// Discord's REST base URL (API v10).
pub const DEFAULT_DISCORD_API_BASE: &str = "https://discord.com/api/v10";

impl Config {
    /// Reads the configuration from the process environment.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A variable that is not valid UTF-8 is reported by name, never shown.
        let mut vars = Vec::new();
        for (key, value) in std::env::vars_os() {
            let Some(key) = key.to_str() else { continue };
            if let Some(var) = VARIABLES.iter().find(|v| v.name == key) {
                match value.into_string() {
                    Ok(value) => vars.push((var.name.to_owned(), value)),
                    Err(_) => return Err(err(var.name, "is not valid UTF-8")),
                }
            }
        }
        Self::from_vars(vars)
    }

    /// Reads the configuration from `(name, value)` pairs; unknown names are ignored.
    ///
    /// ```
    /// let cfg = hub_core::Config::from_vars([
    ///     ("PRIMARY_GUILD_ID", "81384788765712384"),
    ///     ("HUB_SECRET", "0123456789abcdef0123456789abcdef"),
    ///     ("DISCORD_BOT_TOKEN", "bot-token"),
    ///     ("JWT_ISSUER", "https://app.example"),
    ///     ("JWT_AUDIENCE", "spell-coven"),
    ///     ("JWT_PUBLIC_JWKS_FILE", "/etc/spell-coven/jwks.json"),
    /// ])
    /// .unwrap();
    /// assert_eq!(cfg.port, 3000);
    /// let bad = hub_core::Config::from_vars([("PRIMARY_GUILD_ID", "abc")]).unwrap_err();
    /// assert_eq!(bad.to_string(), "PRIMARY_GUILD_ID: must be a Discord snowflake (digits only)");
    /// ```
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let map: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        // An empty value counts as unset, as shells and compose files often export `VAR=`.
        let get = |name: &'static str| map.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let required = |name: &'static str| get(name).ok_or_else(|| err(name, "is required"));

        let guild_id = parse_snowflake("PRIMARY_GUILD_ID", required("PRIMARY_GUILD_ID")?)?;
        let hub_secret = parse_secret("HUB_SECRET", required("HUB_SECRET")?)?;
        let hub_secret_previous = get("HUB_SECRET_PREVIOUS")
            .map(|v| parse_secret("HUB_SECRET_PREVIOUS", v))
            .transpose()?;
        let bot_token = required("DISCORD_BOT_TOKEN")?;
        if bot_token.starts_with("Bot ") {
            return Err(err(
                "DISCORD_BOT_TOKEN",
                "give the token without the `Bot ` prefix",
            ));
        }
        if bot_token
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(err(
                "DISCORD_BOT_TOKEN",
                "must not contain spaces or control characters",
            ));
        }
        let bot_token = Secret::new(bot_token);
        let discord_api_base = match get("DISCORD_API_BASE") {
            Some(v) => parse_base_url("DISCORD_API_BASE", v)?,
            None => DEFAULT_DISCORD_API_BASE.to_owned(),
        };
        let jwt_issuer = required("JWT_ISSUER")?.to_owned();
        let jwt_audience = required("JWT_AUDIENCE")?.to_owned();
        let jwt_keys = match (get("JWT_PUBLIC_JWK_URL"), get("JWT_PUBLIC_JWKS_FILE")) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "JWT_PUBLIC_JWK_URL",
                    "set only one of JWT_PUBLIC_JWK_URL and JWT_PUBLIC_JWKS_FILE",
                ));
            }
            (None, None) => {
                return Err(err(
                    "JWT_PUBLIC_JWK_URL",
                    "one of JWT_PUBLIC_JWK_URL or JWT_PUBLIC_JWKS_FILE is required",
                ));
            }
            (Some(url), None) => JwtKeys::Url(parse_base_url("JWT_PUBLIC_JWK_URL", url)?),
            (None, Some(path)) => JwtKeys::File(PathBuf::from(path)),
        };
        let cors_origins = match get("CORS_ORIGINS") {
            Some(v) => parse_origins(v)?,
            None => Vec::new(),
        };
        let room_parent_id = get("ROOM_PARENT_ID")
            .map(|v| parse_snowflake("ROOM_PARENT_ID", v))
            .transpose()?;
        let host = match get("HOST") {
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Some("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(v) => v
                .parse()
                .map_err(|_| err("HOST", "must be an IP address such as 0.0.0.0 or ::1"))?,
        };
        let redis_url = match get("REDIS_URL") {
            None => None,
            Some(v) if v.starts_with("redis://") || v.starts_with("rediss://") => {
                Some(Secret::new(v))
            }
            Some(_) => return Err(err("REDIS_URL", "must start with redis:// or rediss://")),
        };
        let metrics_addr = get("METRICS_ADDR")
            .map(|v| {
                v.parse::<SocketAddr>().map_err(|_| {
                    err(
                        "METRICS_ADDR",
                        "must be an address with a port, e.g. 127.0.0.1:9100",
                    )
                })
            })
            .transpose()?;
        let log_format = match get("LOG_FORMAT") {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(_) => return Err(err("LOG_FORMAT", "must be `pretty` or `json`")),
        };
        Ok(Self {
            host,
            port: parse_number(get("PORT"), "PORT", 3000, 0, u64::from(u16::MAX))? as u16,
            guild_id,
            hub_secret,
            hub_secret_previous,
            bot_token,
            discord_api_base,
            jwt_issuer,
            jwt_audience,
            jwt_keys,
            cors_origins,
            room_parent_id,
            data_dir: PathBuf::from(get("DATA_DIR").unwrap_or("./data")),
            room_idle_timeout_secs: parse_number(
                get("ROOM_IDLE_TIMEOUT_SECS"),
                "ROOM_IDLE_TIMEOUT_SECS",
                900,
                0,
                365 * 24 * 3600,
            )?,
            room_create_per_minute: parse_number(
                get("ROOM_CREATE_PER_MINUTE"),
                "ROOM_CREATE_PER_MINUTE",
                10,
                1,
                10_000,
            )? as u32,
            replay_max_events: parse_number(
                get("REPLAY_MAX_EVENTS"),
                "REPLAY_MAX_EVENTS",
                5000,
                1,
                1_000_000,
            )? as usize,
            client_queue_max_bytes: parse_number(
                get("CLIENT_QUEUE_MAX_BYTES"),
                "CLIENT_QUEUE_MAX_BYTES",
                1_048_576,
                4096,
                1 << 30,
            )? as usize,
            redis_url,
            metrics_addr,
            log_format,
        })
    }

    /// The address the public listener binds.
    pub fn bind_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// The `--help` text: usage and every variable with its default.
    pub fn help_text() -> String {
        let mut out = String::from(
            "spell-coven-api: the Spell Coven public HTTP API and WebSocket hub\n\n\
             Usage: spell-coven-api [--help | --version]\n\n\
             Configuration comes from environment variables:\n",
        );
        for v in VARIABLES {
            out.push_str(&format!(
                "  {:<24} {:<30} {}\n",
                v.name, v.default, v.meaning
            ));
        }
        out
    }
}

fn err(variable: &'static str, problem: &str) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.to_owned(),
    }
}

/// Parses a Discord snowflake: ASCII digits only, fits in a u64, not zero.
pub fn parse_snowflake_str(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse::<u64>().ok().filter(|&id| id != 0)
}

fn parse_snowflake(variable: &'static str, value: &str) -> Result<u64, ConfigError> {
    parse_snowflake_str(value)
        .ok_or_else(|| err(variable, "must be a Discord snowflake (digits only)"))
}

fn parse_secret(variable: &'static str, value: &str) -> Result<Secret, ConfigError> {
    if value.len() < 32 {
        return Err(err(variable, "must be at least 32 bytes long"));
    }
    Ok(Secret::new(value))
}

fn parse_number(
    value: Option<&str>,
    variable: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let problem = || ConfigError {
        variable,
        problem: format!("must be a whole number from {min} to {max}"),
    };
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(problem());
    }
    let n: u64 = value.parse().map_err(|_| problem())?;
    if n < min || n > max {
        return Err(problem());
    }
    Ok(n)
}

/// Whether `host` (from a URL authority, brackets removed) is a loopback name or address.
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// An `https://` URL, or `http://` to a loopback host (tests, local fakes). No trailing slash.
fn parse_base_url(variable: &'static str, value: &str) -> Result<String, ConfigError> {
    let (scheme, rest) = value.split_once("://").ok_or_else(|| {
        err(
            variable,
            "must be an https:// URL (http:// only on loopback)",
        )
    })?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || value.chars().any(char::is_whitespace) {
        return Err(err(variable, "must be an https:// URL with a host"));
    }
    let host = host_of(authority);
    match scheme.to_ascii_lowercase().as_str() {
        "https" => {}
        "http" if is_loopback_host(host) => {}
        "http" => {
            return Err(err(
                variable,
                "must use https:// (http:// is allowed only on loopback)",
            ));
        }
        _ => {
            return Err(err(
                variable,
                "must be an https:// URL (http:// only on loopback)",
            ));
        }
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// The host part of a URL authority (`[::1]:80` -> `::1`, `a.b:443` -> `a.b`).
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// `CORS_ORIGINS`: comma-separated exact origins (`scheme://host[:port]`, no path, no `*`).
fn parse_origins(value: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for origin in value.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let valid = origin.split_once("://").is_some_and(|(scheme, rest)| {
            matches!(scheme, "http" | "https")
                && !rest.is_empty()
                && !rest.contains(['/', '?', '#', '*', '@', ' '])
        });
        if !valid {
            return Err(ConfigError {
                variable: "CORS_ORIGINS",
                problem: format!(
                    "`{origin}` is not an exact origin such as https://app.example (no path, no *)"
                ),
            });
        }
        out.push(origin.to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("PRIMARY_GUILD_ID", "81384788765712384"),
            ("HUB_SECRET", "0123456789abcdef0123456789abcdef"),
            ("DISCORD_BOT_TOKEN", "bot-token-value"),
            ("JWT_ISSUER", "https://app.example"),
            ("JWT_AUDIENCE", "spell-coven"),
            ("JWT_PUBLIC_JWKS_FILE", "/tmp/jwks.json"),
        ]
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let mut vars = base();
        for (k, v) in extra {
            vars.retain(|(name, _)| name != k);
            vars.push((k, v));
        }
        Config::from_vars(vars)
    }

    fn problem(extra: &[(&'static str, &'static str)]) -> String {
        with(extra)
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let c = with(&[]).unwrap();
        assert_eq!(c.port, 3000);
        assert_eq!(c.host.to_string(), "0.0.0.0");
        assert_eq!(c.discord_api_base, DEFAULT_DISCORD_API_BASE);
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.room_idle_timeout_secs, 900);
        assert_eq!(c.room_create_per_minute, 10);
        assert_eq!(c.replay_max_events, 5000);
        assert_eq!(c.client_queue_max_bytes, 1_048_576);
        assert_eq!(c.metrics_addr, None);
        assert_eq!(c.log_format, LogFormat::Pretty);
        assert!(c.cors_origins.is_empty());
        assert_eq!(c.jwt_keys, JwtKeys::File("/tmp/jwks.json".into()));
    }

    #[test]
    fn errors_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("PRIMARY_GUILD_ID", "abc")],
                "PRIMARY_GUILD_ID: must be a Discord snowflake (digits only)",
            ),
            (
                &[("PRIMARY_GUILD_ID", "-1")],
                "PRIMARY_GUILD_ID: must be a Discord snowflake (digits only)",
            ),
            (
                &[("PRIMARY_GUILD_ID", "123456789012345678901")],
                "PRIMARY_GUILD_ID: must be a Discord snowflake (digits only)",
            ),
            (
                &[("HUB_SECRET", "short")],
                "HUB_SECRET: must be at least 32 bytes long",
            ),
            (
                &[("HUB_SECRET_PREVIOUS", "short")],
                "HUB_SECRET_PREVIOUS: must be at least 32 bytes long",
            ),
            (
                &[("PORT", "70000")],
                "PORT: must be a whole number from 0 to 65535",
            ),
            (
                &[("PORT", "+80")],
                "PORT: must be a whole number from 0 to 65535",
            ),
            (
                &[("ROOM_CREATE_PER_MINUTE", "0")],
                "ROOM_CREATE_PER_MINUTE: must be a whole number from 1 to 10000",
            ),
            (
                &[("JWT_PUBLIC_JWK_URL", "https://a.example/jwks")],
                "JWT_PUBLIC_JWK_URL: set only one of JWT_PUBLIC_JWK_URL and JWT_PUBLIC_JWKS_FILE",
            ),
            (
                &[("LOG_FORMAT", "xml")],
                "LOG_FORMAT: must be `pretty` or `json`",
            ),
            (
                &[("DISCORD_BOT_TOKEN", "Bot abc")],
                "DISCORD_BOT_TOKEN: give the token without the `Bot ` prefix",
            ),
            (
                &[("METRICS_ADDR", "9100")],
                "METRICS_ADDR: must be an address with a port, e.g. 127.0.0.1:9100",
            ),
            (
                &[("DISCORD_API_BASE", "http://discord.com/api")],
                "DISCORD_API_BASE: must use https:// (http:// is allowed only on loopback)",
            ),
            (
                &[("ROOM_PARENT_ID", "12x")],
                "ROOM_PARENT_ID: must be a Discord snowflake (digits only)",
            ),
            (
                &[("CORS_ORIGINS", "https://a.example/path")],
                "CORS_ORIGINS: `https://a.example/path` is not an exact origin such as https://app.example (no path, no *)",
            ),
            (
                &[("CORS_ORIGINS", "*")],
                "CORS_ORIGINS: `*` is not an exact origin such as https://app.example (no path, no *)",
            ),
        ];
        for (extra, want) in cases {
            assert_eq!(problem(extra), *want, "{extra:?}");
        }
    }

    #[test]
    fn required_variables() {
        for name in [
            "PRIMARY_GUILD_ID",
            "HUB_SECRET",
            "DISCORD_BOT_TOKEN",
            "JWT_ISSUER",
            "JWT_AUDIENCE",
        ] {
            let vars: Vec<_> = base().into_iter().filter(|(k, _)| *k != name).collect();
            assert_eq!(
                Config::from_vars(vars).unwrap_err().to_string(),
                format!("{name}: is required")
            );
        }
        let vars: Vec<_> = base()
            .into_iter()
            .filter(|(k, _)| *k != "JWT_PUBLIC_JWKS_FILE")
            .collect();
        assert_eq!(
            Config::from_vars(vars).unwrap_err().variable,
            "JWT_PUBLIC_JWK_URL"
        );
    }

    #[test]
    fn urls_and_origins() {
        let vars: Vec<_> = base()
            .into_iter()
            .filter(|(k, _)| *k != "JWT_PUBLIC_JWKS_FILE")
            .chain([("JWT_PUBLIC_JWK_URL", "http://127.0.0.1:8080/jwks")])
            .collect();
        assert_eq!(
            Config::from_vars(vars).unwrap().jwt_keys,
            JwtKeys::Url("http://127.0.0.1:8080/jwks".into())
        );
        let c = with(&[
            ("DISCORD_API_BASE", "http://[::1]:9000/api/v10/"),
            ("CORS_ORIGINS", "https://a.example, http://localhost:5173"),
            ("METRICS_ADDR", "127.0.0.1:9100"),
            ("LOG_FORMAT", "json"),
        ])
        .unwrap();
        assert_eq!(c.discord_api_base, "http://[::1]:9000/api/v10");
        assert_eq!(
            c.cors_origins,
            ["https://a.example", "http://localhost:5173"]
        );
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(
            problem(&[("DISCORD_API_BASE", "http://127.0.0.1.evil.example/")])
                .starts_with("DISCORD_API_BASE")
        );
        assert!(
            problem(&[("DISCORD_API_BASE", "https://user@discord.com/")])
                .starts_with("DISCORD_API_BASE")
        );
    }

    #[test]
    fn secrets_never_in_debug() {
        let c = with(&[]).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("0123456789abcdef"));
        assert!(!dbg.contains("bot-token-value"));
    }

    #[test]
    fn help_lists_every_variable() {
        let help = Config::help_text();
        for v in VARIABLES {
            assert!(
                help.contains(v.name) && help.contains(v.default),
                "{}",
                v.name
            );
        }
    }
}
