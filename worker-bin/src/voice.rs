//! The guild voice-state cache and the room events derived from it.
//!
//! Pure: dispatches in, [`RoomEvent`]s out. The rules (contract §3, §5):
//!
//! | change seen                             | events                          |
//! |-----------------------------------------|---------------------------------|
//! | not in a channel -> in channel B        | `voice.joined` B                |
//! | in channel A -> not in a channel        | `voice.left` A                  |
//! | in A -> in B (a move)                   | `voice.left` A, `voice.joined` B|
//! | same channel, flags changed (mute, ...) | nothing                         |
//! | voice channel deleted                   | `room.deleted` (occupants dropped silently) |
//! | GUILD_CREATE of the guild               | differences since the cache, then `guild.sync` |
//! | anything about another guild            | nothing                         |
//!
//! Discord sends VOICE_STATE_UPDATE for mute/deafen/stream changes as well as
//! joins, leaves and moves, and a move is one update carrying the new
//! `channel_id` (`resources/voice.mdx`, "Voice State Object"; observed
//! behaviour), so the previous channel must come from this cache.

use std::collections::BTreeMap;

use gateway_proto::{Channel, DispatchEvent, GuildCreate, VoiceState};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{Occupancy, RoomEvent};

/// `GUILD_VOICE` (`resources/channel.mdx`, "Channel Types").
const GUILD_VOICE: u8 = 2;
/// `GUILD_STAGE_VOICE` (`resources/channel.mdx`, "Channel Types").
const GUILD_STAGE_VOICE: u8 = 13;

fn is_voice(kind: u8) -> bool {
    kind == GUILD_VOICE || kind == GUILD_STAGE_VOICE
}

/// What the cache keeps about a voice channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceChannel {
    /// Channel name, when Discord sent one.
    #[serde(default)]
    pub name: Option<String>,
    /// Channel type (2 voice, 13 stage).
    pub kind: u8,
}

/// The voice occupancy of one guild: who is in which voice channel, and
/// which voice channels exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceCache {
    guild_id: String,
    /// Whether a GUILD_CREATE (or a saved state) has filled the cache; a
    /// GUILD_CREATE into an unseeded cache reports only a `guild.sync`, not
    /// one `voice.joined` per present user.
    seeded: bool,
    channels: BTreeMap<String, VoiceChannel>,
    /// user id -> channel id.
    members: BTreeMap<String, String>,
}

impl VoiceCache {
    /// An empty, unseeded cache for `guild_id`.
    #[must_use]
    pub fn new(guild_id: impl Into<String>) -> Self {
        Self {
            guild_id: guild_id.into(),
            seeded: false,
            channels: BTreeMap::new(),
            members: BTreeMap::new(),
        }
    }

    /// The guild this cache follows.
    #[must_use]
    pub fn guild_id(&self) -> &str {
        &self.guild_id
    }

    /// Whether the cache holds a known state (from GUILD_CREATE or a file).
    #[must_use]
    pub fn is_seeded(&self) -> bool {
        self.seeded
    }

    /// The channel `user_id` is in, if any.
    #[must_use]
    pub fn channel_of(&self, user_id: &str) -> Option<&str> {
        self.members.get(user_id).map(String::as_str)
    }

    /// Known voice channels.
    #[must_use]
    pub fn channels(&self) -> &BTreeMap<String, VoiceChannel> {
        &self.channels
    }

    /// The full occupancy, sorted by user id.
    #[must_use]
    pub fn occupancy(&self) -> Vec<Occupancy> {
        self.members
            .iter()
            .map(|(user, channel)| Occupancy {
                channel_id: channel.clone(),
                user_id: user.clone(),
            })
            .collect()
    }

    /// A `guild.sync` of the current occupancy.
    #[must_use]
    pub fn sync_event(&self) -> RoomEvent {
        RoomEvent::GuildSync {
            voice_states: self.occupancy(),
        }
    }

    /// Apply one typed dispatch from gateway-proto and return the room
    /// events it implies, in order. Other dispatches change nothing.
    pub fn apply(&mut self, event: &DispatchEvent) -> Vec<RoomEvent> {
        match event {
            DispatchEvent::GuildCreate(guild) => self.guild_create(guild),
            DispatchEvent::ChannelCreate(channel) | DispatchEvent::ChannelUpdate(channel) => {
                self.channel_upsert(channel);
                Vec::new()
            }
            DispatchEvent::ChannelDelete(channel) => self.channel_delete(channel),
            DispatchEvent::VoiceStateUpdate(state) => self.voice_state(state),
            _ => Vec::new(),
        }
    }

    /// Apply one dispatch given as its name (`t`) and JSON data (`d`); the
    /// same as [`apply`](Self::apply) for callers without typed dispatches.
    /// Unknown or malformed dispatches change nothing.
    pub fn apply_dispatch(&mut self, name: &str, data: &Value) -> Vec<RoomEvent> {
        match name {
            "GUILD_CREATE" => match GuildCreate::deserialize(data) {
                Ok(guild) => self.guild_create(&guild),
                Err(_) => Vec::new(),
            },
            "CHANNEL_CREATE" | "CHANNEL_UPDATE" => {
                if let Ok(channel) = Channel::deserialize(data) {
                    self.channel_upsert(&channel);
                }
                Vec::new()
            }
            "CHANNEL_DELETE" => match Channel::deserialize(data) {
                Ok(channel) => self.channel_delete(&channel),
                Err(_) => Vec::new(),
            },
            "VOICE_STATE_UPDATE" => match VoiceState::deserialize(data) {
                Ok(state) => self.voice_state(&state),
                Err(_) => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn voice_state(&mut self, state: &VoiceState) -> Vec<RoomEvent> {
        // VOICE_STATE_UPDATE of another guild (or a DM call, no guild_id).
        if state.guild_id.as_deref() != Some(self.guild_id.as_str()) {
            return Vec::new();
        }
        self.set_channel(state.user_id.clone(), state.channel_id.clone())
    }

    /// Move `user` to `channel` (None = no channel) and report the change.
    fn set_channel(&mut self, user: String, channel: Option<String>) -> Vec<RoomEvent> {
        let previous = match &channel {
            Some(c) => self.members.insert(user.clone(), c.clone()),
            None => self.members.remove(&user),
        };
        transition(user, previous, channel)
    }

    fn channel_upsert(&mut self, channel: &Channel) {
        if channel.guild_id.as_deref() != Some(self.guild_id.as_str()) {
            return;
        }
        if is_voice(channel.kind) {
            self.channels.insert(
                channel.id.clone(),
                VoiceChannel {
                    name: channel.name.clone(),
                    kind: channel.kind,
                },
            );
        } else {
            self.channels.remove(&channel.id);
        }
    }

    fn channel_delete(&mut self, channel: &Channel) -> Vec<RoomEvent> {
        if channel.guild_id.as_deref() != Some(self.guild_id.as_str()) {
            return Vec::new();
        }
        let known = self.channels.remove(&channel.id).is_some();
        if !known && !is_voice(channel.kind) {
            return Vec::new();
        }
        // Contract §3: "A room deleted with users inside yields room.deleted
        // only (clients drop its members)."
        self.members.retain(|_, c| *c != channel.id);
        vec![RoomEvent::RoomDeleted {
            channel_id: channel.id.clone(),
        }]
    }

    fn guild_create(&mut self, guild: &GuildCreate) -> Vec<RoomEvent> {
        if guild.id != self.guild_id || guild.unavailable {
            return Vec::new();
        }
        let channels: BTreeMap<String, VoiceChannel> = guild
            .channels
            .iter()
            .filter(|c| is_voice(c.kind))
            .map(|c| {
                (
                    c.id.clone(),
                    VoiceChannel {
                        name: c.name.clone(),
                        kind: c.kind,
                    },
                )
            })
            .collect();
        let members: BTreeMap<String, String> = guild
            .voice_states
            .iter()
            .filter_map(|s| s.channel_id.clone().map(|c| (s.user_id.clone(), c)))
            .collect();

        let mut events = Vec::new();
        if self.seeded {
            // Report what happened while the session was lost: channels that
            // disappeared (their occupants silently), then per user the
            // leave/join/move, as if the updates had been received.
            for id in self.channels.keys() {
                if !channels.contains_key(id) {
                    events.push(RoomEvent::RoomDeleted {
                        channel_id: id.clone(),
                    });
                    self.members.retain(|_, c| c != id);
                }
            }
            let mut users: Vec<&String> = self.members.keys().chain(members.keys()).collect();
            users.sort();
            users.dedup();
            for user in users {
                events.extend(transition(
                    user.clone(),
                    self.members.get(user).cloned(),
                    members.get(user).cloned(),
                ));
            }
        }
        self.channels = channels;
        self.members = members;
        self.seeded = true;
        // Contract §5: "Sends guild.sync after every GUILD_CREATE of the guild".
        events.push(self.sync_event());
        events
    }

    /// Apply an event the hub has acknowledged. This keeps a second cache
    /// that matches exactly what the hub has seen (for the state file).
    pub fn apply_event(&mut self, event: &RoomEvent) {
        match event {
            RoomEvent::VoiceJoined {
                channel_id,
                user_id,
            } => {
                self.members.insert(user_id.clone(), channel_id.clone());
            }
            RoomEvent::VoiceLeft {
                channel_id,
                user_id,
            } => {
                if self.members.get(user_id) == Some(channel_id) {
                    self.members.remove(user_id);
                }
            }
            RoomEvent::RoomDeleted { channel_id } => {
                self.channels.remove(channel_id);
                self.members.retain(|_, c| c != channel_id);
            }
            RoomEvent::GuildSync { voice_states } => {
                self.members = voice_states
                    .iter()
                    .map(|o| (o.user_id.clone(), o.channel_id.clone()))
                    .collect();
                self.seeded = true;
            }
        }
    }

    /// Learn voice channels another cache knows about (channel creation
    /// produces no event, so the acknowledged cache takes it from the live one).
    pub fn learn_channels(&mut self, other: &Self) {
        for (id, channel) in &other.channels {
            self.channels
                .entry(id.clone())
                .or_insert_with(|| channel.clone());
        }
    }
}

/// Events for one user going from `previous` to `current`.
fn transition(user: String, previous: Option<String>, current: Option<String>) -> Vec<RoomEvent> {
    match (previous, current) {
        (None, None) => Vec::new(),
        (None, Some(joined)) => vec![RoomEvent::VoiceJoined {
            channel_id: joined,
            user_id: user,
        }],
        (Some(left), None) => vec![RoomEvent::VoiceLeft {
            channel_id: left,
            user_id: user,
        }],
        // Same channel: a mute/deafen/stream/video change. Nothing (contract §3).
        (Some(a), Some(b)) if a == b => Vec::new(),
        // A move: leave A then join B (contract §3).
        (Some(a), Some(b)) => vec![
            RoomEvent::VoiceLeft {
                channel_id: a,
                user_id: user.clone(),
            },
            RoomEvent::VoiceJoined {
                channel_id: b,
                user_id: user,
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const G: &str = "100";

    fn joined(c: &str, u: &str) -> RoomEvent {
        RoomEvent::VoiceJoined {
            channel_id: c.into(),
            user_id: u.into(),
        }
    }
    fn left(c: &str, u: &str) -> RoomEvent {
        RoomEvent::VoiceLeft {
            channel_id: c.into(),
            user_id: u.into(),
        }
    }
    fn deleted(c: &str) -> RoomEvent {
        RoomEvent::RoomDeleted {
            channel_id: c.into(),
        }
    }
    fn sync(pairs: &[(&str, &str)]) -> RoomEvent {
        RoomEvent::GuildSync {
            voice_states: pairs
                .iter()
                .map(|(c, u)| Occupancy {
                    channel_id: (*c).into(),
                    user_id: (*u).into(),
                })
                .collect(),
        }
    }
    fn vsu(c: Option<&str>, u: &str) -> Value {
        json!({"guild_id": G, "channel_id": c, "user_id": u, "session_id": "x",
               "deaf": false, "mute": false, "self_deaf": false, "self_mute": false,
               "self_video": false, "suppress": false})
    }
    fn guild_create(channels: &[(&str, u8)], states: &[(&str, &str)]) -> Value {
        json!({
            "id": G,
            "name": "g",
            "channels": channels.iter().map(|(id, t)| json!({"id": id, "type": t, "name": format!("c{id}")})).collect::<Vec<_>>(),
            "voice_states": states.iter().map(|(c, u)| json!({"channel_id": c, "user_id": u, "session_id": "s"})).collect::<Vec<_>>(),
        })
    }
    fn seeded() -> VoiceCache {
        let mut cache = VoiceCache::new(G);
        let events = cache.apply_dispatch(
            "GUILD_CREATE",
            &guild_create(&[("1", 2), ("2", 2), ("3", 13), ("9", 0)], &[("1", "u1")]),
        );
        assert_eq!(events, vec![sync(&[("1", "u1")])]);
        cache
    }

    #[test]
    fn first_guild_create_only_syncs() {
        let cache = seeded();
        assert!(cache.is_seeded());
        assert_eq!(cache.channel_of("u1"), Some("1"));
        assert_eq!(cache.channels().len(), 3, "text channel 9 is not kept");
    }

    #[test]
    fn join_leave_move() {
        let mut cache = seeded();
        assert_eq!(
            cache.apply_dispatch("VOICE_STATE_UPDATE", &vsu(Some("2"), "u2")),
            vec![joined("2", "u2")]
        );
        assert_eq!(
            cache.apply_dispatch("VOICE_STATE_UPDATE", &vsu(Some("3"), "u2")),
            vec![left("2", "u2"), joined("3", "u2")]
        );
        assert_eq!(
            cache.apply_dispatch("VOICE_STATE_UPDATE", &vsu(None, "u2")),
            vec![left("3", "u2")],
            "voice.left carries the channel left"
        );
        assert_eq!(
            cache.apply_dispatch("VOICE_STATE_UPDATE", &vsu(None, "u2")),
            vec![]
        );
    }

    #[test]
    fn flag_changes_yield_nothing() {
        let mut cache = seeded();
        let mut muted = vsu(Some("1"), "u1");
        muted["self_mute"] = json!(true);
        muted["self_stream"] = json!(true);
        assert_eq!(cache.apply_dispatch("VOICE_STATE_UPDATE", &muted), vec![]);
        assert_eq!(cache.channel_of("u1"), Some("1"));
    }

    #[test]
    fn other_guilds_are_ignored() {
        let mut cache = seeded();
        let mut other = vsu(Some("1"), "u5");
        other["guild_id"] = json!("200");
        assert_eq!(cache.apply_dispatch("VOICE_STATE_UPDATE", &other), vec![]);
        let mut dm = vsu(Some("1"), "u5");
        dm.as_object_mut().unwrap().remove("guild_id");
        assert_eq!(cache.apply_dispatch("VOICE_STATE_UPDATE", &dm), vec![]);
        assert_eq!(
            cache.apply_dispatch(
                "CHANNEL_DELETE",
                &json!({"id": "1", "type": 2, "guild_id": "200"})
            ),
            vec![]
        );
        let mut gc = guild_create(&[], &[]);
        gc["id"] = json!("200");
        assert_eq!(cache.apply_dispatch("GUILD_CREATE", &gc), vec![]);
        assert_eq!(cache.channel_of("u1"), Some("1"));
        assert_eq!(cache.channel_of("u5"), None);
    }

    #[test]
    fn voice_channel_delete_is_room_deleted_only() {
        let mut cache = seeded();
        cache.apply_dispatch("VOICE_STATE_UPDATE", &vsu(Some("1"), "u2"));
        assert_eq!(
            cache.apply_dispatch(
                "CHANNEL_DELETE",
                &json!({"id": "1", "type": 2, "guild_id": G})
            ),
            vec![deleted("1")]
        );
        assert_eq!(cache.channel_of("u1"), None);
        assert_eq!(cache.channel_of("u2"), None);
        // A text channel going away is not a room.
        assert_eq!(
            cache.apply_dispatch(
                "CHANNEL_DELETE",
                &json!({"id": "9", "type": 0, "guild_id": G})
            ),
            vec![]
        );
        // An unknown voice channel still yields room.deleted (the hub decides
        // whether it was one of its rooms).
        assert_eq!(
            cache.apply_dispatch(
                "CHANNEL_DELETE",
                &json!({"id": "77", "type": 2, "guild_id": G})
            ),
            vec![deleted("77")]
        );
    }

    #[test]
    fn channel_create_and_update_track_voice_channels() {
        let mut cache = seeded();
        cache.apply_dispatch(
            "CHANNEL_CREATE",
            &json!({"id": "5", "type": 2, "guild_id": G, "name": "room"}),
        );
        assert_eq!(cache.channels()["5"].name.as_deref(), Some("room"));
        cache.apply_dispatch(
            "CHANNEL_UPDATE",
            &json!({"id": "5", "type": 2, "guild_id": G, "name": "renamed"}),
        );
        assert_eq!(cache.channels()["5"].name.as_deref(), Some("renamed"));
        cache.apply_dispatch(
            "CHANNEL_CREATE",
            &json!({"id": "6", "type": 0, "guild_id": G}),
        );
        assert!(!cache.channels().contains_key("6"));
    }

    #[test]
    fn guild_create_after_a_lost_session_reports_the_gap() {
        let mut cache = seeded();
        cache.apply_dispatch("VOICE_STATE_UPDATE", &vsu(Some("2"), "u2"));
        cache.apply_dispatch("VOICE_STATE_UPDATE", &vsu(Some("3"), "u3"));
        cache.apply_dispatch("VOICE_STATE_UPDATE", &vsu(Some("2"), "u4"));
        // Meanwhile: u1 left, u2 moved 2 -> 1, u5 joined 1, channel 3 (with
        // u3) deleted, u4 muted (same channel).
        let events = cache.apply_dispatch(
            "GUILD_CREATE",
            &guild_create(
                &[("1", 2), ("2", 2)],
                &[("1", "u2"), ("1", "u5"), ("2", "u4")],
            ),
        );
        assert_eq!(
            events,
            vec![
                deleted("3"),
                left("1", "u1"),
                left("2", "u2"),
                joined("1", "u2"),
                joined("1", "u5"),
                sync(&[("1", "u2"), ("2", "u4"), ("1", "u5")]),
            ]
        );
        assert!(!cache.channels().contains_key("3"));
    }

    #[test]
    fn malformed_dispatches_change_nothing() {
        let mut cache = seeded();
        let before = cache.clone();
        for name in [
            "GUILD_CREATE",
            "VOICE_STATE_UPDATE",
            "CHANNEL_DELETE",
            "CHANNEL_CREATE",
        ] {
            assert_eq!(cache.apply_dispatch(name, &json!({"nope": 1})), vec![]);
            assert_eq!(cache.apply_dispatch(name, &json!(null)), vec![]);
        }
        assert_eq!(cache, before);
    }

    #[test]
    fn applying_derived_events_reproduces_the_cache() {
        // The acknowledged cache, fed the derived events, ends up equal in
        // occupancy to the live one.
        let mut live = VoiceCache::new(G);
        let mut acked = VoiceCache::new(G);
        let feed = |name: &str, d: Value, live: &mut VoiceCache, acked: &mut VoiceCache| {
            for e in live.apply_dispatch(name, &d) {
                acked.apply_event(&e);
            }
            acked.learn_channels(live);
        };
        feed(
            "GUILD_CREATE",
            guild_create(&[("1", 2), ("2", 2)], &[("1", "a")]),
            &mut live,
            &mut acked,
        );
        feed(
            "VOICE_STATE_UPDATE",
            vsu(Some("2"), "a"),
            &mut live,
            &mut acked,
        );
        feed(
            "VOICE_STATE_UPDATE",
            vsu(Some("2"), "b"),
            &mut live,
            &mut acked,
        );
        feed("VOICE_STATE_UPDATE", vsu(None, "b"), &mut live, &mut acked);
        feed(
            "CHANNEL_CREATE",
            json!({"id": "4", "type": 2, "guild_id": G}),
            &mut live,
            &mut acked,
        );
        feed(
            "VOICE_STATE_UPDATE",
            vsu(Some("4"), "c"),
            &mut live,
            &mut acked,
        );
        feed(
            "CHANNEL_DELETE",
            json!({"id": "2", "type": 2, "guild_id": G}),
            &mut live,
            &mut acked,
        );
        assert_eq!(acked, live);
    }
}
