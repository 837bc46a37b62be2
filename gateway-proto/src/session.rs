//! The resumable session and the `GET /gateway/bot` data.

use serde::{Deserialize, Serialize};

/// A Gateway session that can be resumed: persist it (it is serde
/// serializable) and hand it back through
/// [`ConfigBuilder::session`](crate::ConfigBuilder::session) or
/// [`Gateway::set_session`](crate::Gateway::set_session) to RESUME after a
/// restart.
///
/// `seq` is the *acknowledged* sequence number: the last dispatch the
/// application has safely handled (see
/// [`Gateway::acknowledge`](crate::Gateway::acknowledge)). Resuming from it
/// makes Discord replay everything after it, so nothing that was received
/// but not yet delivered downstream is lost. It may be lower than the latest
/// seq received; heartbeats always carry the latest one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// `session_id` from READY.
    pub id: String,
    /// The acknowledged sequence number to resume from.
    pub seq: u64,
    /// `resume_gateway_url` from READY (without query parameters; the
    /// machine adds them).
    pub resume_url: String,
}

/// The `session_start_limit` object of `GET /gateway/bot`
/// (`events/gateway.mdx`, "Session Start Limit Object").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStartLimit {
    /// Session starts allowed per reset period.
    pub total: u32,
    /// Session starts left.
    pub remaining: u32,
    /// Milliseconds until `remaining` resets to `total`.
    pub reset_after: u64,
    /// How many sessions may be started per 5 seconds.
    pub max_concurrency: u32,
}

/// The body of `GET /gateway/bot` (`events/gateway.mdx`, "Get Gateway Bot").
/// Deserialize the response into it and hand it to
/// [`Gateway::set_gateway_info`](crate::Gateway::set_gateway_info).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayInfo {
    /// WSS URL to connect to.
    pub url: String,
    /// Recommended shard count (informational here).
    #[serde(default)]
    pub shards: Option<u32>,
    /// The identify budget, if the response had one.
    #[serde(default)]
    pub session_start_limit: Option<SessionStartLimit>,
}

#[cfg(test)]
mod tests {
    use super::{GatewayInfo, Session};

    #[test]
    fn parses_gateway_bot_response() {
        let body = r#"{"url":"wss://gateway.discord.gg","shards":1,
            "session_start_limit":{"total":1000,"remaining":999,"reset_after":14400000,"max_concurrency":1}}"#;
        let info: GatewayInfo = serde_json::from_str(body).unwrap();
        assert_eq!(info.url, "wss://gateway.discord.gg");
        assert_eq!(info.session_start_limit.unwrap().remaining, 999);
    }

    #[test]
    fn session_round_trips_through_json() {
        let session = Session {
            id: "abc".into(),
            seq: 42,
            resume_url: "wss://resume.discord.gg".into(),
        };
        let json = serde_json::to_string(&session).unwrap();
        assert_eq!(serde_json::from_str::<Session>(&json).unwrap(), session);
    }
}
