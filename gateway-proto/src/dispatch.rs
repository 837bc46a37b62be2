//! Dispatch (op 0) events: typed structs for the events this project uses,
//! raw JSON for everything else, and the filter that chooses between them.
//!
//! Shapes follow discord-api-docs `events/gateway-events.mdx` ("Ready",
//! "Guild Create", "Guild Delete", "Voice State Update", "Channel
//! Create/Update/Delete"), `resources/channel.mdx` and `resources/voice.mdx`.
//! Fields this project does not need are skipped while parsing.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A dispatch event type this crate can parse into a typed struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// `READY`.
    Ready,
    /// `RESUMED`.
    Resumed,
    /// `GUILD_CREATE`.
    GuildCreate,
    /// `GUILD_DELETE`.
    GuildDelete,
    /// `VOICE_STATE_UPDATE`.
    VoiceStateUpdate,
    /// `CHANNEL_CREATE`.
    ChannelCreate,
    /// `CHANNEL_UPDATE`.
    ChannelUpdate,
    /// `CHANNEL_DELETE`.
    ChannelDelete,
}

impl EventKind {
    /// Every typed kind.
    pub const ALL: [Self; 8] = [
        Self::Ready,
        Self::Resumed,
        Self::GuildCreate,
        Self::GuildDelete,
        Self::VoiceStateUpdate,
        Self::ChannelCreate,
        Self::ChannelUpdate,
        Self::ChannelDelete,
    ];

    /// The kind for a dispatch name (`t`), `None` for names without a typed
    /// struct.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "READY" => Self::Ready,
            "RESUMED" => Self::Resumed,
            "GUILD_CREATE" => Self::GuildCreate,
            "GUILD_DELETE" => Self::GuildDelete,
            "VOICE_STATE_UPDATE" => Self::VoiceStateUpdate,
            "CHANNEL_CREATE" => Self::ChannelCreate,
            "CHANNEL_UPDATE" => Self::ChannelUpdate,
            "CHANNEL_DELETE" => Self::ChannelDelete,
            _ => return None,
        })
    }

    /// The dispatch name (`t`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ready => "READY",
            Self::Resumed => "RESUMED",
            Self::GuildCreate => "GUILD_CREATE",
            Self::GuildDelete => "GUILD_DELETE",
            Self::VoiceStateUpdate => "VOICE_STATE_UPDATE",
            Self::ChannelCreate => "CHANNEL_CREATE",
            Self::ChannelUpdate => "CHANNEL_UPDATE",
            Self::ChannelDelete => "CHANNEL_DELETE",
        }
    }

    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of [`EventKind`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EventKinds(u16);

impl EventKinds {
    /// The empty set.
    #[must_use]
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Every typed kind.
    #[must_use]
    pub const fn all() -> Self {
        let mut bits = 0;
        let mut i = 0;
        while i < EventKind::ALL.len() {
            bits |= EventKind::ALL[i].bit();
            i += 1;
        }
        Self(bits)
    }

    /// This set plus `kind`.
    #[must_use]
    pub const fn with(self, kind: EventKind) -> Self {
        Self(self.0 | kind.bit())
    }

    /// Add `kind`.
    pub const fn insert(&mut self, kind: EventKind) {
        self.0 |= kind.bit();
    }

    /// Whether `kind` is in the set.
    #[must_use]
    pub const fn contains(self, kind: EventKind) -> bool {
        self.0 & kind.bit() != 0
    }
}

impl FromIterator<EventKind> for EventKinds {
    fn from_iter<I: IntoIterator<Item = EventKind>>(iter: I) -> Self {
        iter.into_iter().fold(Self::empty(), Self::with)
    }
}

/// What happens to a dispatch the application did not ask to have parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Unwanted {
    /// Hand it out as [`DispatchEvent::Raw`]: the `d` JSON, unparsed.
    #[default]
    PassRaw,
    /// Drop it before anything is allocated for it. Its seq still counts for
    /// heartbeats and (when nothing delivered is waiting for an
    /// acknowledgement) for the session's acknowledged seq.
    Drop,
}

/// Which dispatches are parsed into typed structs, and what happens to the
/// rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFilter {
    /// Kinds parsed into typed [`DispatchEvent`] variants.
    pub typed: EventKinds,
    /// What happens to every other dispatch (including typed kinds not in
    /// `typed`).
    pub unwanted: Unwanted,
}

impl Default for EventFilter {
    fn default() -> Self {
        Self {
            typed: EventKinds::all(),
            unwanted: Unwanted::PassRaw,
        }
    }
}

impl EventFilter {
    /// A filter that parses `typed` and treats the rest per `unwanted`.
    #[must_use]
    pub const fn new(typed: EventKinds, unwanted: Unwanted) -> Self {
        Self { typed, unwanted }
    }

    /// What to do with the dispatch called `name`.
    #[must_use]
    pub fn decide(&self, name: &str) -> Decision {
        match EventKind::from_name(name) {
            Some(kind) if self.typed.contains(kind) => Decision::Typed(kind),
            _ => match self.unwanted {
                Unwanted::PassRaw => Decision::Raw,
                Unwanted::Drop => Decision::Drop,
            },
        }
    }
}

/// The filter's verdict for one dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Parse into this typed kind.
    Typed(EventKind),
    /// Pass `d` through unparsed.
    Raw,
    /// Drop it.
    Drop,
}

/// One dispatch (op 0) handed to the application.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatch {
    /// The sequence number `s`. Acknowledge it with
    /// [`Gateway::acknowledge`](crate::Gateway::acknowledge) once it is
    /// safely handled (with manual acknowledgement on).
    pub seq: u64,
    /// The event.
    pub event: DispatchEvent,
}

impl Dispatch {
    /// The dispatch name (`t`).
    #[must_use]
    pub fn name(&self) -> &str {
        self.event.name()
    }
}

/// The payload of a dispatch.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DispatchEvent {
    /// `READY`.
    Ready(Box<Ready>),
    /// `RESUMED`: a resume's replay has finished.
    Resumed,
    /// `GUILD_CREATE`.
    GuildCreate(Box<GuildCreate>),
    /// `GUILD_DELETE`.
    GuildDelete(UnavailableGuild),
    /// `VOICE_STATE_UPDATE`.
    VoiceStateUpdate(Box<VoiceState>),
    /// `CHANNEL_CREATE`.
    ChannelCreate(Box<Channel>),
    /// `CHANNEL_UPDATE`.
    ChannelUpdate(Box<Channel>),
    /// `CHANNEL_DELETE`.
    ChannelDelete(Box<Channel>),
    /// Any other dispatch, unparsed.
    Raw(RawDispatch),
}

impl DispatchEvent {
    /// The dispatch name (`t`).
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Ready(_) => "READY",
            Self::Resumed => "RESUMED",
            Self::GuildCreate(_) => "GUILD_CREATE",
            Self::GuildDelete(_) => "GUILD_DELETE",
            Self::VoiceStateUpdate(_) => "VOICE_STATE_UPDATE",
            Self::ChannelCreate(_) => "CHANNEL_CREATE",
            Self::ChannelUpdate(_) => "CHANNEL_UPDATE",
            Self::ChannelDelete(_) => "CHANNEL_DELETE",
            Self::Raw(raw) => &raw.name,
        }
    }
}

/// A dispatch passed through without parsing its `d`.
#[derive(Debug, Clone)]
pub struct RawDispatch {
    /// The dispatch name (`t`).
    pub name: String,
    /// The `d` field, exactly as received.
    pub data: Box<RawValue>,
}

impl PartialEq for RawDispatch {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.data.get() == other.data.get()
    }
}

/// `READY` (`events/gateway-events.mdx`, "Ready").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// API version.
    #[serde(default)]
    pub v: u8,
    /// The bot user.
    pub user: User,
    /// Guilds the bot is in; all start unavailable.
    #[serde(default)]
    pub guilds: Vec<UnavailableGuild>,
    /// The session id, for RESUME.
    pub session_id: String,
    /// The URL to resume on.
    pub resume_gateway_url: String,
    /// `[shard_id, shard_count]`, if sharded.
    #[serde(default)]
    pub shard: Option<[u32; 2]>,
}

/// The parts of `READY` the machine needs itself.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MinimalReady {
    pub(crate) session_id: String,
    pub(crate) resume_gateway_url: String,
}

/// A user (only the fields this crate reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Snowflake id.
    pub id: String,
    /// Username.
    #[serde(default)]
    pub username: String,
    /// Whether the user is a bot.
    #[serde(default)]
    pub bot: bool,
}

/// An unavailable guild (`READY.guilds`, `GUILD_DELETE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnavailableGuild {
    /// Guild id.
    pub id: String,
    /// `true` during an outage; absent (`false`) when the bot was removed.
    #[serde(default)]
    pub unavailable: bool,
}

/// `GUILD_CREATE` (`events/gateway-events.mdx`, "Guild Create").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuildCreate {
    /// Guild id.
    pub id: String,
    /// `true` if the guild is (still) unavailable; then the other fields are
    /// empty.
    #[serde(default)]
    pub unavailable: bool,
    /// Guild name.
    #[serde(default)]
    pub name: Option<String>,
    /// Channels in the guild.
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// Voice states of members in voice channels (without `guild_id`).
    #[serde(default)]
    pub voice_states: Vec<VoiceState>,
}

/// A channel (`resources/channel.mdx`, "Channel Object"; the fields this
/// project uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// Channel id.
    pub id: String,
    /// Channel type (2 = voice, 4 = category, 13 = stage, ...).
    #[serde(rename = "type")]
    pub kind: u8,
    /// Guild id (absent inside GUILD_CREATE).
    #[serde(default)]
    pub guild_id: Option<String>,
    /// Channel name.
    #[serde(default)]
    pub name: Option<String>,
    /// Parent category id.
    #[serde(default)]
    pub parent_id: Option<String>,
    /// Sorting position.
    #[serde(default)]
    pub position: Option<i32>,
    /// User limit of a voice channel (0 = none).
    #[serde(default)]
    pub user_limit: Option<u32>,
}

/// A voice state (`resources/voice.mdx`, "Voice State Object").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceState {
    /// Guild id (absent inside GUILD_CREATE).
    #[serde(default)]
    pub guild_id: Option<String>,
    /// The voice channel, `null` when the user left voice.
    #[serde(default)]
    pub channel_id: Option<String>,
    /// The user.
    pub user_id: String,
    /// Voice session id.
    #[serde(default)]
    pub session_id: String,
    /// Deafened by the server.
    #[serde(default)]
    pub deaf: bool,
    /// Muted by the server.
    #[serde(default)]
    pub mute: bool,
    /// Deafened locally.
    #[serde(default)]
    pub self_deaf: bool,
    /// Muted locally.
    #[serde(default)]
    pub self_mute: bool,
    /// Streaming ("Go Live").
    #[serde(default)]
    pub self_stream: bool,
    /// Camera on.
    #[serde(default)]
    pub self_video: bool,
    /// Suppressed (stage channels).
    #[serde(default)]
    pub suppress: bool,
}

#[cfg(test)]
mod tests {
    use super::{Decision, EventFilter, EventKind, EventKinds, Unwanted};

    #[test]
    fn names_round_trip() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(EventKind::from_name("MESSAGE_CREATE"), None);
    }

    #[test]
    fn filter_decides() {
        let filter = EventFilter::new(
            [EventKind::VoiceStateUpdate].into_iter().collect(),
            Unwanted::Drop,
        );
        assert_eq!(
            filter.decide("VOICE_STATE_UPDATE"),
            Decision::Typed(EventKind::VoiceStateUpdate)
        );
        assert_eq!(filter.decide("GUILD_CREATE"), Decision::Drop);
        assert_eq!(filter.decide("TYPING_START"), Decision::Drop);
        assert!(EventKinds::all().contains(EventKind::ChannelDelete));
        assert!(!EventKinds::empty().contains(EventKind::Ready));
    }
}
