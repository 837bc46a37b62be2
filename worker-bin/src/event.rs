//! The events the worker sends to the hub (contract §3 table and §4).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One voice occupancy entry of a `guild.sync`: user `user_id` is in
/// voice channel `channel_id`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Occupancy {
    /// The voice channel.
    pub channel_id: String,
    /// The user in it.
    pub user_id: String,
}

/// A room event for the hub. The guild id is added when the payload is built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RoomEvent {
    /// `voice.joined`: a user entered a voice channel.
    VoiceJoined {
        /// The channel joined.
        channel_id: String,
        /// The user.
        user_id: String,
    },
    /// `voice.left`: a user left a voice channel (the channel that was left,
    /// never null: contract §3).
    VoiceLeft {
        /// The channel left.
        channel_id: String,
        /// The user.
        user_id: String,
    },
    /// `room.deleted`: a voice channel was deleted (its occupants are
    /// implied gone: contract §3, "room.deleted only").
    RoomDeleted {
        /// The deleted channel.
        channel_id: String,
    },
    /// `guild.sync`: the full current voice occupancy (contract §4).
    GuildSync {
        /// Every user in a voice channel of the guild, sorted.
        voice_states: Vec<Occupancy>,
    },
}

impl RoomEvent {
    /// The event name on the wire.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::VoiceJoined { .. } => "voice.joined",
            Self::VoiceLeft { .. } => "voice.left",
            Self::RoomDeleted { .. } => "room.deleted",
            Self::GuildSync { .. } => "guild.sync",
        }
    }

    /// The payload object, shaped exactly as contract §3/§4 (ids as strings).
    #[must_use]
    pub fn payload(&self, guild_id: &str) -> Value {
        match self {
            Self::VoiceJoined {
                channel_id,
                user_id,
            }
            | Self::VoiceLeft {
                channel_id,
                user_id,
            } => json!({ "guildId": guild_id, "channelId": channel_id, "userId": user_id }),
            Self::RoomDeleted { channel_id } => {
                json!({ "guildId": guild_id, "channelId": channel_id })
            }
            Self::GuildSync { voice_states } => json!({
                "guildId": guild_id,
                "voiceStates": voice_states
                    .iter()
                    .map(|o| json!({ "channelId": o.channel_id, "userId": o.user_id }))
                    .collect::<Vec<_>>(),
            }),
        }
    }

    /// The webhook body `{"id","event","payload"}` (contract §4).
    #[must_use]
    pub fn body(&self, id: &str, guild_id: &str) -> String {
        json!({ "id": id, "event": self.name(), "payload": self.payload(guild_id) }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_shapes_match_the_contract() {
        let joined = RoomEvent::VoiceJoined {
            channel_id: "2".into(),
            user_id: "3".into(),
        };
        assert_eq!(joined.name(), "voice.joined");
        assert_eq!(
            joined.payload("1"),
            json!({"guildId":"1","channelId":"2","userId":"3"})
        );
        let left = RoomEvent::VoiceLeft {
            channel_id: "2".into(),
            user_id: "3".into(),
        };
        assert_eq!(left.name(), "voice.left");
        let deleted = RoomEvent::RoomDeleted {
            channel_id: "2".into(),
        };
        assert_eq!(deleted.payload("1"), json!({"guildId":"1","channelId":"2"}));
        let sync = RoomEvent::GuildSync {
            voice_states: vec![Occupancy {
                channel_id: "2".into(),
                user_id: "3".into(),
            }],
        };
        assert_eq!(
            sync.payload("1"),
            json!({"guildId":"1","voiceStates":[{"channelId":"2","userId":"3"}]})
        );
        let body: Value = serde_json::from_str(&sync.body("s:1:sync", "1")).unwrap();
        assert_eq!(body["id"], "s:1:sync");
        assert_eq!(body["event"], "guild.sync");
    }
}
