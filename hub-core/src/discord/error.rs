//! What Discord answered, and how the hub passes it on.
//!
//! Codes from `developers/topics/opcodes-and-status-codes.mdx` (JSON error codes):
//! 10003 Unknown Channel, 30013 Maximum number of guild channels reached (500),
//! 50001 Missing Access, 50013 Missing Permissions, 50035 Invalid Form Body.

use std::fmt;
use std::time::Duration;

use crate::error::ApiError;

/// A failed Discord REST call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DiscordError {
    /// 429 (or a known-empty bucket) with a wait longer than the hub retries.
    RateLimited {
        /// How long Discord asks to wait.
        retry_after: Duration,
        /// Whether the global (per-bot) limit was hit.
        global: bool,
    },
    /// 401: the bot token is wrong (a configuration problem).
    Unauthorized,
    /// 403 50001/50013: the bot lacks access or `MANAGE_CHANNELS`.
    MissingPermissions,
    /// 404 / 10003: the channel does not exist (any more).
    UnknownChannel,
    /// 400 50035 and other 4xx: Discord rejected the request itself.
    Rejected {
        /// HTTP status.
        status: u16,
        /// Discord's JSON error code (0 if none).
        code: u64,
        /// Discord's message.
        message: String,
    },
    /// 30013: the guild has 500 channels.
    ChannelLimit,
    /// 5xx from Discord.
    Server(u16),
    /// The request failed in transport (connect, TLS, timeout, unreadable body).
    Transport(String),
}

impl fmt::Display for DiscordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RateLimited {
                retry_after,
                global,
            } => write!(
                f,
                "discord rate limit{} for {:.1} s",
                if *global { " (global)" } else { "" },
                retry_after.as_secs_f64()
            ),
            Self::Unauthorized => {
                f.write_str("discord rejected the bot token (401): check DISCORD_BOT_TOKEN")
            }
            Self::MissingPermissions => f.write_str("bot lacks MANAGE_CHANNELS"),
            Self::UnknownChannel => f.write_str("unknown channel"),
            Self::Rejected {
                status,
                code,
                message,
            } => {
                write!(
                    f,
                    "discord rejected the request ({status}, code {code}): {message}"
                )
            }
            Self::ChannelLimit => f.write_str("the guild has reached its channel limit (500)"),
            Self::Server(status) => write!(f, "discord failed ({status})"),
            Self::Transport(why) => write!(f, "could not reach discord: {why}"),
        }
    }
}

impl std::error::Error for DiscordError {}

impl From<DiscordError> for ApiError {
    fn from(e: DiscordError) -> Self {
        match e {
            DiscordError::RateLimited { retry_after, .. } => Self::Unavailable {
                message: "discord is rate limiting the hub; try again later".into(),
                retry_after: Some(retry_after),
            },
            DiscordError::Unauthorized => Self::BadGateway("discord rejected the bot token".into()),
            DiscordError::MissingPermissions => {
                Self::BadGateway("bot lacks MANAGE_CHANNELS".into())
            }
            DiscordError::UnknownChannel => Self::NotFound("unknown channel".into()),
            DiscordError::Rejected {
                status: 400,
                message,
                ..
            } => Self::BadRequest(format!("discord rejected the request: {message}")),
            e @ DiscordError::Rejected { .. } => Self::BadGateway(e.to_string()),
            DiscordError::ChannelLimit => {
                Self::Conflict("the guild has reached its channel limit (500)".into())
            }
            DiscordError::Server(_) => Self::BadGateway("discord failed; try again".into()),
            DiscordError::Transport(_) => Self::BadGateway("could not reach discord".into()),
        }
    }
}

/// Classifies a non-2xx, non-429 answer from its status and JSON body.
pub(crate) fn classify(status: u16, body: &[u8]) -> DiscordError {
    #[derive(serde::Deserialize, Default)]
    struct Body {
        #[serde(default)]
        code: u64,
        #[serde(default)]
        message: String,
    }
    let b: Body = serde_json::from_slice(body).unwrap_or_default();
    match (status, b.code) {
        (401, _) => DiscordError::Unauthorized,
        (_, 10003) | (404, _) => DiscordError::UnknownChannel,
        (_, 30013) => DiscordError::ChannelLimit,
        (_, 50001 | 50013) | (403, _) => DiscordError::MissingPermissions,
        (500.., _) => DiscordError::Server(status),
        _ => DiscordError::Rejected {
            status,
            code: b.code,
            message: b.message.chars().take(300).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_codes() {
        assert_eq!(
            classify(404, br#"{"code":10003,"message":"Unknown Channel"}"#),
            DiscordError::UnknownChannel
        );
        assert_eq!(
            classify(403, br#"{"code":50013,"message":"Missing Permissions"}"#),
            DiscordError::MissingPermissions
        );
        assert_eq!(
            classify(400, br#"{"code":30013,"message":"Maximum"}"#),
            DiscordError::ChannelLimit
        );
        assert_eq!(classify(401, b"{}"), DiscordError::Unauthorized);
        assert_eq!(classify(502, b"<html>"), DiscordError::Server(502));
        let e = classify(400, br#"{"code":50035,"message":"Invalid Form Body"}"#);
        assert_eq!(
            ApiError::from(e),
            ApiError::BadRequest("discord rejected the request: Invalid Form Body".into())
        );
    }

    #[test]
    fn maps_to_http() {
        assert_eq!(ApiError::from(DiscordError::Server(500)).status(), 502);
        assert_eq!(
            ApiError::from(DiscordError::MissingPermissions).to_string(),
            "bot lacks MANAGE_CHANNELS"
        );
        let e = ApiError::from(DiscordError::RateLimited {
            retry_after: Duration::from_secs(5),
            global: false,
        });
        assert_eq!(e.status(), 503);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(5)));
    }
}
