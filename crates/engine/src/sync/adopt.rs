//! Adopting a workspace an older client filled (issue 24): the Python `da
//! sync` of 0.29, or upstream's `agnes pull` of 0.84. Both write the files
//! where agnes would (`server/parquet/<name>.parquet`, a partitioned table's
//! parts under `server/parquet/<name>/`) and make a view per table in the
//! workspace's database. agnes takes them over instead of fetching them
//! again:
//!
//! - **Files.** A table agnes has no state for, whose file (or part) is
//!   already in place with the manifest's MD5, is recorded in agnes's state
//!   as it is and not downloaded. It is hashed once, unless upstream's own
//!   record for this workspace (`.claude/agnes/sync_state.json`) gives the
//!   same hash for a file of the size the manifest says that was not written
//!   after the record. The old `da`'s record is one file for every
//!   workspace (`<config dir>/sync_state.json`, CONTRACT.md §3): another
//!   workspace's hash in it proves nothing here, so it is not read; its
//!   files are hashed. A hash that is not an MD5 (0.29's 12-hex version
//!   token, or none) cannot be checked against content: such a table is
//!   downloaded, once. Anything that does not match is downloaded as usual,
//!   and replaces the old file only once verified.
//! - **Views.** A view that agnes did not make but whose definition is
//!   exactly the older client's for that table (the same `read_parquet` of
//!   the same file, or the parts glob with `union_by_name` and
//!   `hive_partitioning`) is remade as agnes's, over the same file. Any other
//!   relation of that name stays the user's: the database side
//!   (`Catalog::older_client_views`) reports only exact matches, and the path
//!   must be the one this workspace's table is at.
//! - **Uploads.** Upstream's ledger of uploaded transcripts
//!   (`.claude/agnes-sessions-uploaded.txt`) counts as sent for a
//!   transcript of the same size that agnes has not sent itself
//!   (`upload/pushed.rs`).
//!
//! The first sync that adopts anything says so in one notice.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf, MAIN_SEPARATOR};
use std::time::SystemTime;

use serde_json::Value;

use crate::catalog::{Catalog, Existing, OlderRead};
use crate::protocol::manifest::{is_md5, PartEntry, TableEntry};
use crate::sync::plan::{Plan, Status};
use crate::sync::report::{Action, TableOutcome};
use crate::workspace::layout::Workspace;
use crate::workspace::state::{md5_file, mtime_ns, PartState, SyncState, TableState};

/// Upstream's per-workspace sync record, relative to the workspace.
const PULL_STATE: [&str; 3] = [".claude", "agnes", "sync_state.json"];
/// Records bigger than this are not read (a real one is a few KiB per table).
const MAX_RECORD: u64 = 64 * 1024 * 1024;

/// What a sync took over from an older client.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Adoption {
    /// Tables whose every file was kept, with their bytes.
    whole: BTreeMap<String, u64>,
    /// Tables of which some parts were kept (the rest is downloaded), with
    /// the bytes kept.
    partial: BTreeMap<String, u64>,
    /// Views remade as agnes's.
    views: usize,
    /// Views that matched but could not be remade, with why.
    view_failures: Vec<String>,
}

impl Adoption {
    /// Whether the state holds entries that are not on disk yet.
    pub fn changed_state(&self) -> bool {
        !self.whole.is_empty() || !self.partial.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        !self.changed_state() && self.views == 0 && self.view_failures.is_empty()
    }

    /// After the downloads: each adopted table's row says so, and a table
    /// of which only some parts were kept is forgotten again when the rest
    /// failed (its folder is as the older client left it, and agnes's state
    /// does not describe it).
    pub fn settle(&self, outcomes: &mut [TableOutcome], state: &mut SyncState) {
        for o in outcomes.iter_mut() {
            if self.whole.contains_key(&o.table_id) && o.action == Action::Unchanged {
                o.note = Some(
                    "adopted: the file an earlier client (da sync, agnes pull) left here has the manifest's MD5; not downloaded"
                        .into(),
                );
            }
            if self.partial.contains_key(&o.table_id) {
                match o.action {
                    Action::Downloaded => {
                        let kept = "the other parts were adopted from an earlier client (their MD5 matched)";
                        o.note = Some(match o.note.take() {
                            Some(n) => format!("{n}; {kept}"),
                            None => kept.into(),
                        });
                    }
                    Action::Failed => {
                        state.tables.remove(&o.table_id);
                    }
                    _ => {}
                }
            }
        }
    }

    /// The one notice of a sync that adopted anything.
    pub fn notice(&self, dry_run: bool) -> Option<String> {
        let bytes: u64 = self.whole.values().chain(self.partial.values()).sum();
        let mut parts = Vec::new();
        if !self.whole.is_empty() || !self.partial.is_empty() {
            let verb = match dry_run {
                true => "would adopt",
                false => "adopted",
            };
            let mut text = format!(
                "{verb} {} table(s), {bytes} bytes, that an earlier client (da sync, agnes pull) left in this workspace: \
                 their MD5 matched the manifest, so they were not downloaded",
                self.whole.len()
            );
            if !self.partial.is_empty() {
                text += &format!(
                    " (and some parts of {} more, whose other parts were downloaded)",
                    self.partial.len()
                );
            }
            parts.push(text);
        }
        if self.views > 0 {
            parts.push(format!(
                "{} view(s) that client made over them are agnes's now",
                self.views
            ));
        }
        if !self.view_failures.is_empty() {
            parts.push(format!(
                "views not adopted: {}",
                crate::protocol::ids::truncate(&self.view_failures.join("; "), 400)
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Upstream's record of what it synced into this workspace, and when.
#[derive(Debug, Default)]
struct PullRecord {
    /// By table name: the hash it verified, the size it recorded, and its
    /// parts' hashes.
    tables: HashMap<String, Recorded>,
    /// When the record was written: a file modified later is not the one
    /// recorded.
    written: Option<SystemTime>,
}

#[derive(Debug, Default)]
struct Recorded {
    hash: String,
    size_bytes: Option<u64>,
    parts: HashMap<String, String>,
}

impl PullRecord {
    /// Reads the record leniently: anything unexpected is no record.
    fn load(workspace: &Workspace) -> PullRecord {
        let path: PathBuf = PULL_STATE
            .iter()
            .fold(workspace.root().into(), |p, s| p.join(s));
        let Ok(meta) = fs::metadata(&path) else {
            return PullRecord::default();
        };
        if !meta.is_file() || meta.len() > MAX_RECORD {
            return PullRecord::default();
        }
        let Some(tables) = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v.get("tables").and_then(Value::as_object).cloned())
        else {
            return PullRecord::default();
        };
        let tables = tables
            .into_iter()
            .filter_map(|(name, entry)| {
                let hash = entry.get("hash")?.as_str()?.to_string();
                let parts = entry
                    .get("parts")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .filter_map(|(p, h)| Some((p.clone(), h.as_str()?.to_string())))
                            .collect()
                    })
                    .unwrap_or_default();
                let size_bytes = entry.get("size_bytes").and_then(Value::as_u64);
                Some((
                    name,
                    Recorded {
                        hash,
                        size_bytes,
                        parts,
                    },
                ))
            })
            .collect();
        PullRecord {
            tables,
            written: meta.modified().ok(),
        }
    }

    /// Whether the record vouches for `meta`'s file having `hash`: the same
    /// hash was recorded for it, and the file was not written after the record.
    fn vouches(&self, recorded_hash: Option<&str>, hash: &str, meta: &fs::Metadata) -> bool {
        let (Some(written), Ok(modified)) = (self.written, meta.modified()) else {
            return false;
        };
        recorded_hash == Some(hash) && modified <= written
    }
}

/// Looks, for every table the plan would download for the first time
/// (`New`: agnes has no state for it), for an older client's copy already
/// in place, and takes over what matches the manifest: such a table is
/// `Unchanged`, with its state entry made from the files as they are. A
/// partitioned table of which only some parts match is `Changed`, with
/// those parts in its state, so only the others are fetched.
pub fn adopt_files(plan: &mut Plan, state: &mut SyncState, workspace: &Workspace) -> Adoption {
    let mut adoption = Adoption::default();
    let candidates = plan
        .tables
        .iter()
        .filter(|t| t.status == Status::New)
        .any(|t| match &t.entry.parts {
            None => workspace.parquet_file(&t.entry.id).exists(),
            Some(_) => workspace.table_dir(&t.entry.id).exists(),
        });
    if !candidates {
        return adoption;
    }
    let record = PullRecord::load(workspace);
    for t in plan.tables.iter_mut().filter(|t| t.status == Status::New) {
        let entry = &t.entry;
        if state.tables.contains_key(&entry.id) {
            continue;
        }
        let found = match &entry.parts {
            None => adopt_file(entry, workspace, &record).map(|s| (s, true)),
            Some(parts) => adopt_parts(entry, parts, workspace, &record),
        };
        let Some((mut local, whole)) = found else {
            continue;
        };
        // As a download would record it (plan.rs: what leaves the
        // subscriptions goes, what was taken outside them stays).
        local.outside_subscriptions = !t.subscribed;
        let bytes = match &local.parts {
            Some(parts) => parts.values().map(|p| p.size_bytes).sum(),
            None => local.size_bytes,
        };
        state.tables.insert(entry.id.clone(), local);
        match whole {
            true => {
                t.status = Status::Unchanged;
                adoption.whole.insert(entry.id.clone(), bytes);
            }
            false => {
                t.status = Status::Changed;
                adoption.partial.insert(entry.id.clone(), bytes);
            }
        }
    }
    adoption
}

/// A single-file table's state, when the file in place is the manifest's.
fn adopt_file(
    entry: &TableEntry,
    workspace: &Workspace,
    record: &PullRecord,
) -> Option<TableState> {
    if !is_md5(&entry.hash) {
        return None;
    }
    let file = workspace.parquet_file(&entry.id);
    let recorded = record.tables.get(&entry.id);
    let meta = matching_file(
        &file,
        &entry.hash,
        entry.size_bytes,
        record,
        recorded.map(|r| r.hash.as_str()),
        // Upstream records the manifest's size: it must be the file's too.
        recorded.is_some_and(|r| r.size_bytes.is_none_or(|s| s == entry.size_bytes)),
    )?;
    Some(TableState {
        hash: entry.hash.clone(),
        rows: entry.rows,
        size_bytes: meta.len(),
        mtime_ns: mtime_ns(&meta),
        ..Default::default()
    })
}

/// A partitioned table's state from the parts in place that match the
/// manifest, and whether that is the whole table: every part, and no other
/// parquet file in its folder (the view reads every one there).
fn adopt_parts(
    entry: &TableEntry,
    parts: &[PartEntry],
    workspace: &Workspace,
    record: &PullRecord,
) -> Option<(TableState, bool)> {
    let dir = workspace.table_dir(&entry.id);
    if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
        return None;
    }
    let recorded = record.tables.get(&entry.id);
    let mut kept = BTreeMap::new();
    for part in parts.iter().filter(|p| is_md5(&p.hash)) {
        let file = dir.join(&part.path);
        let recorded_hash = recorded
            .and_then(|r| r.parts.get(&part.path))
            .map(String::as_str);
        if let Some(meta) = matching_file(
            &file,
            &part.hash,
            part.size_bytes,
            record,
            recorded_hash,
            true,
        ) {
            kept.insert(
                part.path.clone(),
                PartState {
                    hash: part.hash.clone(),
                    size_bytes: meta.len(),
                },
            );
        }
    }
    if kept.is_empty() {
        return None;
    }
    let listed: HashSet<&str> = parts.iter().map(|p| p.path.as_str()).collect();
    let whole = kept.len() == parts.len()
        && parquet_files(&dir)
            .iter()
            .all(|p| listed.contains(p.as_str()));
    let local = TableState {
        // A partly kept table is not the manifest's yet: it plans as changed.
        hash: match whole {
            true => entry.hash.clone(),
            false => String::new(),
        },
        rows: entry.rows,
        size_bytes: kept.values().map(|p| p.size_bytes).sum(),
        parts: Some(kept),
        ..Default::default()
    };
    Some((local, whole))
}

/// The metadata of `file` when it is a regular file of `size` bytes (when
/// the manifest gives one) with MD5 `hash`: vouched for by upstream's record
/// (`trusted` and `recorded_hash`), else read. `None` for anything else,
/// including a file that changed while it was read.
fn matching_file(
    file: &Path,
    hash: &str,
    size: u64,
    record: &PullRecord,
    recorded_hash: Option<&str>,
    trusted: bool,
) -> Option<fs::Metadata> {
    // Regular files only: a link could lead anywhere, a pipe would block.
    let meta = fs::symlink_metadata(file).ok().filter(|m| m.is_file())?;
    if size > 0 && meta.len() != size {
        return None;
    }
    if trusted && size > 0 && record.vouches(recorded_hash, hash, &meta) {
        return Some(meta);
    }
    if md5_file(file).ok()? != hash {
        return None;
    }
    let after = fs::symlink_metadata(file).ok()?;
    (after.len() == meta.len() && mtime_ns(&after) == mtime_ns(&meta)).then_some(after)
}

/// Every `*.parquet` file under `dir`, relative to it with `/` between
/// folders; links are listed, never followed.
fn parquet_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![(dir.to_path_buf(), String::new())];
    while let Some((folder, prefix)) = todo.pop() {
        for entry in fs::read_dir(&folder).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let rel = match prefix.is_empty() {
                true => name.clone(),
                false => format!("{prefix}/{name}"),
            };
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => todo.push((entry.path(), rel)),
                _ if name.ends_with(".parquet") => out.push(rel),
                _ => {}
            }
        }
    }
    out
}

/// Remakes as agnes's the older client's views over tables this workspace
/// now holds (module doc), and returns the relations as they are then. Asks
/// the database for view definitions only when a synced table has a view
/// agnes did not make.
pub fn adopt_views(
    catalog: &dyn Catalog,
    relations: Result<HashMap<String, Existing>, String>,
    outcomes: &[TableOutcome],
    workspace: &Workspace,
    state: &SyncState,
    adoption: &mut Adoption,
) -> Result<HashMap<String, Existing>, String> {
    let mut relations = relations?;
    let clashing: Vec<&str> = outcomes
        .iter()
        .map(|o| o.table_id.as_str())
        .filter(|id| state.tables.contains_key(*id))
        .filter(|id| {
            matches!(relations.get(&id.to_lowercase()),
                Some(Existing::UserRelation { kind }) if kind == "view")
        })
        .collect();
    if clashing.is_empty() {
        return Ok(relations);
    }
    let older = match catalog.older_client_views() {
        Ok(older) => older,
        Err(e) => {
            adoption
                .view_failures
                .push(format!("view definitions not read: {e}"));
            return Ok(relations);
        }
    };
    for id in clashing {
        let Some(local) = state.tables.get(id) else {
            continue;
        };
        let copy = crate::workspace::state::local_copy(workspace, id, local);
        let exact = older
            .iter()
            .any(|v| v.name == id && reads_copy(&v.reads, &copy, local.parts.is_some()));
        if !exact {
            continue;
        }
        match catalog.create_view(id, &copy) {
            Ok(()) => {
                adoption.views += 1;
                relations.insert(
                    id.to_lowercase(),
                    Existing::AgnesView {
                        parquet: copy.to_string_lossy().to_string(),
                    },
                );
            }
            Err(e) => adoption.view_failures.push(format!("\"{id}\": {e}")),
        }
    }
    Ok(relations)
}

/// Whether an older client's view reads exactly this table's copy: the
/// file, or every parquet under the parts folder, by the path agnes uses or
/// by its resolved form (both older clients write resolved paths).
fn reads_copy(reads: &OlderRead, copy: &Path, partitioned: bool) -> bool {
    let mut forms = vec![copy.to_string_lossy().to_string()];
    if let Ok(real) = fs::canonicalize(copy) {
        forms.push(real.to_string_lossy().to_string());
    }
    match (reads, partitioned) {
        (OlderRead::File(path), false) => forms.iter().any(|f| f == path),
        (OlderRead::PartsGlob(glob), true) => forms.iter().any(|f| {
            [
                format!("{f}/**/*.parquet"),
                format!("{f}{MAIN_SEPARATOR}**{MAIN_SEPARATOR}*.parquet"),
            ]
            .iter()
            .any(|g| g == glob)
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::md5_hex;
    use crate::protocol::manifest;
    use crate::sync::plan::{plan, Scope};
    use std::fs::File;
    use std::sync::Mutex;
    use std::time::Duration;

    struct Ws {
        _dir: tempfile::TempDir,
        ws: Workspace,
    }

    fn workspace() -> Ws {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path().join("ws"));
        fs::create_dir_all(ws.parquet_dir()).unwrap();
        Ws { _dir: dir, ws }
    }

    fn put(path: &Path, bytes: &[u8]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    fn age(path: &Path, secs: u64) {
        let when = SystemTime::now() - Duration::from_secs(secs);
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }

    fn planned(body: serde_json::Value, state: &SyncState) -> Plan {
        let m = manifest::parse(body.to_string().as_bytes()).unwrap();
        plan(&m, state, &Scope::All, false, &|_, _| false).unwrap()
    }

    fn statuses(p: &Plan) -> Vec<(&str, &str)> {
        p.tables
            .iter()
            .map(|t| (t.entry.id.as_str(), t.status.as_str()))
            .collect()
    }

    #[test]
    fn files_with_the_manifests_md5_are_kept_anything_else_is_downloaded() {
        let w = workspace();
        let same = b"PAR1 same PAR1".as_slice();
        put(&w.ws.parquet_file("same"), same);
        put(&w.ws.parquet_file("stale"), b"PAR1 old! PAR1");
        put(&w.ws.parquet_file("token"), b"PAR1 tok PAR1");
        put(&w.ws.parquet_file("nohash"), b"PAR1 no PAR1");
        let body = serde_json::json!({"tables": {
            "same": {"hash": md5_hex(same), "size_bytes": same.len(), "rows": 3},
            "stale": {"hash": md5_hex(b"PAR1 new! PAR1"), "size_bytes": 14},
            // 0.29's version token cannot be checked against the content.
            "token": {"hash": "1a2b3c4d5e6f", "size_bytes": 13},
            "nohash": {"hash": ""},
            "absent": {"hash": md5_hex(b"x")},
        }});
        let mut state = SyncState::default();
        let mut p = planned(body, &state);
        let adoption = adopt_files(&mut p, &mut state, &w.ws);
        assert_eq!(
            statuses(&p),
            [
                ("absent", "new"),
                ("nohash", "new"),
                ("same", "unchanged"),
                ("stale", "new"),
                ("token", "new")
            ]
        );
        assert_eq!(state.tables.keys().collect::<Vec<_>>(), ["same"]);
        let kept = &state.tables["same"];
        assert_eq!(
            (kept.hash.as_str(), kept.rows, kept.size_bytes),
            (md5_hex(same).as_str(), 3, 14)
        );
        // The time is recorded, so a later change of the file is noticed.
        assert_eq!(kept.check_file(&w.ws.parquet_file("same")), Ok(()));
        assert!(kept.mtime_ns.is_some());
        assert!(adoption.changed_state());
        let notice = adoption.notice(false).unwrap();
        assert!(
            notice.starts_with("adopted 1 table(s), 14 bytes"),
            "{notice}"
        );
        // Files are left as they are.
        assert_eq!(
            fs::read(w.ws.parquet_file("stale")).unwrap(),
            b"PAR1 old! PAR1"
        );
    }

    #[test]
    fn a_table_agnes_already_holds_or_a_link_is_never_adopted() {
        let w = workspace();
        let bytes = b"PAR1 x PAR1".as_slice();
        put(&w.ws.root().join("elsewhere.parquet"), bytes);
        #[cfg(unix)]
        std::os::unix::fs::symlink(
            w.ws.root().join("elsewhere.parquet"),
            w.ws.parquet_file("link"),
        )
        .unwrap();
        put(&w.ws.parquet_file("mine"), bytes);
        let body = serde_json::json!({"tables": {
            "link": {"hash": md5_hex(bytes)},
            "mine": {"hash": md5_hex(bytes)},
        }});
        let mut state = SyncState::default();
        state.tables.insert(
            "mine".into(),
            TableState {
                hash: "0123456789abcdef0123456789abcdef".into(),
                ..Default::default()
            },
        );
        let mut p = planned(body, &state);
        let adoption = adopt_files(&mut p, &mut state, &w.ws);
        assert!(adoption.is_empty());
        assert_eq!(
            state.tables["mine"].hash,
            "0123456789abcdef0123456789abcdef"
        );
        assert!(!state.tables.contains_key("link"));
    }

    #[test]
    fn upstreams_record_is_trusted_for_files_not_written_after_it() {
        let w = workspace();
        // The record vouches for hash H; the file is not read, so even
        // bytes that do not hash to H are taken (proof nothing was read).
        let claimed = md5_hex(b"what the server has");
        put(&w.ws.parquet_file("orders"), b"PAR1 19 bytes! PAR1");
        put(&w.ws.parquet_file("touched"), b"PAR1 19 bytes! PAR1");
        age(&w.ws.parquet_file("orders"), 60);
        let record = serde_json::json!({"snapshot_blocked": [], "tables": {
            "orders": {"hash": claimed, "rows": 5, "size_bytes": 19},
            "touched": {"hash": claimed, "rows": 5, "size_bytes": 19},
        }, "last_sync": "2026-12-03T09:34:50.135032+00:00"});
        put(
            &w.ws.root().join(".claude/agnes/sync_state.json"),
            record.to_string().as_bytes(),
        );
        // Written after the record: read, and it does not match.
        let later = SystemTime::now() + Duration::from_secs(60);
        File::options()
            .write(true)
            .open(w.ws.parquet_file("touched"))
            .unwrap()
            .set_modified(later)
            .unwrap();
        let body = serde_json::json!({"tables": {
            "orders": {"hash": claimed, "size_bytes": 19},
            "touched": {"hash": claimed, "size_bytes": 19},
        }});
        let mut state = SyncState::default();
        let mut p = planned(body, &state);
        adopt_files(&mut p, &mut state, &w.ws);
        assert_eq!(statuses(&p), [("orders", "unchanged"), ("touched", "new")]);
    }

    #[test]
    fn parts_are_kept_one_by_one_and_the_table_only_when_complete() {
        let w = workspace();
        let (a, b) = (b"PAR1 a PAR1".as_slice(), b"PAR1 b PAR1".as_slice());
        let dir = w.ws.table_dir("events");
        put(&dir.join("month=1/data.parquet"), a);
        put(&dir.join("month=2/data.parquet"), b);
        let parts = serde_json::json!([
            {"path": "month=1/data.parquet", "hash": md5_hex(a), "size_bytes": 11},
            {"path": "month=2/data.parquet", "hash": md5_hex(b), "size_bytes": 11},
        ]);
        let body =
            serde_json::json!({"tables": {"events": {"hash": md5_hex(b"rollup"), "parts": parts}}});
        let mut state = SyncState::default();
        let mut p = planned(body.clone(), &state);
        let adoption = adopt_files(&mut p, &mut state, &w.ws);
        assert_eq!(statuses(&p), [("events", "unchanged")]);
        assert_eq!(state.tables["events"].hash, md5_hex(b"rollup"));
        assert_eq!(state.tables["events"].parts.as_ref().unwrap().len(), 2);
        assert!(adoption
            .notice(false)
            .unwrap()
            .contains("adopted 1 table(s), 22 bytes"));

        // A stray parquet in the folder (the view would read it): only the
        // parts are kept, and the table is fetched (into a clean folder).
        put(&dir.join("month=3/data.parquet"), b"PAR1 stray PAR1");
        let mut state = SyncState::default();
        let mut p = planned(body.clone(), &state);
        let adoption = adopt_files(&mut p, &mut state, &w.ws);
        assert_eq!(statuses(&p), [("events", "changed")]);
        assert_eq!(state.tables["events"].hash, "");
        assert!(adoption
            .notice(false)
            .unwrap()
            .contains("adopted 0 table(s), 22 bytes"));
        fs::remove_dir_all(dir.join("month=3")).unwrap();

        // One part differs: the other is kept, the table is changed.
        put(&dir.join("month=2/data.parquet"), b"PAR1 B PAR1");
        let mut state = SyncState::default();
        let mut p = planned(body, &state);
        let adoption = adopt_files(&mut p, &mut state, &w.ws);
        assert_eq!(statuses(&p), [("events", "changed")]);
        let kept = state.tables["events"].parts.clone().unwrap();
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["month=1/data.parquet"]);
        // The rest failed to download: the table is forgotten again.
        let mut outcomes = vec![TableOutcome::new("events", Action::Failed)];
        adoption.settle(&mut outcomes, &mut state);
        assert!(state.tables.is_empty());
    }

    #[derive(Default)]
    struct Fake {
        older: Vec<crate::catalog::OlderView>,
        made: Mutex<Vec<(String, PathBuf)>>,
    }

    impl Catalog for Fake {
        fn relations(&self) -> Result<HashMap<String, Existing>, String> {
            Ok(HashMap::new())
        }
        fn create_view(&self, name: &str, parquet: &Path) -> Result<(), String> {
            self.made
                .lock()
                .unwrap()
                .push((name.into(), parquet.into()));
            Ok(())
        }
        fn older_client_views(&self) -> Result<Vec<crate::catalog::OlderView>, String> {
            Ok(self.older.clone())
        }
        fn drop_view(&self, _: &str) -> Result<(), String> {
            Ok(())
        }
        fn parquet_rows(&self, _: &Path) -> Result<u64, String> {
            Ok(0)
        }
    }

    #[test]
    fn only_an_older_clients_exact_view_over_this_tables_copy_is_adopted() {
        let w = workspace();
        for id in ["orders", "people", "mine", "moved"] {
            put(&w.ws.parquet_file(id), b"PAR1 x PAR1");
        }
        put(
            &w.ws.table_dir("events").join("2026_01.parquet"),
            b"PAR1 e PAR1",
        );
        let real = |p: PathBuf| fs::canonicalize(p).unwrap().to_string_lossy().to_string();
        let view = |name: &str, reads: OlderRead| crate::catalog::OlderView {
            name: name.into(),
            reads,
        };
        let fake = Fake {
            older: vec![
                view("orders", OlderRead::File(real(w.ws.parquet_file("orders")))),
                view(
                    "events",
                    OlderRead::PartsGlob(format!(
                        "{}/**/*.parquet",
                        real(w.ws.table_dir("events"))
                    )),
                ),
                // Another workspace's file, under this table's name.
                view(
                    "moved",
                    OlderRead::File("/old/ws/server/parquet/moved.parquet".into()),
                ),
                // The right file under another name.
                view("People", OlderRead::File(real(w.ws.parquet_file("people")))),
            ],
            ..Default::default()
        };
        let mut state = SyncState::default();
        for id in ["orders", "people", "mine", "moved"] {
            state.tables.insert(id.into(), TableState::default());
        }
        state.tables.insert(
            "events".into(),
            TableState {
                parts: Some(BTreeMap::new()),
                ..Default::default()
            },
        );
        let users = |kind: &str| Existing::UserRelation { kind: kind.into() };
        let relations: HashMap<String, Existing> = [
            ("orders", users("view")),
            ("events", users("view")),
            ("moved", users("view")),
            ("people", users("view")),
            ("mine", users("table")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let outcomes: Vec<TableOutcome> = ["orders", "events", "moved", "people", "mine"]
            .iter()
            .map(|id| TableOutcome::new(id, Action::Unchanged))
            .collect();
        let mut adoption = Adoption::default();
        let after = adopt_views(
            &fake,
            Ok(relations),
            &outcomes,
            &w.ws,
            &state,
            &mut adoption,
        )
        .unwrap();
        let made: Vec<String> = fake
            .made
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        assert_eq!(made, ["orders", "events"]);
        assert!(matches!(after["orders"], Existing::AgnesView { .. }));
        assert!(matches!(after["events"], Existing::AgnesView { .. }));
        for user in ["moved", "people", "mine"] {
            assert!(
                matches!(after[user], Existing::UserRelation { .. }),
                "{user}"
            );
        }
        assert!(adoption.notice(false).unwrap().contains("2 view(s)"));
    }
}
