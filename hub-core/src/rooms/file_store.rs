//! [`FileRoomStore`]: the registry and idempotency keys in `DATA_DIR/rooms.json`.
//!
//! The whole state is small (Discord caps a guild at 500 channels; idempotency keys are
//! bounded by [`MAX_IDEMPOTENCY_KEYS`]), so every change rewrites the file atomically.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use super::store::{CreatedRoom, Room, RoomStore, StoreError, snowflake};
use crate::atomic_file::write_atomic;

/// Most idempotency keys kept; beyond it the ones expiring soonest are dropped.
pub(crate) const MAX_IDEMPOTENCY_KEYS: usize = 10_000;
/// The state file's name inside `DATA_DIR`.
pub(crate) const FILE_NAME: &str = "rooms.json";

#[derive(Default)]
struct State {
    rooms: HashMap<(u64, u64), Room>,
    keys: HashMap<(u64, String, String), (CreatedRoom, i64)>,
}

/// The on-disk format (version 1).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Disk {
    version: u32,
    rooms: Vec<DiskRoom>,
    idempotency: Vec<DiskKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DiskRoom {
    #[serde(with = "snowflake")]
    guild_id: u64,
    #[serde(with = "snowflake")]
    channel_id: u64,
    #[serde(flatten)]
    room: Room,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DiskKey {
    #[serde(with = "snowflake")]
    guild_id: u64,
    sub: String,
    key: String,
    expires_at: i64,
    answer: CreatedRoom,
}

/// The file-backed [`RoomStore`].
pub struct FileRoomStore {
    path: PathBuf,
    state: Mutex<State>,
    /// The last write failure, cleared by the next successful write.
    last_error: Mutex<Option<String>>,
}

impl std::fmt::Debug for FileRoomStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileRoomStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FileRoomStore {
    /// Opens (or starts) the registry in `data_dir`, loading `rooms.json` if present.
    ///
    /// # Errors
    /// [`StoreError::Io`] if the directory cannot be created or the file read;
    /// [`StoreError::Corrupt`] if the file is not a valid registry.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Io(format!("{}: {e}", data_dir.display())))?;
        let path = data_dir.join(FILE_NAME);
        let mut state = State::default();
        match std::fs::read(&path) {
            Ok(bytes) => {
                let disk: Disk = serde_json::from_slice(&bytes)
                    .map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display())))?;
                if disk.version != 1 {
                    return Err(StoreError::Corrupt(format!(
                        "unknown version {}",
                        disk.version
                    )));
                }
                for r in disk.rooms {
                    state.rooms.insert((r.guild_id, r.channel_id), r.room);
                }
                for k in disk.idempotency {
                    state
                        .keys
                        .insert((k.guild_id, k.sub, k.key), (k.answer, k.expires_at));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::Io(format!("{}: {e}", path.display()))),
        }
        Ok(Self {
            path,
            state: Mutex::new(state),
            last_error: Mutex::new(None),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn save(&self, state: &State) -> Result<(), StoreError> {
        let mut rooms: Vec<DiskRoom> = state
            .rooms
            .iter()
            .map(|(&(guild_id, channel_id), room)| DiskRoom {
                guild_id,
                channel_id,
                room: room.clone(),
            })
            .collect();
        rooms.sort_by_key(|r| (r.guild_id, r.channel_id));
        let idempotency = state
            .keys
            .iter()
            .map(|((guild_id, sub, key), (answer, expires_at))| DiskKey {
                guild_id: *guild_id,
                sub: sub.clone(),
                key: key.clone(),
                expires_at: *expires_at,
                answer: answer.clone(),
            })
            .collect();
        let bytes = serde_json::to_vec_pretty(&Disk {
            version: 1,
            rooms,
            idempotency,
        })
        .map_err(|e| StoreError::Io(e.to_string()))?;
        let result = write_atomic(&self.path, &bytes)
            .map_err(|e| StoreError::Io(format!("{}: {e}", self.path.display())));
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            result.as_ref().err().map(ToString::to_string);
        result
    }
}

impl RoomStore for FileRoomStore {
    fn get(&self, guild_id: u64, channel_id: u64) -> Option<Room> {
        self.lock().rooms.get(&(guild_id, channel_id)).cloned()
    }

    fn insert(&self, guild_id: u64, channel_id: u64, room: Room) -> Result<(), StoreError> {
        let mut state = self.lock();
        let previous = state.rooms.insert((guild_id, channel_id), room);
        let saved = self.save(&state);
        if saved.is_err() {
            // Not durable -> not recorded.
            match previous {
                Some(p) => state.rooms.insert((guild_id, channel_id), p),
                None => state.rooms.remove(&(guild_id, channel_id)),
            };
        }
        saved
    }

    fn remove(&self, guild_id: u64, channel_id: u64) -> Result<Option<Room>, StoreError> {
        let mut state = self.lock();
        let Some(room) = state.rooms.remove(&(guild_id, channel_id)) else {
            return Ok(None);
        };
        self.save(&state)?;
        Ok(Some(room))
    }

    fn rooms(&self, guild_id: u64) -> Vec<(u64, Room)> {
        self.lock()
            .rooms
            .iter()
            .filter(|((g, _), _)| *g == guild_id)
            .map(|(&(_, c), r)| (c, r.clone()))
            .collect()
    }

    fn mark_nonempty(&self, guild_id: u64, channel_id: u64, now_ms: i64) {
        if let Some(room) = self.lock().rooms.get_mut(&(guild_id, channel_id)) {
            room.last_nonempty = room.last_nonempty.max(now_ms);
        }
    }

    fn idempotent(&self, guild_id: u64, sub: &str, key: &str, now_ms: i64) -> Option<CreatedRoom> {
        let state = self.lock();
        let (answer, expires_at) = state
            .keys
            .get(&(guild_id, sub.to_owned(), key.to_owned()))?;
        (*expires_at > now_ms).then(|| answer.clone())
    }

    fn remember(
        &self,
        guild_id: u64,
        sub: &str,
        key: &str,
        answer: CreatedRoom,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let now_ms = expires_at_ms.saturating_sub(crate::rooms::IDEMPOTENCY_TTL_MS);
        state.keys.retain(|_, (_, exp)| *exp > now_ms);
        while state.keys.len() >= MAX_IDEMPOTENCY_KEYS {
            let soonest = state
                .keys
                .iter()
                .min_by_key(|(_, (_, exp))| *exp)
                .map(|(k, _)| k.clone());
            match soonest {
                Some(k) => state.keys.remove(&k),
                None => break,
            };
        }
        state.keys.insert(
            (guild_id, sub.to_owned(), key.to_owned()),
            (answer, expires_at_ms),
        );
        self.save(&state)
    }

    fn health(&self) -> Result<(), String> {
        match &*self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            None => Ok(()),
            Some(e) => Err(e.clone()),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        let state = self.lock();
        self.save(&state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(owner: &str) -> Room {
        Room {
            owner: owner.into(),
            name: "r".into(),
            created_at: 1,
            last_nonempty: 1,
        }
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileRoomStore::open(dir.path()).unwrap();
        s.insert(1, 10, room("alice")).unwrap();
        s.insert(1, 11, room("bob")).unwrap();
        s.remove(1, 11).unwrap();
        let answer = CreatedRoom {
            channel_id: 10,
            name: "r".into(),
            guild_id: 1,
        };
        s.remember(1, "alice", "k1", answer.clone(), 1_000_000)
            .unwrap();
        drop(s);
        let s = FileRoomStore::open(dir.path()).unwrap();
        assert_eq!(s.get(1, 10), Some(room("alice")));
        assert_eq!(s.get(1, 11), None);
        assert_eq!(s.get(2, 10), None, "keyed by guild");
        assert_eq!(s.idempotent(1, "alice", "k1", 5), Some(answer));
        assert_eq!(s.idempotent(1, "bob", "k1", 5), None, "keys are per user");
        assert_eq!(s.idempotent(1, "alice", "k1", 1_000_000), None, "expired");
    }

    #[test]
    fn a_failed_write_shows_in_health() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileRoomStore::open(dir.path()).unwrap();
        assert_eq!(s.health(), Ok(()));
        // A directory where the file should be makes the rename fail.
        std::fs::create_dir(dir.path().join(FILE_NAME)).unwrap();
        std::fs::write(dir.path().join(FILE_NAME).join("x"), b"").unwrap();
        assert!(s.insert(1, 10, room("alice")).is_err());
        assert_eq!(s.get(1, 10), None, "not durable -> not recorded");
        assert!(s.health().is_err());
    }

    #[test]
    fn corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"{nope").unwrap();
        assert!(matches!(
            FileRoomStore::open(dir.path()),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn idempotency_keys_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileRoomStore::open(dir.path()).unwrap();
        {
            let mut st = s.lock();
            for i in 0..MAX_IDEMPOTENCY_KEYS {
                let a = CreatedRoom {
                    channel_id: 1,
                    name: "r".into(),
                    guild_id: 1,
                };
                st.keys
                    .insert((1, "u".into(), i.to_string()), (a, i64::MAX));
            }
        }
        let a = CreatedRoom {
            channel_id: 1,
            name: "r".into(),
            guild_id: 1,
        };
        s.remember(1, "u", "new", a, i64::MAX).unwrap();
        assert_eq!(s.lock().keys.len(), MAX_IDEMPOTENCY_KEYS);
    }
}
