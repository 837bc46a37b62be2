//! The simulated Discord's state: the guild (channels, voice states), the gateway
//! sessions and connections, the identify budget, faults and the logs tests read.
//!
//! Everything lives behind one mutex so that a change and the dispatches it causes get
//! their sequence numbers atomically. Nothing awaits while holding it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};

use crate::config::{SimConfig, channel_type, intents};
use crate::error::ControlError;
use crate::faults::Faults;
use crate::introspect::{
    Channel, ConnId, ConnectionInfo, ReceivedPayload, RestCall, VoiceFlags, VoiceState,
};
use crate::json;
use crate::rest::ratelimit::RestLimiter;
use crate::session::Session;
use crate::snowflake::SnowflakeGen;

/// Entries kept in the received-payload and REST logs; the oldest go first.
pub(crate) const LOG_CAPACITY: usize = 100_000;
/// Closed connections kept for introspection; the oldest go first.
const CLOSED_CONN_CAPACITY: usize = 1_000;

/// An instruction from the control side to one connection task.
#[derive(Debug, Clone)]
pub(crate) enum ConnCommand {
    /// Send this (non-dispatch) payload as is.
    Send(String),
    /// Close with this code and reason.
    Close { code: u16, reason: String },
    /// Send op 9 with this `d`, after detaching the connection's session (resumable or
    /// not).
    InvalidSession { resumable: bool },
    /// Drop TCP without a close frame.
    Drop,
    /// Another connection resumed this one's session: go away silently.
    Superseded,
}

/// A registered connection and the way to reach its task.
#[derive(Debug)]
pub(crate) struct ConnEntry {
    pub(crate) info: ConnectionInfo,
    /// Bounded (see `gateway::connection::COMMAND_QUEUE`); a full queue drops the command.
    pub(crate) commands: Option<mpsc::Sender<ConnCommand>>,
}

/// The whole state.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) cfg: Arc<SimConfig>,
    pub(crate) channels: BTreeMap<u64, Channel>,
    pub(crate) voice: BTreeMap<u64, VoiceState>,
    pub(crate) snowflakes: SnowflakeGen,
    pub(crate) sessions: HashMap<String, Session>,
    pub(crate) conns: BTreeMap<ConnId, ConnEntry>,
    next_conn: u64,
    pub(crate) received: VecDeque<ReceivedPayload>,
    pub(crate) identify_count: u64,
    pub(crate) resume_count: u64,
    /// Start times of recent IDENTIFYs, for `max_concurrency` per 5 s.
    pub(crate) identify_times: VecDeque<Instant>,
    pub(crate) start_remaining: u32,
    pub(crate) start_window: Option<Instant>,
    pub(crate) faults: Faults,
    pub(crate) rest_log: VecDeque<RestCall>,
    pub(crate) rest_limits: RestLimiter,
    pub(crate) resume_gateway_url: String,
    pub(crate) gateway_url: String,
}

impl World {
    pub(crate) fn new(
        cfg: Arc<SimConfig>,
        gateway_url: String,
        resume_gateway_url: String,
    ) -> Self {
        let mut floor = cfg.guild_id.max(cfg.application_id);
        let mut channels = BTreeMap::new();
        for (i, c) in cfg.channels.iter().enumerate() {
            floor = floor.max(c.id);
            channels.insert(
                c.id,
                Channel {
                    id: c.id,
                    kind: c.kind,
                    name: c.name.clone(),
                    parent_id: c.parent_id,
                    position: u32::try_from(i).unwrap_or(u32::MAX),
                    user_limit: c.user_limit,
                    bitrate: c.bitrate,
                },
            );
        }
        let mut voice = BTreeMap::new();
        for v in &cfg.voice_states {
            voice.insert(v.user_id, new_voice_state(v.user_id, v.channel_id));
        }
        Self {
            start_remaining: cfg.session_start_limit.remaining,
            rest_limits: RestLimiter::new(cfg.rest_rate_limit),
            cfg,
            channels,
            voice,
            snowflakes: SnowflakeGen::new(floor),
            sessions: HashMap::new(),
            conns: BTreeMap::new(),
            next_conn: 0,
            received: VecDeque::new(),
            identify_count: 0,
            resume_count: 0,
            identify_times: VecDeque::new(),
            start_window: None,
            faults: Faults::default(),
            rest_log: VecDeque::new(),
            resume_gateway_url,
            gateway_url,
        }
    }

    pub(crate) fn guild_id(&self) -> u64 {
        self.cfg.guild_id
    }

    // ---- connections -------------------------------------------------------------

    pub(crate) fn register_conn(
        &mut self,
        mut info: ConnectionInfo,
        commands: mpsc::Sender<ConnCommand>,
    ) -> ConnId {
        self.next_conn += 1;
        let id = ConnId(self.next_conn);
        info.id = id;
        self.conns.insert(
            id,
            ConnEntry {
                info,
                commands: Some(commands),
            },
        );
        let closed: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.commands.is_none())
            .map(|(id, _)| *id)
            .collect();
        if closed.len() > CLOSED_CONN_CAPACITY {
            for id in &closed[..closed.len() - CLOSED_CONN_CAPACITY] {
                self.conns.remove(id);
            }
        }
        id
    }

    /// Sends a command to every open connection; returns how many took it.
    pub(crate) fn broadcast(&self, cmd: &ConnCommand) -> usize {
        self.conns
            .values()
            .filter_map(|c| c.commands.as_ref())
            .filter(|tx| tx.try_send(cmd.clone()).is_ok())
            .count()
    }

    pub(crate) fn record_received(&mut self, p: ReceivedPayload) {
        if self.received.len() >= LOG_CAPACITY {
            self.received.pop_front();
        }
        self.received.push_back(p);
    }

    pub(crate) fn record_rest(&mut self, c: RestCall) {
        if self.rest_log.len() >= LOG_CAPACITY {
            self.rest_log.pop_front();
        }
        self.rest_log.push_back(c);
    }

    // ---- dispatch ----------------------------------------------------------------

    /// Dispatches an event to every live session whose intents include `intent`
    /// (gateway.mdx "Gateway Intents": without the intent "you will not receive any of
    /// the Gateway events associated with that intent"). Disconnected sessions buffer it
    /// for replay.
    pub(crate) fn dispatch(&mut self, event: &str, d: &Value, intent: u64) {
        let now = Instant::now();
        let timeout = self.cfg.resume_timeout;
        for s in self.sessions.values_mut() {
            if s.intents & intent != 0 && s.is_live(now, timeout) {
                s.push(event, d);
            }
        }
    }

    fn dispatch_voice(&mut self, vs: &VoiceState, channel_id: Option<u64>) {
        let d = json::voice_state(vs, channel_id, Some(self.guild_id()));
        // gateway-events.mdx "Voice State Update": "Sent when someone joins/leaves/moves
        // voice channels"; also sent on mute/deafen changes (observed, discord.js #164).
        self.dispatch("VOICE_STATE_UPDATE", &d, intents::GUILD_VOICE_STATES);
    }

    // ---- voice -------------------------------------------------------------------

    fn voice_channel(&self, channel_id: u64) -> Result<&Channel, ControlError> {
        let c = self
            .channels
            .get(&channel_id)
            .ok_or(ControlError::UnknownChannel(channel_id))?;
        if !channel_type::is_voice(c.kind) {
            return Err(ControlError::NotVoiceChannel(channel_id));
        }
        let occupants = self
            .voice
            .values()
            .filter(|v| v.channel_id == channel_id)
            .count();
        if c.user_limit > 0 && occupants >= c.user_limit as usize {
            return Err(ControlError::ChannelFull(channel_id));
        }
        Ok(c)
    }

    /// A user connects to a voice channel, or moves there if already connected.
    pub(crate) fn join(
        &mut self,
        user_id: u64,
        channel_id: u64,
    ) -> Result<VoiceState, ControlError> {
        if self
            .voice
            .get(&user_id)
            .is_some_and(|v| v.channel_id == channel_id)
        {
            return Err(ControlError::AlreadyInChannel {
                user_id,
                channel_id,
            });
        }
        self.voice_channel(channel_id)?;
        let vs = match self.voice.get_mut(&user_id) {
            // A move is one update carrying the new channel (voice.mdx, observed).
            Some(existing) => {
                existing.channel_id = channel_id;
                existing.clone()
            }
            None => {
                let vs = new_voice_state(user_id, channel_id);
                self.voice.insert(user_id, vs.clone());
                vs
            }
        };
        self.dispatch_voice(&vs, Some(channel_id));
        Ok(vs)
    }

    /// A user already in voice moves to another channel.
    pub(crate) fn move_user(
        &mut self,
        user_id: u64,
        channel_id: u64,
    ) -> Result<VoiceState, ControlError> {
        if !self.voice.contains_key(&user_id) {
            return Err(ControlError::NotInVoice(user_id));
        }
        self.join(user_id, channel_id)
    }

    /// A user disconnects from voice: VOICE_STATE_UPDATE with `channel_id: null`.
    pub(crate) fn leave(&mut self, user_id: u64) -> Result<VoiceState, ControlError> {
        let vs = self
            .voice
            .remove(&user_id)
            .ok_or(ControlError::NotInVoice(user_id))?;
        self.dispatch_voice(&vs, None);
        Ok(vs)
    }

    /// Mute/deafen/stream/video changes: a VOICE_STATE_UPDATE with the same channel.
    pub(crate) fn set_flags(
        &mut self,
        user_id: u64,
        f: VoiceFlags,
    ) -> Result<VoiceState, ControlError> {
        let vs = self
            .voice
            .get_mut(&user_id)
            .ok_or(ControlError::NotInVoice(user_id))?;
        let set = |dst: &mut bool, src: Option<bool>| {
            if let Some(b) = src {
                *dst = b;
            }
        };
        set(&mut vs.mute, f.mute);
        set(&mut vs.deaf, f.deaf);
        set(&mut vs.self_mute, f.self_mute);
        set(&mut vs.self_deaf, f.self_deaf);
        set(&mut vs.self_stream, f.self_stream);
        set(&mut vs.self_video, f.self_video);
        let vs = vs.clone();
        self.dispatch_voice(&vs, Some(vs.channel_id));
        Ok(vs)
    }

    // ---- channels ----------------------------------------------------------------

    /// Adds a channel that passed validation and dispatches CHANNEL_CREATE
    /// (guild.mdx "Create Guild Channel": "Fires a Channel Create Gateway event").
    pub(crate) fn create_channel(
        &mut self,
        name: String,
        kind: u8,
        parent_id: Option<u64>,
        user_limit: u32,
        bitrate: u32,
    ) -> Channel {
        let id = self.snowflakes.next_id();
        let position = u32::try_from(self.channels.values().filter(|c| c.kind == kind).count())
            .unwrap_or(u32::MAX);
        let c = Channel {
            id,
            kind,
            name,
            parent_id,
            position,
            user_limit,
            bitrate,
        };
        self.channels.insert(id, c.clone());
        let d = json::channel(&c, self.guild_id());
        self.dispatch("CHANNEL_CREATE", &d, intents::GUILDS);
        c
    }

    /// Checks a channel to create as the Discord client would; returns the problem.
    pub(crate) fn check_new_channel(
        &self,
        name: &str,
        kind: u8,
        parent_id: Option<u64>,
        user_limit: u32,
    ) -> Result<(), ControlError> {
        let len = name.chars().count();
        if !(1..=100).contains(&len) {
            return Err(ControlError::InvalidChannel(
                "name must be 1 to 100 characters".into(),
            ));
        }
        if !channel_type::CREATABLE.contains(&kind) {
            return Err(ControlError::InvalidChannel(format!(
                "type {kind} cannot be created in a guild"
            )));
        }
        if user_limit > 99 {
            return Err(ControlError::InvalidChannel(
                "user_limit must be 0 to 99".into(),
            ));
        }
        if let Some(p) = parent_id {
            if self
                .channels
                .get(&p)
                .is_none_or(|c| c.kind != channel_type::GUILD_CATEGORY)
            {
                return Err(ControlError::InvalidChannel(format!(
                    "parent {p} is not a category of the guild"
                )));
            }
        }
        Ok(())
    }

    /// Deletes a channel: CHANNEL_DELETE (channel.mdx "Delete/Close Channel": "Fires a
    /// Channel Delete Gateway event"), then a VOICE_STATE_UPDATE with `channel_id: null`
    /// for each user who was in it; deleting a category moves its children to no parent
    /// (CHANNEL_UPDATE each).
    pub(crate) fn delete_channel(&mut self, channel_id: u64) -> Result<Channel, ControlError> {
        let c = self
            .channels
            .remove(&channel_id)
            .ok_or(ControlError::UnknownChannel(channel_id))?;
        let guild_id = self.guild_id();
        self.dispatch(
            "CHANNEL_DELETE",
            &json::channel(&c, guild_id),
            intents::GUILDS,
        );
        let orphans: Vec<u64> = self
            .channels
            .values()
            .filter(|ch| ch.parent_id == Some(channel_id))
            .map(|ch| ch.id)
            .collect();
        for id in orphans {
            if let Some(ch) = self.channels.get_mut(&id) {
                ch.parent_id = None;
                let d = json::channel(ch, guild_id);
                self.dispatch("CHANNEL_UPDATE", &d, intents::GUILDS);
            }
        }
        let occupants: Vec<u64> = self
            .voice
            .values()
            .filter(|v| v.channel_id == channel_id)
            .map(|v| v.user_id)
            .collect();
        for user in occupants {
            if let Some(vs) = self.voice.remove(&user) {
                self.dispatch_voice(&vs, None);
            }
        }
        Ok(c)
    }

    // ---- READY and GUILD_CREATE -------------------------------------------------

    /// READY's `d` (gateway-events.mdx "Ready"): `v, user, guilds` (unavailable guilds),
    /// `session_id, resume_gateway_url, shard?, application {id, flags}`.
    pub(crate) fn ready(
        &self,
        session_id: &str,
        shard: Option<[u64; 2]>,
        has_guild: bool,
    ) -> Value {
        let guilds: Vec<Value> = if has_guild {
            vec![json!({"id": self.guild_id().to_string(), "unavailable": true})]
        } else {
            Vec::new()
        };
        let mut d = json!({
            "v": 10,
            "user": json::user(self.cfg.application_id, true),
            "guilds": guilds,
            "session_id": session_id,
            "resume_gateway_url": self.resume_gateway_url,
            "session_type": "normal",
            "private_channels": [],
            "relationships": [],
            "application": {"id": self.cfg.application_id.to_string(), "flags": 0},
        });
        if let Some(shard) = shard {
            d["shard"] = json!(shard);
        }
        d
    }

    /// GUILD_CREATE's `d` (gateway-events.mdx "Guild Create"): the guild plus `channels`,
    /// `voice_states` (without `guild_id`), `members` (the bot and the users in voice) and
    /// the other extra fields. `voice_states` needs GUILD_VOICE_STATES and `channels`
    /// needs GUILDS (gateway.mdx "Caveats": Guild Create "is uniquely affected by intents").
    pub(crate) fn guild_create(&self, session_intents: u64) -> Value {
        let guild_id = self.guild_id();
        let channels: Vec<Value> = if session_intents & intents::GUILDS != 0 {
            self.channels
                .values()
                .map(|c| json::channel(c, guild_id))
                .collect()
        } else {
            Vec::new()
        };
        let voice_states: Vec<Value> = if session_intents & intents::GUILD_VOICE_STATES != 0 {
            self.voice
                .values()
                .map(|v| json::voice_state(v, Some(v.channel_id), None))
                .collect()
        } else {
            Vec::new()
        };
        let mut members = vec![json::member(self.cfg.application_id, true, false, false)];
        members.extend(
            self.voice
                .values()
                .map(|v| json::member(v.user_id, false, v.mute, v.deaf)),
        );
        json!({
            "id": guild_id.to_string(),
            "name": self.cfg.guild_name,
            "icon": Value::Null,
            "splash": Value::Null,
            "discovery_splash": Value::Null,
            "owner_id": "1000000000000000001",
            "afk_channel_id": Value::Null,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [json::everyone_role(guild_id)],
            "emojis": [],
            "features": [],
            "mfa_level": 0,
            "application_id": Value::Null,
            "system_channel_id": Value::Null,
            "system_channel_flags": 0,
            "rules_channel_id": Value::Null,
            "vanity_url_code": Value::Null,
            "description": Value::Null,
            "banner": Value::Null,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": Value::Null,
            "nsfw_level": 0,
            "stickers": [],
            "premium_progress_bar_enabled": false,
            "joined_at": "2025-01-01T00:00:00.000000+00:00",
            "large": false,
            "unavailable": false,
            "member_count": members.len(),
            "voice_states": voice_states,
            "members": members,
            "channels": channels,
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        })
    }

    // ---- identify budget ----------------------------------------------------------

    /// Refills `remaining` when the window has elapsed; returns the time left in it.
    pub(crate) fn start_limit_reset_after(&mut self, now: Instant) -> Duration {
        let window = self.cfg.session_start_limit.reset_after;
        match self.start_window {
            Some(start) if now.saturating_duration_since(start) < window => {
                window - now.saturating_duration_since(start)
            }
            Some(_) => {
                self.start_window = None;
                self.start_remaining = self.cfg.session_start_limit.total;
                window
            }
            None => window,
        }
    }
}

fn new_voice_state(user_id: u64, channel_id: u64) -> VoiceState {
    VoiceState {
        user_id,
        channel_id,
        session_id: format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
        mute: false,
        deaf: false,
        self_mute: false,
        self_deaf: false,
        self_stream: false,
        self_video: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ChannelSpec, DEFAULT_CATEGORY_ID, DEFAULT_VOICE_1_ID, DEFAULT_VOICE_2_ID};
    use tokio::sync::Notify;

    fn world() -> World {
        World::new(
            Arc::new(SimConfig::default()),
            "ws://g".into(),
            "ws://r".into(),
        )
    }

    fn add_session(w: &mut World, id: &str, intents: u64) {
        let s = Session::new(id.into(), intents, 100, ConnId(1), Arc::new(Notify::new()));
        w.sessions.insert(id.into(), s);
    }

    fn events(w: &World, id: &str) -> Vec<String> {
        w.sessions[id]
            .buffer
            .iter()
            .filter_map(|d| serde_json::from_str::<Value>(&d.frame).ok())
            .map(|v| v["t"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn dispatch_respects_intents() {
        let mut w = world();
        add_session(
            &mut w,
            "voice",
            intents::GUILDS | intents::GUILD_VOICE_STATES,
        );
        add_session(&mut w, "guilds-only", intents::GUILDS);
        assert!(w.join(1, DEFAULT_VOICE_1_ID).is_ok());
        assert_eq!(events(&w, "voice"), vec!["VOICE_STATE_UPDATE"]);
        assert!(events(&w, "guilds-only").is_empty());
    }

    #[test]
    fn join_refuses_full_and_non_voice_channels() {
        let mut cfg = SimConfig::default();
        cfg.channels.push(ChannelSpec {
            user_limit: 1,
            ..ChannelSpec::voice(99, "tiny", None)
        });
        let mut w = World::new(Arc::new(cfg), String::new(), String::new());
        assert!(w.join(1, 99).is_ok());
        assert_eq!(w.join(2, 99), Err(ControlError::ChannelFull(99)));
        assert_eq!(
            w.join(2, DEFAULT_CATEGORY_ID),
            Err(ControlError::NotVoiceChannel(DEFAULT_CATEGORY_ID))
        );
        assert_eq!(w.join(2, 12345), Err(ControlError::UnknownChannel(12345)));
        assert!(matches!(
            w.join(1, 99),
            Err(ControlError::AlreadyInChannel { .. })
        ));
    }

    #[test]
    fn deleting_a_category_orphans_children_and_a_voice_channel_evicts_users() {
        let mut w = world();
        add_session(&mut w, "s", intents::GUILDS | intents::GUILD_VOICE_STATES);
        assert!(w.join(1, DEFAULT_VOICE_2_ID).is_ok());
        assert!(w.delete_channel(DEFAULT_CATEGORY_ID).is_ok());
        assert!(w.channels.values().all(|c| c.parent_id.is_none()));
        assert!(w.delete_channel(DEFAULT_VOICE_2_ID).is_ok());
        assert!(w.voice.is_empty());
        assert_eq!(
            events(&w, "s"),
            vec![
                "VOICE_STATE_UPDATE",
                "CHANNEL_DELETE",
                "CHANNEL_UPDATE",
                "CHANNEL_UPDATE",
                "CHANNEL_DELETE",
                "VOICE_STATE_UPDATE",
            ]
        );
        assert_eq!(
            w.delete_channel(DEFAULT_VOICE_2_ID),
            Err(ControlError::UnknownChannel(DEFAULT_VOICE_2_ID))
        );
    }

    #[test]
    fn new_channels_get_increasing_snowflakes() {
        let mut w = world();
        let a = w.create_channel("a".into(), channel_type::GUILD_VOICE, None, 0, 64_000);
        let b = w.create_channel("b".into(), channel_type::GUILD_VOICE, None, 0, 64_000);
        assert!(b.id > a.id && a.id > DEFAULT_VOICE_2_ID);
    }

    #[tokio::test(start_paused = true)]
    async fn expired_sessions_stop_buffering() {
        let mut w = world();
        add_session(&mut w, "s", intents::GUILD_VOICE_STATES);
        if let Some(s) = w.sessions.get_mut("s") {
            s.status = crate::session::Status::Disconnected {
                since: Instant::now(),
            };
        }
        assert!(w.join(1, DEFAULT_VOICE_1_ID).is_ok());
        tokio::time::advance(w.cfg.resume_timeout).await;
        assert!(w.leave(1).is_ok());
        assert_eq!(events(&w, "s").len(), 1, "nothing buffered after expiry");
    }
}
