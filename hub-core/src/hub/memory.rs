//! The in-process [`Backend`]: state in memory, persisted to `DATA_DIR` (see `persist.rs`).

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;

use super::backend::{Backend, DedupeKey};
use super::dedupe::{ExpiringSet, MAX_KEYS};
use super::error::{BackendError, HubError};
use super::event::Change;
use super::persist::{PersistedEvent, SEQ_BLOCK, StreamFiles, StreamState};
use super::presence::Presence;
use super::stream::{Replay, ReplayBuffer, StoredEvent, encode_snapshot};

/// Bounds of one guild stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Events kept for `since` (`REPLAY_MAX_EVENTS`).
    pub replay_max_events: usize,
    /// Oldest event kept for `since`, in milliseconds.
    pub replay_max_age_ms: i64,
}

#[derive(Debug)]
struct GuildStream {
    guild_id: u64,
    buffer: ReplayBuffer,
    presence: Presence,
    ids: ExpiringSet<String>,
    macs: ExpiringSet<[u8; 32]>,
    /// Seqs up to this one are reserved on disk.
    reserved: u64,
    files: Option<StreamFiles>,
    snapshot: Option<(u64, Bytes)>,
    /// Names this stream's state (see [`MemoryBackend::state_id`]).
    state_id: String,
}

/// A new random state id (16 hex digits).
pub(crate) fn new_state_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

impl GuildStream {
    fn open(guild_id: u64, limits: StreamLimits, dir: Option<&Path>) -> Result<Self, HubError> {
        let mut stream = Self {
            guild_id,
            buffer: ReplayBuffer::new(0, limits.replay_max_events, limits.replay_max_age_ms),
            presence: Presence::new(),
            ids: ExpiringSet::new(MAX_KEYS),
            macs: ExpiringSet::new(MAX_KEYS),
            reserved: 0,
            files: dir.map(|d| StreamFiles::new(d, guild_id)),
            snapshot: None,
            state_id: new_state_id(),
        };
        let Some(files) = stream.files.clone() else {
            return Ok(stream);
        };
        let state = files.load_state(guild_id)?;
        let mark = files.load_reserved()?;
        match (&state, mark) {
            (Some(state), mark) => {
                stream.restore(state);
                // Written by the run that reserved last: it shut down cleanly and this is
                // exactly the state it acknowledged, so its name holds.
                if mark == Some(state.reserved)
                    && let Some(id) = &state.state_id
                {
                    stream.state_id.clone_from(id);
                }
                if let Some(mark) = mark.filter(|&m| m > state.reserved) {
                    // A later run reserved more seqs and did not shut down cleanly: its
                    // events are lost; continue after everything it may have used.
                    tracing::warn!(
                        guild_id,
                        mark,
                        "hub stream was not shut down cleanly; continuing after the reserved seqs"
                    );
                    stream.buffer.skip_to(mark);
                }
            }
            (None, Some(mark)) => stream.buffer.skip_to(mark),
            (None, None) => {}
        }
        // Reserve a fresh block before anything is emitted, so a crash in this run is
        // detectable at the next start: its mark exceeds the state file's `reserved`. The
        // block starts beyond every earlier mark, not just beyond the head: after a clean
        // run that emitted nothing, head + 1 + SEQ_BLOCK would equal the saved `reserved`,
        // and a crash of this run would go unnoticed and its seqs be handed out again.
        let floor = state
            .as_ref()
            .map_or(0, |s| s.reserved)
            .max(mark.unwrap_or(0));
        stream.reserved = 0;
        stream.reserve(stream.buffer.head().max(floor) + 1)?;
        Ok(stream)
    }

    fn restore(&mut self, state: &StreamState) {
        self.buffer.skip_to(state.seq);
        for e in &state.events {
            if e.seq <= state.seq {
                self.buffer.restore(StoredEvent {
                    seq: e.seq,
                    ts_ms: e.ts,
                    frame: Bytes::from(e.frame.clone().into_bytes()),
                });
            }
        }
        // Held events must be contiguous up to the head, or a replay would have a gap.
        let contiguous = self
            .buffer
            .events()
            .zip(self.buffer.events().skip(1))
            .all(|(a, b)| b.seq == a.seq + 1);
        if !contiguous
            || self
                .buffer
                .events()
                .last()
                .is_some_and(|e| e.seq != state.seq)
        {
            self.buffer.clear();
        }
        self.presence = Presence::from_persisted(&state.rooms);
        let now = i64::MIN;
        for (id, exp) in &state.dedupe_ids {
            self.ids.insert(id.clone(), *exp, now);
        }
        for (hex, exp) in &state.dedupe_macs {
            if let Some(mac) = from_hex(hex) {
                self.macs.insert(mac, *exp, now);
            }
        }
    }

    /// Makes sure seqs up to `needed` are reserved on disk before they are used.
    fn reserve(&mut self, needed: u64) -> Result<(), HubError> {
        if needed <= self.reserved {
            return Ok(());
        }
        let mark = needed.saturating_add(SEQ_BLOCK);
        if let Some(files) = &self.files {
            files.save_reserved(mark)?;
        }
        self.reserved = mark;
        Ok(())
    }

    fn to_state(&self, now_ms: i64) -> StreamState {
        let mut state = StreamState::empty(self.guild_id);
        state.seq = self.buffer.head();
        state.reserved = self.reserved;
        state.state_id = Some(self.state_id.clone());
        state.events = self
            .buffer
            .events()
            .map(|e| PersistedEvent {
                seq: e.seq,
                ts: e.ts_ms,
                frame: String::from_utf8_lossy(&e.frame).into_owned(),
            })
            .collect();
        state.rooms = self.presence.to_persisted();
        state.dedupe_ids = self
            .ids
            .entries(now_ms)
            .map(|(k, e)| (k.clone(), e))
            .collect();
        state.dedupe_macs = self
            .macs
            .entries(now_ms)
            .map(|(k, e)| (to_hex(k), e))
            .collect();
        state
    }
}

/// The in-process backend: one [`ReplayBuffer`], [`Presence`] and dedupe sets per guild.
#[derive(Debug)]
pub struct MemoryBackend {
    guilds: HashMap<u64, GuildStream>,
}

impl MemoryBackend {
    /// Opens the streams of `guilds`, restoring each from `data_dir` when given.
    ///
    /// # Errors
    /// [`HubError`] when a state file cannot be read or is corrupt, or the first seq block
    /// cannot be reserved.
    pub fn open(
        guilds: &[u64],
        limits: StreamLimits,
        data_dir: Option<&Path>,
    ) -> Result<Self, HubError> {
        let mut map = HashMap::new();
        for &g in guilds {
            map.insert(g, GuildStream::open(g, limits, data_dir)?);
        }
        Ok(Self { guilds: map })
    }

    /// Names the state of `guild_id`'s stream: kept across a clean restart with `DATA_DIR`
    /// (the state file holds everything the hub acknowledged), new after a crash, a lost
    /// or corrupt file, or without `DATA_DIR`. See [`super::Hub::state_id`].
    pub fn state_id(&self, guild_id: u64) -> Option<&str> {
        self.guilds.get(&guild_id).map(|g| g.state_id.as_str())
    }

    fn guild(&mut self, guild_id: u64) -> Result<&mut GuildStream, BackendError> {
        self.guilds
            .get_mut(&guild_id)
            .ok_or_else(|| BackendError::Unavailable("no stream for this guild".to_owned()))
    }
}

impl Backend for MemoryBackend {
    fn head(&mut self, guild_id: u64) -> Result<u64, BackendError> {
        Ok(self.guild(guild_id)?.buffer.head())
    }

    fn apply(
        &mut self,
        guild_id: u64,
        change: &Change,
        now_ms: i64,
    ) -> Result<Vec<StoredEvent>, BackendError> {
        let g = self.guild(guild_id)?;
        // Reserve (durably) every seq this change could use BEFORE touching presence, so a
        // failed reservation leaves the state as it was.
        let most = match change {
            Change::Sync { voice_states } => voice_states.len() + g.presence.user_count(),
            _ => 2,
        };
        g.reserve(g.buffer.head() + most as u64)
            .map_err(BackendError::Persist)?;
        let emitted = g.presence.apply(change);
        if emitted.is_empty() {
            return Ok(Vec::new());
        }
        g.snapshot = None;
        Ok(emitted
            .iter()
            .map(|e| g.buffer.push(guild_id, e, now_ms))
            .collect())
    }

    fn replay_since(
        &mut self,
        guild_id: u64,
        since: u64,
        now_ms: i64,
    ) -> Result<Replay, BackendError> {
        Ok(self.guild(guild_id)?.buffer.since(since, now_ms))
    }

    fn snapshot(&mut self, guild_id: u64) -> Result<Bytes, BackendError> {
        let g = self.guild(guild_id)?;
        let head = g.buffer.head();
        if let Some((seq, frame)) = &g.snapshot {
            if *seq == head {
                return Ok(frame.clone());
            }
        }
        // Cached per head: a reconnect storm encodes the snapshot once.
        let frame = encode_snapshot(&g.presence, head);
        g.snapshot = Some((head, frame.clone()));
        Ok(frame)
    }

    fn adopt_rooms(
        &mut self,
        guild_id: u64,
        rooms: &[(u64, Option<String>)],
    ) -> Result<usize, BackendError> {
        let g = self.guild(guild_id)?;
        let adopted = rooms
            .iter()
            .filter(|(channel_id, name)| g.presence.adopt(*channel_id, name.clone()))
            .count();
        if adopted > 0 {
            g.snapshot = None;
        }
        Ok(adopted)
    }

    fn members(&mut self, guild_id: u64, channel_id: u64) -> Option<usize> {
        self.guilds.get(&guild_id)?.presence.members(channel_id)
    }

    fn seen(&mut self, guild_id: u64, key: &DedupeKey, now_ms: i64) -> Result<bool, BackendError> {
        let g = self.guild(guild_id)?;
        Ok(match key {
            DedupeKey::EventId(id) => g.ids.contains(id, now_ms),
            DedupeKey::Mac(mac) => g.macs.contains(mac, now_ms),
        })
    }

    fn remember(
        &mut self,
        guild_id: u64,
        key: DedupeKey,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<(), BackendError> {
        let g = self.guild(guild_id)?;
        match key {
            DedupeKey::EventId(id) => g.ids.insert(id, expires_ms, now_ms),
            DedupeKey::Mac(mac) => g.macs.insert(mac, expires_ms, now_ms),
        }
        Ok(())
    }

    fn persist(&mut self, now_ms: i64) -> Result<(), BackendError> {
        for g in self.guilds.values() {
            if let Some(files) = &g.files {
                files
                    .save_state(&g.to_state(now_ms))
                    .map_err(BackendError::Persist)?;
            }
        }
        Ok(())
    }

    fn health(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
}

fn to_hex(bytes: &[u8; 32]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn from_hex(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = 42;
    const LIMITS: StreamLimits = StreamLimits {
        replay_max_events: 100,
        replay_max_age_ms: 600_000,
    };

    fn joined(channel_id: u64, user_id: u64) -> Change {
        Change::VoiceJoined {
            channel_id,
            user_id,
        }
    }

    #[test]
    fn hex_round_trips() {
        let mac = [0xa5u8; 32];
        assert_eq!(from_hex(&to_hex(&mac)), Some(mac));
        assert_eq!(from_hex("zz"), None);
    }

    #[test]
    fn clean_restart_keeps_seq_replay_presence_and_dedupe() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let mut b = MemoryBackend::open(&[G], LIMITS, Some(dir.path()))?;
        b.apply(G, &joined(1, 10), 1_000)?;
        b.apply(G, &joined(1, 11), 1_000)?;
        b.remember(G, DedupeKey::EventId("e1".into()), 100_000, 1_000)?;
        b.remember(G, DedupeKey::Mac([7; 32]), 100_000, 1_000)?;
        b.persist(1_000)?;
        drop(b);

        let mut b = MemoryBackend::open(&[G], LIMITS, Some(dir.path()))?;
        assert_eq!(b.head(G)?, 2);
        assert!(matches!(b.replay_since(G, 0, 2_000)?, Replay::Events(v) if v.len() == 2));
        assert_eq!(b.members(G, 1), Some(2));
        assert!(b.seen(G, &DedupeKey::EventId("e1".into()), 2_000)?);
        assert!(b.seen(G, &DedupeKey::Mac([7; 32]), 2_000)?);
        let next = b.apply(G, &joined(1, 12), 2_000)?;
        assert_eq!(next.first().map(|e| e.seq), Some(3));
        Ok(())
    }

    #[test]
    fn crash_restarts_beyond_every_seq_it_may_have_used() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let mut b = MemoryBackend::open(&[G], LIMITS, Some(dir.path()))?;
        b.persist(0)?; // an old clean state
        let mut last = 0;
        for u in 0..(SEQ_BLOCK + 10) {
            last = b.apply(G, &joined(1, u), 0)?.last().map_or(0, |e| e.seq);
        }
        drop(b); // kill -9: no persist

        let mut b = MemoryBackend::open(&[G], LIMITS, Some(dir.path()))?;
        let head = b.head(G)?;
        assert!(
            head >= last,
            "head {head} must not be below the last used seq {last}"
        );
        assert_eq!(b.replay_since(G, 5, 0)?, Replay::TooOld);
        let first = b.apply(G, &joined(2, 1), 0)?.first().map_or(0, |e| e.seq);
        assert_eq!(first, head + 1);

        // And again without any state file at all.
        drop(b);
        let mut b = MemoryBackend::open(&[G], LIMITS, Some(dir.path()))?;
        assert!(b.head(G)? > first);
        Ok(())
    }

    #[test]
    fn a_crash_after_a_clean_run_without_events_is_detected()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        // Run A: starts, emits nothing, shuts down cleanly.
        let mut b = MemoryBackend::open(&[G], LIMITS, Some(dir.path()))?;
        b.persist(0)?;
        drop(b);
        // Run B: emits a few events and is killed (no persist).
        let mut b = MemoryBackend::open(&[G], LIMITS, Some(dir.path()))?;
        let mut last = 0;
        for u in 0..3 {
            last = b.apply(G, &joined(1, u), 0)?.last().map_or(0, |e| e.seq);
        }
        drop(b);
        // Run C must not hand out B's seqs again.
        let mut b = MemoryBackend::open(&[G], LIMITS, Some(dir.path()))?;
        let head = b.head(G)?;
        assert!(
            head >= last,
            "head {head} is below the last used seq {last}"
        );
        assert_eq!(b.replay_since(G, 0, 0)?, Replay::TooOld);
        Ok(())
    }

    #[test]
    fn the_state_id_survives_only_a_clean_restart() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let id = |b: &MemoryBackend| b.state_id(G).map(str::to_owned);
        let mut b = MemoryBackend::open(&[G], LIMITS, Some(dir.path()))?;
        let first = id(&b);
        assert!(first.as_ref().is_some_and(|s| s.len() == 16));
        b.apply(G, &joined(1, 10), 0)?;
        b.persist(0)?;
        drop(b);
        // Clean restart: everything acknowledged is back, so the name holds.
        let mut b = MemoryBackend::open(&[G], LIMITS, Some(dir.path()))?;
        assert_eq!(id(&b), first);
        b.apply(G, &joined(1, 11), 0)?;
        drop(b); // kill -9: the last member was acknowledged and is lost
        let b = MemoryBackend::open(&[G], LIMITS, Some(dir.path()))?;
        let after_crash = id(&b);
        assert_ne!(after_crash, first);
        assert_eq!(b.state_id(G + 1), None);
        drop(b); // killed again before any persist: still not the clean run's name
        let b = MemoryBackend::open(&[G], LIMITS, Some(dir.path()))?;
        assert_ne!(id(&b), first);
        // Without DATA_DIR nothing survives a restart.
        let a = MemoryBackend::open(&[G], LIMITS, None)?;
        let b = MemoryBackend::open(&[G], LIMITS, None)?;
        assert_ne!(id(&a), id(&b));
        Ok(())
    }

    #[test]
    fn snapshot_is_cached_per_head() -> Result<(), Box<dyn std::error::Error>> {
        let mut b = MemoryBackend::open(&[G], LIMITS, None)?;
        let s1 = b.snapshot(G)?;
        let s2 = b.snapshot(G)?;
        assert_eq!(s1.as_ptr(), s2.as_ptr());
        b.apply(G, &joined(1, 10), 0)?;
        let s3 = b.snapshot(G)?;
        assert!(std::str::from_utf8(&s3)?.contains("\"seq\":1"));
        Ok(())
    }
}
