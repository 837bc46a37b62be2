//! Discord's JSON shapes for the objects the sim serves. Ids are strings of digits
//! (`developers/reference.mdx`, "Snowflakes": "always returned as strings").

use serde_json::{Value, json};

use crate::config::channel_type;
use crate::introspect::{Channel, VoiceState};

/// A fixed, plausible join date for every member (ISO8601, as Discord formats it).
const JOINED_AT: &str = "2025-01-01T00:00:00.000000+00:00";

/// User object (`developers/resources/user.mdx`).
pub(crate) fn user(id: u64, bot: bool) -> Value {
    let name = if bot {
        "sim-bot".to_owned()
    } else {
        format!("user{}", id % 100_000)
    };
    json!({
        "id": id.to_string(),
        "username": name,
        "discriminator": "0",
        "global_name": Value::Null,
        "avatar": Value::Null,
        "bot": bot,
        "flags": 0,
    })
}

/// Guild member object (`developers/resources/guild.mdx`, "Guild Member Object").
pub(crate) fn member(id: u64, bot: bool, mute: bool, deaf: bool) -> Value {
    json!({
        "user": user(id, bot),
        "nick": Value::Null,
        "avatar": Value::Null,
        "roles": [],
        "joined_at": JOINED_AT,
        "premium_since": Value::Null,
        "deaf": deaf,
        "mute": mute,
        "flags": 0,
        "pending": false,
    })
}

/// Channel object (`developers/resources/channel.mdx`, "Channel Object").
pub(crate) fn channel(c: &Channel, guild_id: u64) -> Value {
    let mut v = json!({
        "id": c.id.to_string(),
        "type": c.kind,
        "guild_id": guild_id.to_string(),
        "name": c.name,
        "position": c.position,
        "permission_overwrites": [],
        "parent_id": c.parent_id.map(|p| p.to_string()),
        "nsfw": false,
        "flags": 0,
    });
    if channel_type::is_voice(c.kind) {
        v["bitrate"] = json!(c.bitrate);
        v["user_limit"] = json!(c.user_limit);
        v["rtc_region"] = Value::Null;
        v["last_message_id"] = Value::Null;
        v["rate_limit_per_user"] = json!(0);
    } else if c.kind != channel_type::GUILD_CATEGORY {
        v["topic"] = Value::Null;
        v["last_message_id"] = Value::Null;
        v["rate_limit_per_user"] = json!(0);
    }
    v
}

/// Voice state object (`developers/resources/voice.mdx`, "Voice State Object").
/// `channel_id` is `None` for a user who left. `guild_id` and `member` are present in
/// VOICE_STATE_UPDATE; GUILD_CREATE's `voice_states` are partial, "without the
/// `guild_id` key" (gateway-events.mdx, "Guild Create").
pub(crate) fn voice_state(
    vs: &VoiceState,
    channel_id: Option<u64>,
    guild_id: Option<u64>,
) -> Value {
    let mut v = json!({
        "channel_id": channel_id.map(|c| c.to_string()),
        "user_id": vs.user_id.to_string(),
        "session_id": vs.session_id,
        "deaf": vs.deaf,
        "mute": vs.mute,
        "self_deaf": vs.self_deaf,
        "self_mute": vs.self_mute,
        "self_stream": vs.self_stream,
        "self_video": vs.self_video,
        "suppress": false,
        "request_to_speak_timestamp": Value::Null,
    });
    if let Some(g) = guild_id {
        v["guild_id"] = json!(g.to_string());
        v["member"] = member(vs.user_id, false, vs.mute, vs.deaf);
    }
    v
}

/// The `@everyone` role (its id is the guild id, `developers/topics/permissions.mdx`).
pub(crate) fn everyone_role(guild_id: u64) -> Value {
    json!({
        "id": guild_id.to_string(),
        "name": "@everyone",
        "color": 0,
        "hoist": false,
        "icon": Value::Null,
        "unicode_emoji": Value::Null,
        "position": 0,
        "permissions": "1071698660929",
        "managed": false,
        "mentionable": false,
        "flags": 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vs() -> VoiceState {
        VoiceState {
            user_id: 42,
            channel_id: 7,
            session_id: "abc".into(),
            mute: false,
            deaf: false,
            self_mute: true,
            self_deaf: false,
            self_stream: false,
            self_video: false,
        }
    }

    #[test]
    fn guild_create_voice_state_has_no_guild_id() {
        let v = voice_state(&vs(), Some(7), None);
        assert!(v.get("guild_id").is_none());
        assert!(v.get("member").is_none());
        assert_eq!(v["channel_id"], "7");
    }

    #[test]
    fn leave_has_null_channel() {
        let v = voice_state(&vs(), None, Some(1));
        assert!(v["channel_id"].is_null());
        assert_eq!(v["guild_id"], "1");
        assert_eq!(v["member"]["user"]["id"], "42");
    }
}
