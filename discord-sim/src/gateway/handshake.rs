//! What IDENTIFY and RESUME do to the world: session creation with the identify
//! limits, and session takeover with replay (gateway.mdx "Identifying", "Resuming").

use std::sync::Arc;

use serde_json::json;
use tokio::sync::Notify;
use tokio::time::{Duration, Instant};

use super::validate;
use crate::introspect::{ConnId, ConnectionState};
use crate::session::{Session, Status};
use crate::world::{ConnCommand, World};

/// Sessions kept before invalid ones are swept.
const MAX_SESSIONS: usize = 10_000;

pub(crate) enum IdentifyOutcome {
    Ready(String),
    Throttled,
    Exhausted,
}

pub(crate) fn start_session(
    w: &mut World,
    conn: ConnId,
    wake: Arc<Notify>,
    ident: &validate::Identify,
) -> IdentifyOutcome {
    let now = Instant::now();
    let limits = w.cfg.session_start_limit;
    while w
        .identify_times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(5))
    {
        w.identify_times.pop_front();
    }
    if w.identify_times.len() >= limits.max_concurrency.max(1) as usize {
        return IdentifyOutcome::Throttled;
    }
    w.start_limit_reset_after(now);
    if w.start_remaining == 0 {
        return IdentifyOutcome::Exhausted;
    }
    w.start_remaining -= 1;
    w.start_window.get_or_insert(now);
    w.identify_times.push_back(now);
    w.identify_count += 1;
    let session_id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    // gateway.mdx "Sharding": a guild belongs to shard `(guild_id >> 22) % num_shards`.
    let has_guild = ident
        .shard
        .is_none_or(|[id, count]| (w.guild_id() >> 22) % count == id);
    let mut session = Session::new(
        session_id.clone(),
        ident.intents,
        w.cfg.replay_capacity,
        conn,
        wake,
    );
    session.push("READY", &w.ready(&session_id, ident.shard, has_guild));
    if has_guild {
        // gateway-events.mdx "Guild Create": sent after READY for each unavailable guild.
        session.push("GUILD_CREATE", &w.guild_create(ident.intents));
    }
    // Bounded: once there are many sessions, the invalid ones (which can never be
    // resumed again) are forgotten.
    if w.sessions.len() >= MAX_SESSIONS {
        let timeout = w.cfg.resume_timeout;
        w.sessions.retain(|_, s| s.is_live(now, timeout));
    }
    w.sessions.insert(session_id.clone(), session);
    if let Some(entry) = w.conns.get_mut(&conn) {
        entry.info.state = ConnectionState::Identified;
        entry.info.session_id = Some(session_id.clone());
    }
    IdentifyOutcome::Ready(session_id)
}

pub(crate) enum ResumeOutcome {
    Resumed,
    Invalid,
    BadSeq,
}

pub(crate) fn resume_session(
    w: &mut World,
    conn: ConnId,
    wake: Arc<Notify>,
    r: &validate::Resume,
) -> ResumeOutcome {
    let now = Instant::now();
    let timeout = w.cfg.resume_timeout;
    let Some(s) = w.sessions.get_mut(&r.session_id) else {
        return ResumeOutcome::Invalid;
    };
    if !s.is_live(now, timeout) {
        return ResumeOutcome::Invalid;
    }
    if r.seq > s.seq {
        s.status = Status::Invalid {
            reason: "resume with a seq the session never sent".to_owned(),
        };
        return ResumeOutcome::BadSeq;
    }
    if s.since(r.seq).is_none() {
        return ResumeOutcome::Invalid;
    }
    let previous = s.conn();
    s.status = Status::Connected { conn, wake };
    // gateway.mdx "Resuming": the missed events are replayed in order, "finishing with a
    // Resumed event".
    s.push("RESUMED", &json!({"_trace": ["discord-sim"]}));
    w.resume_count += 1;
    if let Some(old) = previous.filter(|old| *old != conn) {
        if let Some(tx) = w.conns.get(&old).and_then(|e| e.commands.as_ref()) {
            let _ = tx.try_send(ConnCommand::Superseded);
        }
    }
    if let Some(entry) = w.conns.get_mut(&conn) {
        entry.info.state = ConnectionState::Resumed;
        entry.info.session_id = Some(r.session_id.clone());
    }
    ResumeOutcome::Resumed
}
