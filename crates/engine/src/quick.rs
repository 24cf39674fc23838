//! The hook's no-op without DuckDB.
//!
//! Most SessionStart hooks find nothing to do, and half of their time went
//! to starting `duckdb` and opening a database with a view per table. After
//! a full sync into a database file, `da` records a stamp: the size and
//! modification time of the database (and its WAL), of the state file and
//! of every synced file. The next sync may skip DuckDB only when the
//! manifest asks for nothing (every table unchanged, none removed) and every
//! one of those is exactly as stamped: a dropped view or a replaced database
//! changes the database file or its WAL, a touched or truncated parquet its
//! file, a sync from elsewhere (a notebook) the state. Anything else, or
//! any doubt, takes the full path. The rules are written as in any sync.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;
use crate::config::Settings;
use crate::error::Result;
use crate::http::{ServerClient, Timeouts};
use crate::layout::Workspace;
use crate::lock;
use crate::plan::{self, Scope, Status};
use crate::state::{read_json, write_atomic, StateFile};
use crate::sync::{
    described, fetch_manifest, local_copy, local_copy_present, skip_note, subscription_notices,
    write_rules, Action, SyncReport,
};

/// A file's size and modification time (ns), or `None` when it is absent.
type FileStamp = Option<(u64, u128)>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ViewsStamp {
    database: PathBuf,
    database_file: FileStamp,
    wal_file: FileStamp,
    state_file: FileStamp,
    /// Every synced table's file.
    files: BTreeMap<String, FileStamp>,
    /// The remote and server-only tables the full sync saw (it made their
    /// views over `agnes_scan()`): another set needs the full path again.
    #[serde(default)]
    remote: BTreeSet<String>,
    /// Those of them it gave a view over `agnes_scan()`.
    #[serde(default)]
    scan_views: BTreeSet<String>,
}

/// Why the quick path was not taken, or its report.
#[derive(Debug)]
pub enum Quick {
    NoOp(SyncReport),
    FullPath(&'static str),
}

/// Records, after a full sync wrote its views into `database` (and DuckDB
/// closed it), what the next sync compares with; `remote` are the remote and
/// server-only tables it reported, `scan_views` those it made a view for.
pub fn record(
    settings: &Settings,
    database: &Path,
    remote: BTreeSet<String>,
    scan_views: BTreeSet<String>,
) -> Result<()> {
    let workspace = Workspace::new(&settings.workspace);
    let mut stamp = current(settings, &workspace, database)?;
    (stamp.remote, stamp.scan_views) = (remote, scan_views);
    let json = serde_json::to_vec_pretty(&stamp).expect("stamp serializes");
    write_atomic(&workspace.views_stamp_file(&settings.server), &json)
}

/// Forgets the stamp: the next sync takes the full path.
pub fn forget(settings: &Settings) {
    let workspace = Workspace::new(&settings.workspace);
    let _ = fs::remove_file(workspace.views_stamp_file(&settings.server));
}

/// A sync of every table into `database` when it provably has nothing to
/// do (module doc); `FullPath` otherwise. Asks the server for the manifest
/// and the memory bundle, like any sync.
pub fn try_noop(
    settings: &Settings,
    database: &Path,
    timeouts: Timeouts,
    cancel: &Cancel,
) -> Result<Quick> {
    let workspace = Workspace::new(&settings.workspace);
    let stamp_file = workspace.views_stamp_file(&settings.server);
    let Ok(Some(stamp)) = read_json::<ViewsStamp>(&stamp_file) else {
        return Ok(Quick::FullPath("no stamp of a full sync"));
    };
    if stamp.database != database {
        return Ok(Quick::FullPath("another database"));
    }
    let mut now = current(settings, &workspace, database)?;
    (now.remote, now.scan_views) = (stamp.remote.clone(), stamp.scan_views.clone());
    if now != stamp {
        return Ok(Quick::FullPath("files changed since the last full sync"));
    }
    // A sync under way changes what is compared: leave it to the full path.
    let Ok(_lock) = lock::lock(&workspace, Duration::ZERO, cancel) else {
        return Ok(Quick::FullPath("another sync is running"));
    };
    let client = ServerClient::new(settings, timeouts, cancel)?;
    let manifest = fetch_manifest(&client)?;
    let state = StateFile::load(&workspace, &settings.server, &settings.config_dir, true)?;
    if state.notice.is_some() {
        return Ok(Quick::FullPath("the state needs attention"));
    }
    // A single file stamped as the full sync left it is there: not looked
    // up again (1000 tables: 1000 calls to the file system fewer).
    let plan = plan::plan(
        &manifest,
        &state.state,
        &Scope::All,
        false,
        &|id, local| match local.parts {
            None => now.files.get(id).is_some_and(Option::is_some),
            Some(_) => local_copy_present(&workspace, id, local),
        },
    )?;
    if !plan.removed.is_empty() {
        return Ok(Quick::FullPath("tables to remove"));
    }
    let remote: BTreeSet<String> = plan
        .tables
        .iter()
        .filter(|t| matches!(t.status, Status::Remote | Status::ServerOnly))
        .map(|t| t.entry.id.clone())
        .collect();
    if remote != stamp.remote {
        return Ok(Quick::FullPath(
            "remote tables changed: their views are made by the full path",
        ));
    }
    let mut tables = Vec::with_capacity(plan.tables.len());
    for t in &plan.tables {
        let outcome = match t.status {
            Status::Unchanged if stamp.files.contains_key(&t.entry.id) => {
                let mut o = described(t, Action::Unchanged);
                o.view = Some(t.entry.id.clone());
                o
            }
            // As the full path left them: a view over agnes_scan(), or none.
            Status::Remote | Status::ServerOnly if stamp.scan_views.contains(&t.entry.id) => {
                let mut o = described(t, Action::ScanView);
                o.view = Some(t.entry.id.clone());
                o
            }
            Status::Remote => described(t, Action::SkippedRemote),
            // Skipped as the full path skips them; a not-subscribed table
            // synced earlier keeps the view the full path left it.
            Status::ServerOnly | Status::NotSubscribed => {
                let action = match t.status {
                    Status::ServerOnly => Action::SkippedServerOnly,
                    _ => Action::SkippedNotSubscribed,
                };
                let mut o = described(t, action);
                o.note = skip_note(t.status);
                o
            }
            _ => return Ok(Quick::FullPath("tables to download or check")),
        };
        tables.push(outcome);
    }
    let rules = write_rules(&client, &workspace);
    let report = SyncReport {
        server: settings.server.clone(),
        workspace: settings.workspace.clone(),
        tables,
        rules,
        notices: subscription_notices(&manifest, &Scope::All, false),
    };
    Ok(Quick::NoOp(report.redacted(&settings.redactor())))
}

/// The stamp of everything as it is now.
fn current(settings: &Settings, workspace: &Workspace, database: &Path) -> Result<ViewsStamp> {
    let state_path = workspace.sync_state_file(&settings.server);
    let state = read_json::<crate::state::SyncState>(&state_path)
        .ok()
        .flatten()
        .unwrap_or_default();
    let files = state
        .tables
        .iter()
        .filter(|(id, _)| crate::ids::check_table_id(id).is_ok())
        .map(|(id, local)| (id.clone(), copy_stamp(&local_copy(workspace, id, local))))
        .collect();
    let mut wal = database.as_os_str().to_owned();
    wal.push(".wal");
    Ok(ViewsStamp {
        database: database.to_path_buf(),
        database_file: file_stamp(database),
        wal_file: file_stamp(Path::new(&wal)),
        state_file: file_stamp(&state_path),
        files,
        remote: BTreeSet::new(),
        scan_views: BTreeSet::new(),
    })
}

/// A file's stamp; for a partitioned table's folder, that of every part
/// folded into one (the largest time, the total size).
fn copy_stamp(path: &Path) -> FileStamp {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return stamp_of(&meta);
    }
    let mut total = (0u64, 0u128);
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).ok()?.flatten() {
            let p = entry.path();
            match entry.file_type().ok()?.is_dir() {
                true => stack.push(p),
                false => {
                    let (size, time) = file_stamp(&p)?;
                    total = (total.0 + size, total.1.max(time));
                }
            }
        }
    }
    Some(total)
}

fn file_stamp(path: &Path) -> FileStamp {
    stamp_of(&fs::metadata(path).ok()?)
}

fn stamp_of(meta: &fs::Metadata) -> FileStamp {
    let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some((meta.len(), modified.as_nanos()))
}
