//! Which version of each table this workspace holds, per server, written
//! atomically and only for verified tables (CONTRACT.md §3, §4.5).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::digest::Md5;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::workspace::layout::Workspace;

const VERSION: u32 = 1;

/// What agnes knows of one local table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableState {
    /// The manifest `hash` the local file was verified against.
    #[serde(default)]
    pub hash: String,
    #[serde(default)]
    pub rows: u64,
    #[serde(default)]
    pub size_bytes: u64,
    /// The server's ETag of the local file, sent as `If-None-Match` when the
    /// manifest gives no hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// A partitioned table's files under `server/parquet/<id>/`, by part
    /// path; `None` for a single-file table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<BTreeMap<String, PartState>>,
    /// The local file's modification time (nanoseconds since the epoch)
    /// when it was put in place. With `size_bytes`, a stat tells whether the
    /// file is still the one verified, without reading it (issue 13, case 11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<u64>,
    /// Taken outside the user's subscriptions (`all_tables`, or by name):
    /// kept when a sync of the subscriptions alone passes it by, where a
    /// table that left the subscriptions is removed (CONTRACT.md §7.6).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outside_subscriptions: bool,
}

impl TableState {
    /// Why `path` is not the file this entry was recorded for: gone, another
    /// size, or (when recorded) another modification time. A stat, no read.
    /// Entries of older versions carry no time: their size alone is checked.
    pub fn check_file(&self, path: &Path) -> std::result::Result<(), String> {
        match fs::metadata(path) {
            Ok(meta) => self.check_meta(path, &meta),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// `check_file` of a file whose metadata was read already.
    pub fn check_meta(&self, path: &Path, meta: &fs::Metadata) -> std::result::Result<(), String> {
        if !meta.is_file() {
            return Err(format!("{} is not a file", path.display()));
        }
        if meta.len() != self.size_bytes {
            return Err(format!(
                "{} holds {} bytes, not the {} verified",
                path.display(),
                meta.len(),
                self.size_bytes
            ));
        }
        match (self.mtime_ns, mtime_ns(meta)) {
            (Some(recorded), Some(now)) if recorded != now => Err(format!(
                "{} was modified after agnes put it in place",
                path.display()
            )),
            _ => Ok(()),
        }
    }
}

/// A file's modification time in nanoseconds since the epoch, if the file
/// system gives one.
pub fn mtime_ns(meta: &fs::Metadata) -> Option<u64> {
    let since = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    u64::try_from(since.as_nanos()).ok()
}

/// What agnes knows of one local part of a partitioned table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartState {
    /// The manifest `hash` of the part the local file was verified against.
    #[serde(default)]
    pub hash: String,
    #[serde(default)]
    pub size_bytes: u64,
}

/// The sync state of one workspace for one server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    #[serde(default)]
    pub version: u32,
    #[serde(default)]
    pub server: String,
    #[serde(default)]
    pub tables: BTreeMap<String, TableState>,
    #[serde(default)]
    pub last_sync: Option<String>,
}

/// The state file of a workspace and server, and how it was found.
pub struct StateFile {
    pub path: PathBuf,
    pub state: SyncState,
    /// Something the user should know (a damaged file set aside, a migration).
    pub notice: Option<String>,
    /// Whether the file exists yet: a first sync writes it even with nothing
    /// downloaded, so that a migration happens once.
    exists: bool,
}

impl StateFile {
    /// Reads the state. A damaged file is set aside (renamed to
    /// `*.damaged`) and the sync starts from nothing, which re-downloads but
    /// never trusts wrong data. `read_only` (a dry run) sets nothing aside.
    ///
    /// The old `da`'s global `<config dir>/sync_state.json` is not read: a
    /// workspace an older client filled is adopted file by file against the
    /// manifest (adopt.rs), whichever client it was. `_config_dir` stays for
    /// the callers.
    pub fn load(
        workspace: &Workspace,
        server: &str,
        _config_dir: &Path,
        read_only: bool,
    ) -> Result<StateFile> {
        let path = workspace.sync_state_file(server);
        match read_json::<SyncState>(&path) {
            Ok(Some(state)) => Ok(StateFile {
                path,
                state,
                notice: None,
                exists: true,
            }),
            Ok(None) => Ok(StateFile {
                path,
                state: SyncState {
                    version: VERSION,
                    server: server.to_string(),
                    ..Default::default()
                },
                notice: None,
                exists: false,
            }),
            Err(reason) if read_only => {
                let state = SyncState {
                    version: VERSION,
                    server: server.to_string(),
                    ..Default::default()
                };
                let notice = format!(
                    "state file {} is damaged ({reason}); a sync will set it aside",
                    path.display()
                );
                Ok(StateFile {
                    path,
                    state,
                    notice: Some(notice),
                    exists: true,
                })
            }
            Err(reason) => {
                let aside = path.with_extension("json.damaged");
                fs::rename(&path, &aside).map_err(Error::io("set aside", &path))?;
                let state = SyncState {
                    version: VERSION,
                    server: server.to_string(),
                    ..Default::default()
                };
                let notice = format!(
                    "state file {} was damaged ({reason}); moved to {} and starting afresh",
                    path.display(),
                    aside.display()
                );
                Ok(StateFile {
                    path,
                    state,
                    notice: Some(notice),
                    exists: false,
                })
            }
        }
    }

    pub fn is_new(&self) -> bool {
        !self.exists
    }

    /// Writes the state atomically: a crash leaves the old file or the new.
    pub fn save(&mut self) -> Result<()> {
        self.exists = true;
        self.state.version = VERSION;
        self.state.last_sync =
            Some(humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string());
        let json = serde_json::to_vec_pretty(&self.state).expect("state serializes");
        write_atomic(&self.path, &json)
    }
}

/// Reads a JSON file: `Ok(None)` when absent, `Err(reason)` when damaged.
pub fn read_json<T: for<'de> Deserialize<'de>>(
    path: &Path,
) -> std::result::Result<Option<T>, String> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Replaces `path` with `bytes` through a synced temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".agnes-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(Error::io("create a temporary file in", dir))?;
    // Through the `File`: the temporary's own `Write` appends its random
    // name to errors, which would say nothing more.
    tmp.as_file_mut()
        .write_all(bytes)
        .map_err(Error::io("write", path))?;
    tmp.as_file().sync_all().map_err(Error::io("sync", path))?;
    crate::workspace::replace::persist(tmp, path)
        .map_err(|e| Error::io("replace", path)(e.error))?;
    Ok(())
}

/// MD5 of a whole file, hex.
pub fn md5_file(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.hex())
}

/// Whether a table's local copy, as the state describes it, is on disk:
/// its file, or every part in its folder.
pub(crate) fn local_copy_present(workspace: &Workspace, id: &str, local: &TableState) -> bool {
    match &local.parts {
        None => workspace.parquet_file(id).is_file(),
        Some(parts) => {
            let dir = workspace.table_dir(id);
            dir.is_dir() && parts.keys().all(|p| dir.join(p).is_file())
        }
    }
}

/// Where a synced table's view reads: its file, or its parts' folder.
pub(crate) fn local_copy(workspace: &Workspace, id: &str, local: &TableState) -> PathBuf {
    match local.parts {
        None => workspace.parquet_file(id),
        Some(_) => workspace.table_dir(id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Workspace, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path().join("ws"));
        let config = dir.path().join("config");
        fs::create_dir_all(ws.parquet_dir()).unwrap();
        fs::create_dir_all(&config).unwrap();
        (dir, ws, config)
    }

    #[test]
    fn save_then_load_round_trips_per_server() {
        let (_d, ws, config) = setup();
        let mut file = StateFile::load(&ws, "http://a", &config, false).unwrap();
        assert!(file.state.tables.is_empty() && file.notice.is_none());
        file.state.tables.insert(
            "t".into(),
            TableState {
                hash: "h".into(),
                rows: 3,
                size_bytes: 9,
                etag: Some("\"1\"".into()),
                parts: None,
                mtime_ns: Some(1),
                outside_subscriptions: true,
            },
        );
        file.save().unwrap();
        let again = StateFile::load(&ws, "http://a", &config, false).unwrap();
        assert_eq!(again.state.tables, file.state.tables);
        assert!(again.state.last_sync.is_some());
        assert!(StateFile::load(&ws, "http://b", &config, false)
            .unwrap()
            .state
            .tables
            .is_empty());
    }

    #[test]
    fn check_file_notices_a_changed_size_or_time() {
        let (_d, ws, _config) = setup();
        let path = ws.parquet_file("t");
        fs::write(&path, b"PAR1 twelve PAR1").unwrap();
        let meta = fs::metadata(&path).unwrap();
        let entry = TableState {
            size_bytes: meta.len(),
            mtime_ns: mtime_ns(&meta),
            ..Default::default()
        };
        assert_eq!(entry.check_file(&path), Ok(()));
        // Same size, rewritten later: the time tells.
        let later = meta.modified().unwrap() + std::time::Duration::from_secs(5);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(entry.check_file(&path).unwrap_err().contains("modified"));
        // An old entry without a time: its size alone is checked.
        let old = TableState {
            mtime_ns: None,
            ..entry.clone()
        };
        assert_eq!(old.check_file(&path), Ok(()));
        fs::write(&path, b"").unwrap();
        assert!(old.check_file(&path).unwrap_err().contains("holds 0 bytes"));
        fs::remove_file(&path).unwrap();
        assert!(entry.check_file(&path).is_err());
    }

    #[test]
    fn damaged_state_is_set_aside_not_trusted() {
        let (_d, ws, config) = setup();
        let path = ws.sync_state_file("http://a");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"{ truncated").unwrap();
        let file = StateFile::load(&ws, "http://a", &config, false).unwrap();
        assert!(file.state.tables.is_empty());
        assert!(file.notice.unwrap().contains("damaged"));
        assert_eq!(
            fs::read(path.with_extension("json.damaged")).unwrap(),
            b"{ truncated"
        );
    }

    #[test]
    fn the_old_global_state_is_not_taken_as_this_workspaces() {
        let (_d, ws, config) = setup();
        fs::write(ws.parquet_file("t"), b"PAR1 t PAR1").unwrap();
        let legacy = serde_json::json!({
            "tables": {"t": {"hash": md5_file(&ws.parquet_file("t")).unwrap(), "rows": 1, "size_bytes": 11}},
            "last_sync": "2026-01-01T00:00:00+00:00"
        });
        fs::write(config.join("sync_state.json"), legacy.to_string()).unwrap();
        let file = StateFile::load(&ws, "http://a", &config, false).unwrap();
        assert!(file.state.tables.is_empty() && file.notice.is_none());
        assert!(file.is_new());
    }
}
