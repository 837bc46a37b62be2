//! Configuration of a simulated Discord: the guild it serves, its timing and its limits.

use std::fmt;
use std::time::Duration;

/// Guild channel type numbers, as in Discord's "Channel Types" table
/// (`developers/resources/channel.mdx`).
pub mod channel_type {
    /// `GUILD_TEXT`.
    pub const GUILD_TEXT: u8 = 0;
    /// `GUILD_VOICE`.
    pub const GUILD_VOICE: u8 = 2;
    /// `GUILD_CATEGORY`.
    pub const GUILD_CATEGORY: u8 = 4;
    /// `GUILD_ANNOUNCEMENT`.
    pub const GUILD_ANNOUNCEMENT: u8 = 5;
    /// `GUILD_STAGE_VOICE`.
    pub const GUILD_STAGE_VOICE: u8 = 13;
    /// `GUILD_FORUM`.
    pub const GUILD_FORUM: u8 = 15;
    /// `GUILD_MEDIA`.
    pub const GUILD_MEDIA: u8 = 16;

    /// Types that `POST /guilds/{id}/channels` accepts (threads and DMs are not
    /// created through that route).
    pub const CREATABLE: [u8; 7] = [
        GUILD_TEXT,
        GUILD_VOICE,
        GUILD_CATEGORY,
        GUILD_ANNOUNCEMENT,
        GUILD_STAGE_VOICE,
        GUILD_FORUM,
        GUILD_MEDIA,
    ];

    /// Whether users can be connected to a channel of this type.
    pub fn is_voice(kind: u8) -> bool {
        kind == GUILD_VOICE || kind == GUILD_STAGE_VOICE
    }
}

/// Gateway intent bits the sim knows about (`developers/events/gateway.mdx`, "List of Intents").
pub mod intents {
    /// `GUILDS (1 << 0)`: GUILD_CREATE contents, CHANNEL_* events.
    pub const GUILDS: u64 = 1 << 0;
    /// `GUILD_MEMBERS (1 << 1)`, privileged.
    pub const GUILD_MEMBERS: u64 = 1 << 1;
    /// `GUILD_VOICE_STATES (1 << 7)`: VOICE_STATE_UPDATE and GUILD_CREATE `voice_states`.
    pub const GUILD_VOICE_STATES: u64 = 1 << 7;
    /// `GUILD_PRESENCES (1 << 8)`, privileged.
    pub const GUILD_PRESENCES: u64 = 1 << 8;
    /// `MESSAGE_CONTENT (1 << 15)`, privileged.
    pub const MESSAGE_CONTENT: u64 = 1 << 15;
    /// The privileged intents ("Privileged Intents" in gateway.mdx).
    pub const PRIVILEGED: u64 = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT;
    /// Every bit listed in the docs: 0..=16, 20, 21, 24, 25. Anything else closes 4013.
    pub const KNOWN: u64 = ((1 << 17) - 1) | (1 << 20) | (1 << 21) | (1 << 24) | (1 << 25);
}

/// One channel present in the guild when the sim starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    /// Snowflake id.
    pub id: u64,
    /// Channel name (1-100 characters).
    pub name: String,
    /// Channel type, see [`channel_type`].
    pub kind: u8,
    /// Category this channel sits in.
    pub parent_id: Option<u64>,
    /// Voice user limit, 0 = unlimited.
    pub user_limit: u32,
    /// Voice bitrate in bits per second.
    pub bitrate: u32,
}

impl ChannelSpec {
    /// A voice channel (type 2) with no user limit and Discord's default 64 kbps bitrate.
    pub fn voice(id: u64, name: impl Into<String>, parent_id: Option<u64>) -> Self {
        Self {
            id,
            name: name.into(),
            kind: channel_type::GUILD_VOICE,
            parent_id,
            user_limit: 0,
            bitrate: 64_000,
        }
    }

    /// A category (type 4).
    pub fn category(id: u64, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            kind: channel_type::GUILD_CATEGORY,
            parent_id: None,
            user_limit: 0,
            bitrate: 0,
        }
    }
}

/// A user connected to a voice channel when the sim starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceStateSpec {
    /// The user's snowflake.
    pub user_id: u64,
    /// The voice channel they are in.
    pub channel_id: u64,
}

/// The `session_start_limit` object of `GET /gateway/bot` ("Session Start Limit Object",
/// `developers/events/gateway.mdx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionStartLimit {
    /// Identifies allowed per reset window.
    pub total: u32,
    /// Identifies left in the current window when the sim starts.
    pub remaining: u32,
    /// Length of the window; `remaining` goes back to `total` when it elapses.
    pub reset_after: Duration,
    /// IDENTIFYs allowed per 5 seconds; one more gets op 9 `d: false`.
    pub max_concurrency: u32,
}

impl Default for SessionStartLimit {
    fn default() -> Self {
        Self {
            total: 1000,
            remaining: 1000,
            reset_after: Duration::from_secs(24 * 60 * 60),
            max_concurrency: 1,
        }
    }
}

/// REST rate limits (`developers/topics/rate-limits.mdx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestRateLimit {
    /// Requests per bucket (per route and major parameter) per window.
    pub bucket_limit: u32,
    /// Window length of every bucket.
    pub bucket_reset_after: Duration,
    /// Global requests per second across all routes (Discord: 50).
    pub global_per_second: u32,
}

impl Default for RestRateLimit {
    fn default() -> Self {
        Self {
            bucket_limit: 5,
            bucket_reset_after: Duration::from_secs(5),
            global_per_second: 50,
        }
    }
}

/// Ports to bind on 127.0.0.1; 0 (the default) lets the OS choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ports {
    /// Main gateway WebSocket (what `GET /gateway/bot` returns).
    pub gateway: u16,
    /// Resume gateway WebSocket (READY's `resume_gateway_url`).
    pub resume: u16,
    /// REST API (`/api/v10`).
    pub rest: u16,
    /// Control endpoint (`/control/...`).
    pub control: u16,
}

/// Everything that shapes one simulated Discord. Start from [`SimConfig::default`] and
/// change what the test needs.
#[derive(Clone)]
pub struct SimConfig {
    /// The bot token the gateway and REST accept. Never printed by `Debug`.
    pub token: String,
    /// The application (and bot user) id.
    pub application_id: u64,
    /// The one guild the bot is in.
    pub guild_id: u64,
    /// The guild's name.
    pub guild_name: String,
    /// Channels present at start.
    pub channels: Vec<ChannelSpec>,
    /// Users in voice channels at start.
    pub voice_states: Vec<VoiceStateSpec>,
    /// `heartbeat_interval` sent in HELLO. Discord sends about 41.25 s; keep it short in tests.
    pub heartbeat_interval: Duration,
    /// How long a disconnected session stays resumable ("a few minutes" in
    /// gateway.mdx "Initiating a Disconnect").
    pub resume_timeout: Duration,
    /// Identify budget reported by `GET /gateway/bot` and enforced on IDENTIFY.
    pub session_start_limit: SessionStartLimit,
    /// Privileged intents enabled "in the Developer Portal"; others close 4014.
    pub enabled_privileged_intents: u64,
    /// REST rate limits.
    pub rest_rate_limit: RestRateLimit,
    /// Dispatches kept per session for RESUME replay; a RESUME from further back gets
    /// op 9 `d: false`.
    pub replay_capacity: usize,
    /// Ports to bind.
    pub ports: Ports,
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("token", &"[redacted]")
            .field("application_id", &self.application_id)
            .field("guild_id", &self.guild_id)
            .field("guild_name", &self.guild_name)
            .field("channels", &self.channels)
            .field("voice_states", &self.voice_states)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("resume_timeout", &self.resume_timeout)
            .field("session_start_limit", &self.session_start_limit)
            .field(
                "enabled_privileged_intents",
                &self.enabled_privileged_intents,
            )
            .field("rest_rate_limit", &self.rest_rate_limit)
            .field("replay_capacity", &self.replay_capacity)
            .field("ports", &self.ports)
            .finish()
    }
}

/// Default guild id.
pub const DEFAULT_GUILD_ID: u64 = 1_200_000_000_000_000_000;
/// Default application / bot user id.
pub const DEFAULT_APPLICATION_ID: u64 = 1_200_000_000_000_000_001;
/// Default category id.
pub const DEFAULT_CATEGORY_ID: u64 = 1_200_000_000_000_000_010;
/// Default first voice channel id ("General").
pub const DEFAULT_VOICE_1_ID: u64 = 1_200_000_000_000_000_011;
/// Default second voice channel id ("Game Room").
pub const DEFAULT_VOICE_2_ID: u64 = 1_200_000_000_000_000_012;
/// Default bot token.
pub const DEFAULT_TOKEN: &str = "sim-token";

impl Default for SimConfig {
    /// A guild with one category holding two empty voice channels, token `sim-token`,
    /// heartbeat 41.25 s, resume timeout 3 minutes.
    fn default() -> Self {
        Self {
            token: DEFAULT_TOKEN.to_owned(),
            application_id: DEFAULT_APPLICATION_ID,
            guild_id: DEFAULT_GUILD_ID,
            guild_name: "Spell Coven Sim".to_owned(),
            channels: vec![
                ChannelSpec::category(DEFAULT_CATEGORY_ID, "Voice Rooms"),
                ChannelSpec::voice(DEFAULT_VOICE_1_ID, "General", Some(DEFAULT_CATEGORY_ID)),
                ChannelSpec::voice(DEFAULT_VOICE_2_ID, "Game Room", Some(DEFAULT_CATEGORY_ID)),
            ],
            voice_states: Vec::new(),
            heartbeat_interval: Duration::from_millis(41_250),
            resume_timeout: Duration::from_secs(180),
            session_start_limit: SessionStartLimit::default(),
            enabled_privileged_intents: 0,
            rest_rate_limit: RestRateLimit::default(),
            replay_capacity: 10_000,
            ports: Ports::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_token() {
        let cfg = SimConfig::default();
        let text = format!("{cfg:?}");
        assert!(!text.contains("sim-token"));
        assert!(text.contains("[redacted]"));
    }

    #[test]
    fn known_intents_cover_documented_bits() {
        assert_eq!(intents::KNOWN & (1 << 17), 0);
        assert_ne!(intents::KNOWN & (1 << 25), 0);
        assert_eq!(intents::KNOWN & intents::PRIVILEGED, intents::PRIVILEGED);
    }
}
