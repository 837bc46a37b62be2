//! [`Sim`]: the handle tests hold. Starts the listeners, drives the simulated guild and
//! injects faults, and reads back what happened.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{SimConfig, channel_type};
use crate::error::{ControlError, SimError, WaitError};
use crate::faults::{Faults, RestFault};
use crate::gateway;
use crate::gateway::codes;
use crate::gateway::connection::envelope;
use crate::introspect::{
    Channel, ConnectionInfo, ConnectionState, Listener, ReceivedPayload, RestCall, SessionInfo,
    VoiceFlags, VoiceState,
};
use crate::shared::Shared;
use crate::world::{ConnCommand, World};
use crate::{control, http_util, rest};

/// A running fake Discord on 127.0.0.1. Dropping it stops every listener and drops every
/// connection (without close frames); [`Sim::shutdown`] does the same explicitly.
#[derive(Debug)]
pub struct Sim {
    shared: Arc<Shared>,
    urls: Arc<Urls>,
    tasks: Vec<JoinHandle<()>>,
    /// Only the handle returned by [`Sim::start`] stops the sim when dropped; the
    /// control endpoint works on a detached copy.
    owner: bool,
}

#[derive(Debug)]
struct Urls {
    gateway: String,
    resume: String,
    api: String,
    control: String,
}

async fn bind(listener: &'static str, port: u16) -> Result<(TcpListener, SocketAddr), SimError> {
    let bound = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| SimError::Bind {
            listener,
            port,
            source,
        })?;
    let addr = bound.local_addr().map_err(|source| SimError::Bind {
        listener,
        port,
        source,
    })?;
    Ok((bound, addr))
}

fn check_config(cfg: &SimConfig) -> Result<(), SimError> {
    let bad = |what: String| Err(SimError::Config(what));
    if cfg.heartbeat_interval.is_zero() {
        return bad("heartbeat_interval must be above zero".into());
    }
    if cfg.token.is_empty() {
        return bad("token must not be empty".into());
    }
    let mut ids = std::collections::BTreeSet::new();
    for c in &cfg.channels {
        if !ids.insert(c.id) {
            return bad(format!("channel id {} is used twice", c.id));
        }
    }
    for c in &cfg.channels {
        if let Some(p) = c.parent_id {
            if !cfg
                .channels
                .iter()
                .any(|x| x.id == p && x.kind == channel_type::GUILD_CATEGORY)
            {
                return bad(format!(
                    "channel {} has parent {p}, which is not a category",
                    c.id
                ));
            }
        }
    }
    for v in &cfg.voice_states {
        if !cfg
            .channels
            .iter()
            .any(|c| c.id == v.channel_id && channel_type::is_voice(c.kind))
        {
            return bad(format!(
                "user {} is in {}, which is not a voice channel",
                v.user_id, v.channel_id
            ));
        }
    }
    Ok(())
}

impl Sim {
    /// Binds the gateway, resume-gateway, REST and control listeners on 127.0.0.1 (ports
    /// from `config.ports`, 0 = any) and starts serving.
    ///
    /// # Errors
    ///
    /// [`SimError::Config`] when the configuration is inconsistent (a voice state in a
    /// channel that is not a voice channel, a parent that is not a category, duplicate
    /// ids, a zero heartbeat interval, an empty token); [`SimError::Bind`] when a port
    /// cannot be bound.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use discord_sim::{Sim, SimConfig};
    ///
    /// let sim = Sim::start(SimConfig::default()).await?;
    /// assert!(sim.gateway_url().starts_with("ws://127.0.0.1:"));
    /// assert_ne!(sim.gateway_url(), sim.resume_gateway_url());
    /// assert!(sim.api_base().ends_with("/api/v10"));
    /// # Ok(()) }
    /// ```
    pub async fn start(config: SimConfig) -> Result<Self, SimError> {
        check_config(&config)?;
        let (gw, gw_addr) = bind("gateway", config.ports.gateway).await?;
        let (resume, resume_addr) = bind("resume", config.ports.resume).await?;
        let (rest_listener, rest_addr) = bind("rest", config.ports.rest).await?;
        let (control_listener, control_addr) = bind("control", config.ports.control).await?;
        let gateway_url = format!("ws://{gw_addr}");
        let resume_gateway_url = format!("ws://{resume_addr}");
        let cfg = Arc::new(config);
        let world = World::new(
            Arc::clone(&cfg),
            gateway_url.clone(),
            resume_gateway_url.clone(),
        );
        let shared = Arc::new(Shared::new(cfg, world));

        let mut tasks = vec![
            tokio::spawn(gateway::accept_loop(
                Arc::clone(&shared),
                gw,
                Listener::Gateway,
            )),
            tokio::spawn(gateway::accept_loop(
                Arc::clone(&shared),
                resume,
                Listener::Resume,
            )),
        ];
        let rest_shared = Arc::clone(&shared);
        tasks.push(tokio::spawn(http_util::serve(
            rest_listener,
            shared.shutdown_signal(),
            Arc::new(move |req| rest::handle(Arc::clone(&rest_shared), req)),
        )));
        let mut sim = Self {
            shared,
            urls: Arc::new(Urls {
                gateway: gateway_url,
                resume: resume_gateway_url,
                api: format!("http://{rest_addr}/api/v10"),
                control: format!("http://{control_addr}/control"),
            }),
            tasks,
            owner: true,
        };
        let control_sim = Arc::new(sim.detached());
        sim.tasks.push(tokio::spawn(http_util::serve(
            control_listener,
            sim.shared.shutdown_signal(),
            Arc::new(move |req| control::handle(Arc::clone(&control_sim), req)),
        )));
        tracing::info!(gateway = %sim.urls.gateway, resume = %sim.urls.resume, api = %sim.urls.api, control = %sim.urls.control, "discord-sim started");
        Ok(sim)
    }

    /// The same sim without ownership: dropping it stops nothing.
    fn detached(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            urls: Arc::clone(&self.urls),
            tasks: Vec::new(),
            owner: false,
        }
    }

    /// Stops listening and drops every connection.
    pub async fn shutdown(mut self) {
        self.stop();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }

    fn stop(&self) {
        self.shared.shutdown.send_replace(true);
    }

    // ---- URLs ------------------------------------------------------------------

    /// The main gateway URL, `ws://127.0.0.1:<port>` (what `GET /gateway/bot` returns).
    /// Connect with `?v=10&encoding=json` (and optionally `&compress=zlib-stream`).
    pub fn gateway_url(&self) -> &str {
        &self.urls.gateway
    }

    /// The resume gateway URL sent in READY: a different port serving the same sessions.
    pub fn resume_gateway_url(&self) -> &str {
        &self.urls.resume
    }

    /// The REST base, `http://127.0.0.1:<port>/api/v10` (use as `DISCORD_API_BASE`).
    pub fn api_base(&self) -> &str {
        &self.urls.api
    }

    /// The control endpoint base, `http://127.0.0.1:<port>/control`.
    pub fn control_url(&self) -> &str {
        &self.urls.control
    }

    /// The configuration the sim runs with.
    pub fn config(&self) -> &SimConfig {
        &self.shared.cfg
    }

    /// The guild id.
    pub fn guild_id(&self) -> u64 {
        self.shared.cfg.guild_id
    }

    // ---- guild control -----------------------------------------------------------

    /// A user connects to a voice channel (a move if already connected elsewhere):
    /// one VOICE_STATE_UPDATE carrying the channel.
    ///
    /// # Errors
    ///
    /// Unknown channel, not a voice channel, channel full, or already in that channel.
    pub async fn join(&self, user_id: u64, channel_id: u64) -> Result<VoiceState, ControlError> {
        self.shared.update(|w| w.join(user_id, channel_id))
    }

    /// A user in voice moves to another channel: one VOICE_STATE_UPDATE with the new
    /// `channel_id`.
    ///
    /// # Errors
    ///
    /// The user is not in voice, or as for [`Sim::join`].
    pub async fn move_user(
        &self,
        user_id: u64,
        channel_id: u64,
    ) -> Result<VoiceState, ControlError> {
        self.shared.update(|w| w.move_user(user_id, channel_id))
    }

    /// A user disconnects from voice: VOICE_STATE_UPDATE with `channel_id: null`.
    /// Returns the state they had.
    ///
    /// # Errors
    ///
    /// The user is not in voice.
    pub async fn leave(&self, user_id: u64) -> Result<VoiceState, ControlError> {
        self.shared.update(|w| w.leave(user_id))
    }

    /// Mute/deafen/stream/video changes: a VOICE_STATE_UPDATE with the same channel and
    /// the flags changed (Discord sends those too).
    ///
    /// # Errors
    ///
    /// The user is not in voice.
    pub async fn set_voice_flags(
        &self,
        user_id: u64,
        flags: VoiceFlags,
    ) -> Result<VoiceState, ControlError> {
        self.shared.update(|w| w.set_flags(user_id, flags))
    }

    /// A channel created "from the Discord client": CHANNEL_CREATE.
    ///
    /// # Errors
    ///
    /// [`ControlError::InvalidChannel`] for a name outside 1-100 characters, a type that
    /// cannot be created, a `user_limit` over 99, or a parent that is not a category.
    pub async fn create_channel(
        &self,
        name: &str,
        kind: u8,
        parent_id: Option<u64>,
        user_limit: u32,
    ) -> Result<Channel, ControlError> {
        self.shared.update(|w| {
            w.check_new_channel(name, kind, parent_id, user_limit)?;
            let voice = channel_type::is_voice(kind);
            Ok(w.create_channel(
                name.to_owned(),
                kind,
                parent_id,
                if voice { user_limit } else { 0 },
                if voice { 64_000 } else { 0 },
            ))
        })
    }

    /// A channel deleted "from the Discord client": CHANNEL_DELETE, then a
    /// VOICE_STATE_UPDATE with `channel_id: null` for every user who was in it.
    ///
    /// # Errors
    ///
    /// Unknown channel.
    pub async fn delete_channel(&self, channel_id: u64) -> Result<Channel, ControlError> {
        self.shared.update(|w| w.delete_channel(channel_id))
    }

    // ---- gateway faults -------------------------------------------------------------

    fn broadcast(&self, cmd: &ConnCommand) -> usize {
        self.shared.update(|w| w.broadcast(cmd))
    }

    /// Sends op 7 Reconnect to every open connection (gateway-events.mdx "Reconnect").
    /// Sessions stay resumable. Returns how many connections got it.
    pub async fn send_reconnect(&self) -> usize {
        self.broadcast(&ConnCommand::Send(envelope(
            codes::OP_RECONNECT,
            serde_json::Value::Null,
        )))
    }

    /// Sends op 9 Invalid Session with `d: resumable` to every open connection
    /// (gateway-events.mdx "Invalid Session"). Each connection's session is detached
    /// before op 9 goes out: with `true` it stays resumable (on a new socket or the same
    /// one), with `false` it is invalid, so a RESUME gets op 9 `false` again and the
    /// client must IDENTIFY. Returns how many connections got it.
    pub async fn send_invalid_session(&self, resumable: bool) -> usize {
        self.broadcast(&ConnCommand::InvalidSession { resumable })
    }

    /// Sends op 1 Heartbeat to every open connection: the client must heartbeat at once
    /// (gateway.mdx "Heartbeat Requests"). Returns how many connections got it.
    pub async fn request_heartbeat(&self) -> usize {
        let seq = serde_json::Value::Null;
        self.broadcast(&ConnCommand::Send(envelope(codes::OP_HEARTBEAT, seq)))
    }

    /// The next `count` new gateway connections get op 7 Reconnect in place of HELLO
    /// (gateway-events.mdx "Reconnect": it can come "even before/in place of receiving a
    /// Hello") and are dropped once the client leaves, or after 5 s.
    pub async fn reconnect_before_hello(&self, count: u32) {
        self.shared
            .update(|w| w.faults.reconnect_before_hello = count);
    }

    /// Turns heartbeat ACKs (op 11) on or off. Off makes every connection look zombied to
    /// its client.
    pub async fn set_heartbeat_ack(&self, enabled: bool) {
        self.shared.update(|w| w.faults.ack_heartbeats = enabled);
    }

    /// Closes every open connection with `code` and `reason`. Sessions stay resumable
    /// unless the code means a new session (4004, 4007, 4009, 4010-4014, 1000, 1001).
    /// Returns how many connections were told.
    pub async fn close_all(&self, code: u16, reason: &str) -> usize {
        self.broadcast(&ConnCommand::Close {
            code,
            reason: reason.to_owned(),
        })
    }

    /// Drops every open connection's TCP stream without a close frame. Sessions stay
    /// resumable. Returns how many connections were told.
    pub async fn drop_all(&self) -> usize {
        self.broadcast(&ConnCommand::Drop)
    }

    /// The next `count` REST calls get `fault` instead of an answer.
    pub async fn fail_rest(&self, fault: RestFault, count: u32) {
        self.shared.update(|w| {
            w.faults.rest_failure = (count > 0).then_some((fault, count));
        });
    }

    /// Delays every gateway frame the sim sends by `latency`.
    pub async fn set_gateway_latency(&self, latency: Duration) {
        self.shared.update(|w| w.faults.gateway_latency = latency);
    }

    /// Delays every REST response by `latency`.
    pub async fn set_rest_latency(&self, latency: Duration) {
        self.shared.update(|w| w.faults.rest_latency = latency);
    }

    /// Turns every fault off: ACKs on, no latency, no pending REST failures.
    pub async fn clear_faults(&self) {
        self.shared.update(|w| w.faults = Faults::default());
    }

    // ---- introspection --------------------------------------------------------------

    /// Every channel of the guild, by id.
    pub fn channels(&self) -> Vec<Channel> {
        self.shared.read(|w| w.channels.values().cloned().collect())
    }

    /// Every user in voice, by user id.
    pub fn voice_states(&self) -> Vec<VoiceState> {
        self.shared.read(|w| w.voice.values().cloned().collect())
    }

    /// Every gateway connection, open and recently closed, by id.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.shared
            .read(|w| w.conns.values().map(|c| c.info.clone()).collect())
    }

    /// Every session ever started, in no particular order.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.shared.read(|w| {
            w.sessions
                .values()
                .map(crate::session::Session::info)
                .collect()
        })
    }

    /// Every payload clients sent, oldest first (the last 100 000).
    pub fn received(&self) -> Vec<ReceivedPayload> {
        self.shared.read(|w| w.received.iter().cloned().collect())
    }

    /// Successful IDENTIFYs (READY sent).
    pub fn identify_count(&self) -> u64 {
        self.shared.read(|w| w.identify_count)
    }

    /// Successful RESUMEs (replay and RESUMED sent).
    pub fn resume_count(&self) -> u64 {
        self.shared.read(|w| w.resume_count)
    }

    /// `session_start_limit.remaining` as `GET /gateway/bot` would report it now.
    pub fn session_start_remaining(&self) -> u32 {
        self.shared.update(|w| {
            w.start_limit_reset_after(Instant::now());
            w.start_remaining
        })
    }

    /// Every REST call answered, oldest first (the last 100 000).
    pub fn rest_log(&self) -> Vec<RestCall> {
        self.shared.read(|w| w.rest_log.iter().cloned().collect())
    }

    /// Open connections that have identified or resumed.
    pub fn ready_clients(&self) -> usize {
        self.shared.read(|w| {
            w.conns
                .values()
                .filter(|c| {
                    matches!(
                        c.info.state,
                        ConnectionState::Identified | ConnectionState::Resumed
                    )
                })
                .count()
        })
    }

    /// A receiver whose value changes after every change of the sim's state.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.subscribe()
    }

    /// Waits until `condition` holds, re-checking after every state change (and every
    /// 100 ms for time-based conditions).
    ///
    /// # Errors
    ///
    /// [`WaitError::Timeout`] if it does not hold within `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&Self) -> bool,
    ) -> Result<(), WaitError> {
        let deadline = Instant::now() + timeout;
        let mut rx = self.shared.subscribe();
        loop {
            rx.borrow_and_update();
            if condition(self) {
                return Ok(());
            }
            let recheck = (Instant::now() + Duration::from_millis(100)).min(deadline);
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return Err(WaitError::Closed) },
                () = tokio::time::sleep_until(recheck) => {
                    if Instant::now() >= deadline && !condition(self) {
                        return Err(WaitError::Timeout(timeout));
                    }
                }
            }
        }
    }

    /// Waits until at least `n` open connections have identified or resumed.
    ///
    /// # Errors
    ///
    /// [`WaitError::Timeout`] if that does not happen within `timeout`.
    pub async fn wait_for_clients(&self, n: usize, timeout: Duration) -> Result<(), WaitError> {
        self.wait_for(timeout, |s| s.ready_clients() >= n).await
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        self.stop();
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_can_be_shared_across_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Sim>();
    }

    #[tokio::test]
    async fn inconsistent_config_is_refused() {
        let cfg = SimConfig {
            voice_states: vec![crate::VoiceStateSpec {
                user_id: 1,
                channel_id: crate::DEFAULT_CATEGORY_ID,
            }],
            ..SimConfig::default()
        };
        assert!(matches!(Sim::start(cfg).await, Err(SimError::Config(_))));
        let cfg = SimConfig {
            heartbeat_interval: Duration::ZERO,
            ..SimConfig::default()
        };
        assert!(matches!(Sim::start(cfg).await, Err(SimError::Config(_))));
    }
}
