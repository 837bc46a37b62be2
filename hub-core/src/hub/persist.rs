//! Durable stream state in `DATA_DIR`: atomic write-then-rename files.
//!
//! Two files per guild:
//! - `stream-<guild>.json`: the whole stream (seq, replay buffer, presence, dedupe keys),
//!   written on shutdown and read on start, so clients resume across a restart.
//! - `stream-<guild>.seq`: the seq high-water mark. Seqs are reserved in blocks of
//!   [`SEQ_BLOCK`]: the mark is written (and synced) BEFORE any seq up to it is used, so a hub
//!   killed with `kill -9` restarts beyond every seq it may have emitted and never gives a
//!   seq to two different events (the lead's rule "seq never reused, also across restarts").
//!
//! A state file whose `reserved` is below the mark on disk was written by an earlier run than
//! the last one: that run crashed, its events are lost, and the stream continues after the
//! mark with an empty replay buffer (clients get a snapshot).

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::HubError;

/// Seqs reserved per high-water-mark write.
pub const SEQ_BLOCK: u64 = 1024;

/// Format version of the state file.
const VERSION: u32 = 1;

/// One event of the replay buffer on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedEvent {
    /// Its seq.
    pub seq: u64,
    /// Emission time, unix milliseconds.
    pub ts: i64,
    /// The complete message text.
    pub frame: String,
}

/// One known channel on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistedRoom {
    /// The channel id.
    pub channel_id: u64,
    /// Its name, when known.
    pub name: Option<String>,
    /// Registered through `room.created`.
    pub registered: bool,
    /// User ids in the channel.
    pub members: Vec<u64>,
}

/// The whole stream state of one guild.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamState {
    /// Format version.
    pub version: u32,
    /// The guild.
    pub guild_id: u64,
    /// Seq of the latest event.
    pub seq: u64,
    /// The high-water mark in force when this state was written.
    pub reserved: u64,
    /// The replay buffer, oldest first.
    pub events: Vec<PersistedEvent>,
    /// Presence.
    pub rooms: Vec<PersistedRoom>,
    /// Webhook event ids and their expiry (unix ms).
    pub dedupe_ids: Vec<(String, i64)>,
    /// Webhook MACs (lowercase hex) and their expiry (unix ms).
    pub dedupe_macs: Vec<(String, i64)>,
    /// The hub's state id (`X-Hub-State-Id`) of the run that wrote this state; the next run
    /// keeps it only after a clean shutdown. Absent in files written before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_id: Option<String>,
}

impl StreamState {
    /// An empty state for `guild_id`.
    pub fn empty(guild_id: u64) -> Self {
        Self {
            version: VERSION,
            guild_id,
            seq: 0,
            reserved: 0,
            events: Vec::new(),
            rooms: Vec::new(),
            dedupe_ids: Vec::new(),
            dedupe_macs: Vec::new(),
            state_id: None,
        }
    }
}

/// The two state files of one guild.
#[derive(Debug, Clone)]
pub struct StreamFiles {
    state: PathBuf,
    seq: PathBuf,
}

impl StreamFiles {
    /// The files of `guild_id` in `dir`.
    pub fn new(dir: &Path, guild_id: u64) -> Self {
        Self {
            state: dir.join(format!("stream-{guild_id}.json")),
            seq: dir.join(format!("stream-{guild_id}.seq")),
        }
    }

    /// Reads the state file, `None` if there is none.
    ///
    /// # Errors
    /// [`HubError::Io`] if it cannot be read, [`HubError::CorruptState`] if it does not parse
    /// or belongs to another guild.
    pub fn load_state(&self, guild_id: u64) -> Result<Option<StreamState>, HubError> {
        let Some(bytes) = read_optional(&self.state)? else {
            return Ok(None);
        };
        let state: StreamState =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(&self.state, &e.to_string()))?;
        if state.version != VERSION {
            return Err(corrupt(&self.state, "unknown format version"));
        }
        if state.guild_id != guild_id {
            return Err(corrupt(&self.state, "written for another guild"));
        }
        Ok(Some(state))
    }

    /// Writes the state file atomically.
    ///
    /// # Errors
    /// [`HubError::Io`] when writing, syncing or renaming fails.
    pub fn save_state(&self, state: &StreamState) -> Result<(), HubError> {
        let bytes = serde_json::to_vec(state).map_err(|e| io_err(&self.state, &e.to_string()))?;
        write_atomic(&self.state, &bytes)
    }

    /// Reads the high-water mark, `None` if there is none.
    ///
    /// # Errors
    /// [`HubError::Io`] if it cannot be read, [`HubError::CorruptState`] if it is not a number.
    pub fn load_reserved(&self) -> Result<Option<u64>, HubError> {
        let Some(bytes) = read_optional(&self.seq)? else {
            return Ok(None);
        };
        std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| corrupt(&self.seq, "not a number"))
    }

    /// Writes the high-water mark atomically (and durably: synced before it is relied on).
    ///
    /// # Errors
    /// [`HubError::Io`] when writing, syncing or renaming fails.
    pub fn save_reserved(&self, reserved: u64) -> Result<(), HubError> {
        write_atomic(&self.seq, format!("{reserved}\n").as_bytes())
    }
}

/// [`crate::atomic_file::write_atomic`], with the error naming the file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), HubError> {
    crate::atomic_file::write_atomic(path, bytes).map_err(|e| io_err(path, &e.to_string()))
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, HubError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, &e.to_string())),
    }
}

fn io_err(path: &Path, reason: &str) -> HubError {
    HubError::Io {
        path: path.display().to_string(),
        reason: reason.to_owned(),
    }
}

fn corrupt(path: &Path, reason: &str) -> HubError {
    HubError::CorruptState {
        path: path.display().to_string(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let files = StreamFiles::new(dir.path(), 7);
        assert_eq!(files.load_state(7)?, None);
        assert_eq!(files.load_reserved()?, None);
        let mut state = StreamState::empty(7);
        state.seq = 3;
        state.reserved = 1024;
        state.events.push(PersistedEvent {
            seq: 3,
            ts: 5,
            frame: "{}".into(),
        });
        state.dedupe_macs.push(("ab".into(), 9));
        files.save_state(&state)?;
        files.save_reserved(1024)?;
        assert_eq!(files.load_state(7)?, Some(state));
        assert_eq!(files.load_reserved()?, Some(1024));
        assert!(matches!(
            files.load_state(8),
            Err(HubError::CorruptState { .. })
        ));
        Ok(())
    }

    #[test]
    fn corrupt_files_are_reported() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let files = StreamFiles::new(dir.path(), 7);
        fs::write(dir.path().join("stream-7.json"), b"{not json")?;
        fs::write(dir.path().join("stream-7.seq"), b"x")?;
        assert!(matches!(
            files.load_state(7),
            Err(HubError::CorruptState { .. })
        ));
        assert!(matches!(
            files.load_reserved(),
            Err(HubError::CorruptState { .. })
        ));
        Ok(())
    }
}
