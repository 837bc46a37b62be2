//! The `WORKER_STATE_FILE`: the Gateway session to RESUME and the voice
//! cache the hub has seen at that session's acknowledged seq.
//!
//! Written atomically (temporary file in the same directory, fsync, rename,
//! fsync of the directory) so a crash leaves either the old or the new file,
//! never a torn one. A file that cannot be read or parsed is reported and
//! ignored: the worker then starts a new session (IDENTIFY) instead of
//! crash-looping.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::voice::VoiceCache;

/// The on-disk format version.
pub const FORMAT_VERSION: u32 = 1;

/// What is saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedState {
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// The session to resume, at the acknowledged seq.
    pub session: Option<gateway_proto::Session>,
    /// The voice state the hub has seen at that seq.
    pub cache: VoiceCache,
    /// The hub's `X-Hub-State-Id` at the last delivery, so a worker restarted
    /// while the hub also restarted still notices and repairs the hub.
    /// Absent in files written before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub_state: Option<String>,
}

/// Why the state file could not be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum StateFileError {
    /// Reading or writing failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a state file of this version.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file belongs to another guild (`PRIMARY_GUILD_ID` changed).
    OtherGuild {
        /// The file.
        path: PathBuf,
    },
}

impl std::fmt::Display for StateFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "state file {}: {source}", path.display()),
            Self::Corrupt { path, reason } => {
                write!(f, "state file {} is unusable: {reason}", path.display())
            }
            Self::OtherGuild { path } => write!(
                f,
                "state file {} was written for another guild",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StateFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Load the state for `guild_id`. A missing file is `Ok(None)`.
///
/// # Errors
/// When the file exists but cannot be read, parsed, or is for another guild;
/// the caller should warn and start fresh.
pub fn load(path: &Path, guild_id: &str) -> Result<Option<SavedState>, StateFileError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateFileError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let state: SavedState =
        serde_json::from_slice(&bytes).map_err(|e| StateFileError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if state.version != FORMAT_VERSION {
        return Err(StateFileError::Corrupt {
            path: path.to_owned(),
            reason: format!("unknown format version {}", state.version),
        });
    }
    if state.cache.guild_id() != guild_id {
        return Err(StateFileError::OtherGuild {
            path: path.to_owned(),
        });
    }
    Ok(Some(state))
}

/// Save atomically: write a scratch file beside `path`, fsync, rename over
/// `path`, fsync the directory.
///
/// This blocks for the two fsyncs (milliseconds, more on a busy disk): call
/// it from a blocking thread, not an async task (the driver uses
/// `spawn_blocking`). Every call writes its own scratch file
/// (`<name>.<pid>-<n>.tmp`), so two writers of one path (a dropped worker's
/// last write still finishing beside a new worker's) never mix their bytes:
/// the last rename wins, whole.
///
/// # Errors
/// Any I/O failure; the previous file is then left intact and the scratch
/// file removed.
pub fn save(path: &Path, state: &SavedState) -> Result<(), StateFileError> {
    let io = |source| StateFileError::Io {
        path: path.to_owned(),
        source,
    };
    let json = serde_json::to_vec_pretty(state).map_err(|e| StateFileError::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let tmp = scratch_path(path);
    let written = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io(source));
    }
    // Make the rename itself durable (best effort: not every platform lets
    // a directory be opened).
    if let Ok(d) = fs::File::open(directory(path)) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes scratch files that a crash between writing and renaming left
/// beside `path` (regular files named `<name>.*.tmp`; they are never read).
/// Call it at start, before the first [`save`]; best effort.
pub fn remove_stale_scratch(path: &Path) {
    let Some(prefix) = path
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| format!("{n}."))
    else {
        return;
    };
    let Ok(entries) = fs::read_dir(directory(path)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let stale = entry.file_type().is_ok_and(|t| t.is_file())
            && name
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".tmp"));
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// `<name>.<pid>-<n>.tmp` beside `path`, unique per call in this process.
fn scratch_path(path: &Path) -> PathBuf {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}-{n}.tmp", std::process::id()));
    directory(path).join(name)
}

/// The directory holding `path` (`.` for a bare file name).
fn directory(path: &Path) -> &Path {
    path.parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state() -> SavedState {
        let mut cache = VoiceCache::new("42");
        cache.apply_dispatch(
            "GUILD_CREATE",
            &json!({"id": "42", "channels": [{"id": "1", "type": 2}],
                    "voice_states": [{"channel_id": "1", "user_id": "7"}]}),
        );
        SavedState {
            version: FORMAT_VERSION,
            session: Some(gateway_proto::Session {
                id: "abc".into(),
                seq: 9,
                resume_url: "wss://resume.example".into(),
            }),
            cache,
            hub_state: Some("00000000000000aa".into()),
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert!(load(&path, "42").unwrap().is_none());
        save(&path, &state()).unwrap();
        assert_eq!(load(&path, "42").unwrap(), Some(state()));
        // Overwrite in place.
        let mut next = state();
        next.session = None;
        save(&path, &next).unwrap();
        assert_eq!(load(&path, "42").unwrap(), Some(next));
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no scratch file left"
        );
    }

    #[test]
    fn concurrent_writers_of_one_path_never_tear_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut other = state();
        other.session = None;
        std::thread::scope(|scope| {
            for saved in [state(), other.clone()] {
                let path = &path;
                scope.spawn(move || {
                    for _ in 0..50 {
                        save(path, &saved).unwrap();
                    }
                });
            }
            for _ in 0..50 {
                if let Ok(Some(read)) = load(&path, "42") {
                    assert!(read == state() || read == other);
                }
            }
        });
        let last = load(&path, "42").unwrap().unwrap();
        assert!(last == state() || last == other);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no scratch file left"
        );
    }

    #[test]
    fn stale_scratch_files_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        save(&path, &state()).unwrap();
        fs::write(dir.path().join("state.json.123-4.tmp"), b"{ torn").unwrap();
        fs::write(dir.path().join("other.json.1-1.tmp"), b"").unwrap();
        remove_stale_scratch(&path);
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["other.json.1-1.tmp", "state.json"]);
        assert_eq!(load(&path, "42").unwrap(), Some(state()));
    }

    #[test]
    fn corrupt_and_foreign_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, b"{ not json").unwrap();
        assert!(matches!(
            load(&path, "42"),
            Err(StateFileError::Corrupt { .. })
        ));
        fs::write(&path, b"").unwrap();
        assert!(matches!(
            load(&path, "42"),
            Err(StateFileError::Corrupt { .. })
        ));
        save(&path, &state()).unwrap();
        assert!(matches!(
            load(&path, "43"),
            Err(StateFileError::OtherGuild { .. })
        ));
        let mut v2 = serde_json::to_value(state()).unwrap();
        v2["version"] = json!(2);
        fs::write(&path, v2.to_string()).unwrap();
        assert!(load(&path, "42").is_err());
    }

    #[test]
    fn saving_into_a_missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("state.json");
        assert!(matches!(
            save(&path, &state()),
            Err(StateFileError::Io { .. })
        ));
    }
}
