//! Shared corpora and helpers for the benchmarks and load tools.
//!
//! The gateway corpus imitates what Discord sends a bot, with the field order Discord uses
//! (`t`, `s`, `op`, `d`): one large GUILD_CREATE (channels, members, voice states), a
//! VOICE_STATE_UPDATE, and the high-volume events a voice bridge does not want
//! (MESSAGE_CREATE, PRESENCE_UPDATE, TYPING_START). Everything is generated
//! deterministically, so every run measures the same bytes.

pub mod baseline;
pub mod gateway;
pub mod load;
pub mod webhook;

use serde_json::{Value, json};

/// One named gateway message of the corpus.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Short name used in benchmark ids.
    pub name: &'static str,
    /// Whether a voice bridge parses this event (`true`) or drops it (`false`).
    pub wanted: bool,
    /// The message text exactly as it arrives on the socket.
    pub json: String,
}

const GUILD_ID: u64 = 1_100_000_000_000_000_001;

fn snowflake(n: u64) -> String {
    (1_200_000_000_000_000_000 + n).to_string()
}

fn envelope(t: &str, s: u64, d: Value) -> String {
    // Discord's field order puts `t`, `s` and `op` before `d`; serde_json keeps insertion
    // order only with `preserve_order`, so the envelope is written by hand.
    format!(r#"{{"t":"{t}","s":{s},"op":0,"d":{d}}}"#)
}

fn user(n: u64) -> Value {
    json!({
        "id": snowflake(500_000 + n),
        "username": format!("player{n}"),
        "global_name": format!("Player {n}"),
        "discriminator": "0",
        "avatar": format!("{:032x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        "public_flags": 0,
        "bot": false,
    })
}

fn member(n: u64) -> Value {
    json!({
        "user": user(n),
        "roles": [snowflake(900 + n % 5)],
        "joined_at": "2025-03-14T15:09:26.535000+00:00",
        "deaf": false,
        "mute": false,
        "flags": 0,
        "nick": null,
        "avatar": null,
        "premium_since": null,
        "pending": false,
        "communication_disabled_until": null,
    })
}

fn voice_state(n: u64, channel: u64, with_guild: bool) -> Value {
    let mut v = json!({
        "user_id": snowflake(500_000 + n),
        "channel_id": snowflake(channel),
        "session_id": format!("{:032x}", n + 7),
        "deaf": false,
        "mute": false,
        "self_deaf": n % 7 == 0,
        "self_mute": n % 3 == 0,
        "self_video": false,
        "suppress": false,
        "request_to_speak_timestamp": null,
    });
    if with_guild {
        v["guild_id"] = json!(GUILD_ID.to_string());
        v["member"] = member(n);
    }
    v
}

fn channel(n: u64, kind: u8) -> Value {
    json!({
        "id": snowflake(n),
        "type": kind,
        "guild_id": GUILD_ID.to_string(),
        "name": format!("table-{n}"),
        "position": n,
        "parent_id": snowflake(1),
        "permission_overwrites": [],
        "bitrate": 64000,
        "user_limit": 4,
        "rtc_region": null,
        "nsfw": false,
        "flags": 0,
        "last_message_id": null,
        "rate_limit_per_user": 0,
    })
}

/// A GUILD_CREATE with `members` members, 60 channels and `voice` users in voice.
pub fn guild_create(members: u64, voice: u64) -> String {
    let channels: Vec<Value> = (2..62)
        .map(|n| channel(n, if n % 2 == 0 { 2 } else { 0 }))
        .collect();
    let d = json!({
        "id": GUILD_ID.to_string(),
        "name": "Spell Coven",
        "icon": null,
        "owner_id": snowflake(500_000),
        "unavailable": false,
        "member_count": members,
        "large": members > 250,
        "joined_at": "2025-03-14T15:09:26.535000+00:00",
        "roles": (0..5).map(|n| json!({"id": snowflake(900 + n), "name": format!("role{n}"), "permissions": "1024", "position": n, "color": 0, "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null}, "hoist": false, "managed": false, "mentionable": false, "flags": 0})).collect::<Vec<_>>(),
        "emojis": [],
        "stickers": [],
        "features": ["COMMUNITY"],
        "channels": channels,
        "threads": [],
        "members": (0..members).map(member).collect::<Vec<_>>(),
        "voice_states": (0..voice).map(|n| voice_state(n, 2 + 2 * (n % 30), false)).collect::<Vec<_>>(),
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "verification_level": 1,
        "default_message_notifications": 1,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "system_channel_id": null,
        "rules_channel_id": null,
        "premium_tier": 0,
        "preferred_locale": "en-US",
        "nsfw_level": 0,
        "afk_timeout": 300,
        "afk_channel_id": null,
        "premium_progress_bar_enabled": false,
        "system_channel_flags": 0,
        "max_members": 500_000,
        "vanity_url_code": null,
        "description": null,
        "banner": null,
        "splash": null,
        "discovery_splash": null,
        "application_id": null,
        "widget_enabled": false,
    });
    envelope("GUILD_CREATE", 2, d)
}

/// A VOICE_STATE_UPDATE for a user joining a channel.
pub fn voice_state_update() -> String {
    envelope("VOICE_STATE_UPDATE", 40, voice_state(17, 4, true))
}

/// A MESSAGE_CREATE with an embed, the largest common event a voice bridge does not want.
pub fn message_create() -> String {
    let d = json!({
        "id": snowflake(700_001),
        "channel_id": snowflake(3),
        "guild_id": GUILD_ID.to_string(),
        "author": user(3),
        "member": {"roles": [snowflake(901)], "joined_at": "2025-03-14T15:09:26.535000+00:00", "deaf": false, "mute": false, "flags": 0},
        "content": "Anyone up for a four-player commander game tonight? Bring your precons, we start at 8.",
        "timestamp": "2026-11-26T10:00:00.000000+00:00",
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [user(4)],
        "mention_roles": [],
        "attachments": [],
        "embeds": [{"type": "rich", "title": "Game night", "description": "Commander, 4 players, voice in table-4", "color": 5_793_266, "fields": [{"name": "When", "value": "20:00", "inline": true}, {"name": "Where", "value": "table-4", "inline": true}]}],
        "pinned": false,
        "type": 0,
        "flags": 0,
        "components": [],
        "nonce": "1311111111111111111",
    });
    envelope("MESSAGE_CREATE", 41, d)
}

/// A PRESENCE_UPDATE with an activity.
pub fn presence_update() -> String {
    let d = json!({
        "user": {"id": snowflake(500_009)},
        "guild_id": GUILD_ID.to_string(),
        "status": "online",
        "activities": [{"name": "Magic: The Gathering Arena", "type": 0, "created_at": 1_764_150_000_000_u64, "timestamps": {"start": 1_764_149_000_000_u64}, "application_id": snowflake(42)}],
        "client_status": {"desktop": "online"},
    });
    envelope("PRESENCE_UPDATE", 42, d)
}

/// A TYPING_START, the smallest high-volume event.
pub fn typing_start() -> String {
    let d = json!({
        "channel_id": snowflake(3),
        "guild_id": GUILD_ID.to_string(),
        "user_id": snowflake(500_011),
        "timestamp": 1_764_150_000_u64,
        "member": member(11),
    });
    envelope("TYPING_START", 43, d)
}

/// The whole corpus: wanted events first, then unwanted ones.
pub fn gateway_corpus() -> Vec<Sample> {
    vec![
        Sample {
            name: "GUILD_CREATE_1000m",
            wanted: true,
            json: guild_create(1000, 120),
        },
        Sample {
            name: "VOICE_STATE_UPDATE",
            wanted: true,
            json: voice_state_update(),
        },
        Sample {
            name: "MESSAGE_CREATE",
            wanted: false,
            json: message_create(),
        },
        Sample {
            name: "PRESENCE_UPDATE",
            wanted: false,
            json: presence_update(),
        },
        Sample {
            name: "TYPING_START",
            wanted: false,
            json: typing_start(),
        },
    ]
}

/// Compresses messages the way Discord's `zlib-stream` transport does: one deflate stream for
/// the connection, each message ending with a sync flush (`00 00 FF FF`).
pub fn zlib_stream(messages: &[&str]) -> Vec<Vec<u8>> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut compress = Compress::new(Compression::default(), true);
    messages
        .iter()
        .map(|m| {
            let mut out = Vec::with_capacity(m.len() / 2 + 64);
            let mut input = m.as_bytes();
            loop {
                out.reserve(4096);
                let before_in = compress.total_in();
                // Compressing into a Vec with spare capacity cannot fail for a valid stream.
                let status = compress
                    .compress_vec(input, &mut out, FlushCompress::Sync)
                    .expect("deflate into a growable buffer");
                let used = usize::try_from(compress.total_in() - before_in).unwrap_or(input.len());
                input = &input[used..];
                if input.is_empty() && out.ends_with(&[0, 0, 0xff, 0xff]) {
                    break;
                }
                let _ = status;
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_is_valid_json_in_discord_field_order() {
        for s in gateway_corpus() {
            let v: Value = serde_json::from_str(&s.json).expect(s.name);
            assert_eq!(v["op"], 0, "{}", s.name);
            assert!(s.json.starts_with(r#"{"t":""#), "{}", s.name);
        }
        let big = guild_create(1000, 120).len();
        assert!(big > 300_000, "GUILD_CREATE is {big} bytes");
    }

    #[test]
    fn zlib_stream_messages_end_with_sync_flush() {
        let msgs = ["{\"op\":11}", "{\"op\":1,\"d\":null}"];
        for m in zlib_stream(&msgs) {
            assert!(m.ends_with(&[0, 0, 0xff, 0xff]));
        }
    }
}
