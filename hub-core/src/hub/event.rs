//! Events of the guild stream: names, the worker's payloads, and their validation.
//!
//! The worker (and the hub itself) send `{"id"?, "event", "payload"}`; this file turns the
//! payload into a typed [`Change`] or a plain-worded [`IngestError`]. Ids are Discord
//! snowflakes: strings of ASCII digits that fit in a `u64` (contract §3/§4).

use serde::Serialize;
use serde_json::Value;

use super::error::IngestError;

/// `room.created` `{"guildId","channelId","name"}`.
pub const ROOM_CREATED: &str = "room.created";
/// `room.deleted` `{"guildId","channelId"}`.
pub const ROOM_DELETED: &str = "room.deleted";
/// `voice.joined` `{"guildId","channelId","userId"}`.
pub const VOICE_JOINED: &str = "voice.joined";
/// `voice.left` `{"guildId","channelId","userId"}` (the channel that was left).
pub const VOICE_LEFT: &str = "voice.left";
/// `guild.sync` `{"guildId","voiceStates":[{"channelId","userId"}]}` (worker only, never sent
/// to clients).
pub const GUILD_SYNC: &str = "guild.sync";

/// Longest room name kept (Discord's channel name limit).
const MAX_NAME_CHARS: usize = 100;

/// An event as the worker sends it (already signature-checked), or as the hub itself emits it.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingEvent {
    /// The worker's unique event id, used to drop retries (contract §4).
    pub id: Option<String>,
    /// The event name, e.g. `voice.joined`.
    pub event: String,
    /// The event payload, validated by [`parse_event`].
    pub payload: Value,
}

/// A validated state change for one guild.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// A room (voice channel created by this service) exists.
    RoomCreated {
        /// The voice channel.
        channel_id: u64,
        /// Its name, when known.
        name: Option<String>,
    },
    /// A room (or any voice channel) was deleted.
    RoomDeleted {
        /// The voice channel.
        channel_id: u64,
    },
    /// A user is now in a voice channel.
    VoiceJoined {
        /// The voice channel.
        channel_id: u64,
        /// The user.
        user_id: u64,
    },
    /// A user left a voice channel.
    VoiceLeft {
        /// The voice channel that was left.
        channel_id: u64,
        /// The user.
        user_id: u64,
    },
    /// The full voice occupancy of the guild: `(channel_id, user_id)` pairs.
    Sync {
        /// Every user currently in a voice channel.
        voice_states: Vec<(u64, u64)>,
    },
}

/// A validated event: the guild it concerns and the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuildEvent {
    /// `payload.guildId`.
    pub guild_id: u64,
    /// What changed.
    pub change: Change,
}

/// Parses a Discord snowflake: 1 to 20 ASCII digits that fit in a `u64`.
///
/// Snowflakes travel as strings in Discord's API ("Snowflakes", Discord API reference); the
/// hub accepts nothing else as an id.
pub fn parse_snowflake(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Validates an event name and its payload.
///
/// # Errors
/// [`IngestError::UnknownEvent`] for a name other than the four client events and
/// `guild.sync`; [`IngestError::BadPayload`] when a field is missing or not a snowflake string.
pub fn parse_event(event: &str, payload: &Value) -> Result<GuildEvent, IngestError> {
    if ![
        ROOM_CREATED,
        ROOM_DELETED,
        VOICE_JOINED,
        VOICE_LEFT,
        GUILD_SYNC,
    ]
    .contains(&event)
    {
        return Err(IngestError::UnknownEvent(truncate(event)));
    }
    let obj = payload
        .as_object()
        .ok_or_else(|| bad("payload must be a json object"))?;
    let guild_id = snowflake_field(obj, "guildId")?;
    let change = match event {
        ROOM_CREATED => {
            let name = match obj.get("name") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.chars().take(MAX_NAME_CHARS).collect()),
                Some(_) => return Err(bad("name must be a string")),
            };
            Change::RoomCreated {
                channel_id: snowflake_field(obj, "channelId")?,
                name,
            }
        }
        ROOM_DELETED => Change::RoomDeleted {
            channel_id: snowflake_field(obj, "channelId")?,
        },
        VOICE_JOINED => Change::VoiceJoined {
            channel_id: snowflake_field(obj, "channelId")?,
            user_id: snowflake_field(obj, "userId")?,
        },
        VOICE_LEFT => Change::VoiceLeft {
            channel_id: snowflake_field(obj, "channelId")?,
            user_id: snowflake_field(obj, "userId")?,
        },
        GUILD_SYNC => {
            let states = obj
                .get("voiceStates")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("voiceStates must be an array"))?;
            let mut voice_states = Vec::with_capacity(states.len());
            for state in states {
                let state = state
                    .as_object()
                    .ok_or_else(|| bad("voiceStates entries must be objects"))?;
                voice_states.push((
                    snowflake_field(state, "channelId")?,
                    snowflake_field(state, "userId")?,
                ));
            }
            Change::Sync { voice_states }
        }
        other => return Err(IngestError::UnknownEvent(truncate(other))),
    };
    Ok(GuildEvent { guild_id, change })
}

fn snowflake_field(obj: &serde_json::Map<String, Value>, key: &str) -> Result<u64, IngestError> {
    obj.get(key)
        .and_then(Value::as_str)
        .and_then(parse_snowflake)
        .ok_or_else(|| bad(&format!("{key} must be a snowflake string")))
}

fn bad(msg: &str) -> IngestError {
    IngestError::BadPayload(msg.to_owned())
}

/// Keeps an attacker-sized event name out of error messages and logs.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A snowflake serialised as a JSON string, as Discord and the contract write ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snowflake(pub(crate) u64);

impl Serialize for Snowflake {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn snowflakes_are_digit_strings_that_fit_u64() {
        assert_eq!(parse_snowflake("123"), Some(123));
        assert_eq!(parse_snowflake("18446744073709551615"), Some(u64::MAX));
        for bad in ["", "-1", "+1", "1.0", " 1", "18446744073709551616", "１"] {
            assert_eq!(parse_snowflake(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parses_the_five_events() {
        let ev = parse_event(
            VOICE_JOINED,
            &json!({"guildId":"1","channelId":"2","userId":"3"}),
        );
        assert_eq!(
            ev,
            Ok(GuildEvent {
                guild_id: 1,
                change: Change::VoiceJoined {
                    channel_id: 2,
                    user_id: 3
                }
            })
        );
        let ev = parse_event(
            GUILD_SYNC,
            &json!({"guildId":"1","voiceStates":[{"channelId":"2","userId":"3"}]}),
        );
        assert_eq!(
            ev.map(|e| e.change),
            Ok(Change::Sync {
                voice_states: vec![(2, 3)]
            })
        );
        let ev = parse_event(ROOM_CREATED, &json!({"guildId":"1","channelId":"2"}));
        assert_eq!(
            ev.map(|e| e.change),
            Ok(Change::RoomCreated {
                channel_id: 2,
                name: None
            })
        );
    }

    #[test]
    fn rejects_bad_payloads_and_unknown_events() {
        assert!(matches!(
            parse_event("voice.muted", &json!({"guildId":"1"})),
            Err(IngestError::UnknownEvent(_))
        ));
        for payload in [
            json!({"guildId":1,"channelId":"2","userId":"3"}),
            json!({"guildId":"1","channelId":"x","userId":"3"}),
            json!({"guildId":"1","channelId":"2"}),
            json!([]),
        ] {
            assert!(
                matches!(
                    parse_event(VOICE_LEFT, &payload),
                    Err(IngestError::BadPayload(_))
                ),
                "{payload}"
            );
        }
    }
}
