//! A whole sync: manifest, plan, parallel verified downloads, state, views,
//! removals and rules, reported table by table (CONTRACT.md §4). One failing
//! table never stops the others.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::cancel::Cancel;
use crate::catalog::{Catalog, Existing};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::protocol::bundle as rules;
use crate::protocol::manifest::{self, Manifest, QueryMode};
use crate::secrets::redact::Redactor;
use crate::sync::download::{self, Fetched};
use crate::sync::plan::{self, Plan, PlannedTable, Removal, Scope, Status, Withdrawal};
use crate::transfer::http::{ServerClient, Timeouts};
use crate::workspace::layout::Workspace;
use crate::workspace::lock;
use crate::workspace::state::{StateFile, SyncState, TableState};

/// How a sync runs, beyond where to (`Settings`).
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub scope: Scope,
    pub dry_run: bool,
    /// Downloads at once.
    pub threads: usize,
    pub timeouts: Timeouts,
    /// How long to wait for another sync on the same workspace.
    pub lock_wait: Duration,
    /// Stops the run: downloads in flight are abandoned, what finished is
    /// kept (state and views), nothing else is started.
    pub cancel: Cancel,
    /// Every table the user may read, not only their subscriptions
    /// (0.84 `data_packages` / `direct_tables`).
    pub all_tables: bool,
    /// A view over a remote table refuses to scan more rows than this
    /// whole (scan_views.rs).
    pub scan_max_rows: u64,
    /// At most this many views over `agnes_scan()` are made (or remade)
    /// per sync: each costs a schema request when DuckDB binds it.
    pub scan_views: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            scope: Scope::All,
            all_tables: false,
            dry_run: false,
            threads: 4,
            timeouts: Timeouts::default(),
            lock_wait: Duration::from_secs(30),
            cancel: Cancel::new(),
            scan_max_rows: crate::sync::scan_views::DEFAULT_MAX_ROWS,
            scan_views: crate::sync::scan_views::DEFAULT_VIEWS_PER_SYNC,
        }
    }
}

/// What happened to one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Downloaded,
    Unchanged,
    SkippedRemote,
    /// Listed by the server but never distributed (0.84 `server_only`).
    SkippedServerOnly,
    /// Not among the user's subscriptions (0.84).
    SkippedNotSubscribed,
    /// A remote or server-only table: a view over `agnes_scan()` was made.
    ScanView,
    WouldDownload,
    Failed,
    Removed,
    WouldRemove,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Downloaded => "downloaded",
            Action::Unchanged => "unchanged",
            Action::SkippedRemote => "skipped_remote",
            Action::SkippedServerOnly => "skipped_server_only",
            Action::SkippedNotSubscribed => "skipped_not_subscribed",
            Action::ScanView => "scan_view",
            Action::WouldDownload => "would_download",
            Action::Failed => "failed",
            Action::Removed => "removed",
            Action::WouldRemove => "would_remove",
        }
    }
}

/// One row of `agnes_sync()`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableOutcome {
    pub table_id: String,
    pub action: Action,
    pub rows: Option<u64>,
    pub size_bytes: Option<u64>,
    pub hash: Option<String>,
    /// The view that answers for this table in the calling database.
    pub view: Option<String>,
    /// Why the table failed.
    pub error: Option<String>,
    /// Something worth knowing that is not a failure (a view left to the user).
    pub note: Option<String>,
}

impl TableOutcome {
    pub(crate) fn new(table_id: &str, action: Action) -> TableOutcome {
        TableOutcome {
            table_id: table_id.to_string(),
            action,
            rows: None,
            size_bytes: None,
            hash: None,
            view: None,
            error: None,
            note: None,
        }
    }
}

/// The rules step's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct RulesOutcome {
    /// `written`, `would_write` or `failed`.
    pub action: &'static str,
    /// Files in `.claude/rules/` that the bundle makes.
    pub files: usize,
    /// A failed fetch, or items skipped.
    pub warnings: Vec<String>,
}

/// Everything a sync did.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncReport {
    pub server: String,
    pub workspace: PathBuf,
    pub tables: Vec<TableOutcome>,
    pub rules: RulesOutcome,
    /// Workspace-level notices (state migrated, damaged state set aside).
    pub notices: Vec<String>,
}

impl TableOutcome {
    /// This row as it may be shown (`redact`).
    pub fn redact(&mut self, r: &Redactor) {
        r.apply(&mut self.table_id);
        for text in [
            &mut self.hash,
            &mut self.view,
            &mut self.error,
            &mut self.note,
        ] {
            r.option(text);
        }
    }
}

impl SyncReport {
    pub(crate) fn redacted(mut self, r: &Redactor) -> SyncReport {
        self.tables.iter_mut().for_each(|o| o.redact(r));
        r.all(&mut self.rules.warnings);
        r.all(&mut self.notices);
        self
    }
}

/// Runs a sync into `catalog`. Every text of the report and of an error is
/// redacted (no token, control characters escaped), whatever its source.
pub fn sync(
    settings: &Settings,
    options: &SyncOptions,
    catalog: &dyn Catalog,
    progress: &dyn Progress,
) -> Result<SyncReport> {
    let r = settings.redactor();
    run(settings, options, catalog, progress)
        .map(|report| report.redacted(&r))
        .map_err(|e| e.redacted(&r))
}

fn run(
    settings: &Settings,
    options: &SyncOptions,
    catalog: &dyn Catalog,
    progress: &dyn Progress,
) -> Result<SyncReport> {
    let workspace = Workspace::new(&settings.workspace);
    let client = ServerClient::new(settings, options.timeouts, &options.cancel)?;
    // A dry run writes nothing, not even the lock file.
    let _lock = match options.dry_run {
        true => None,
        false => Some(lock::lock(&workspace, options.lock_wait, &options.cancel)?),
    };
    let manifest = fetch_manifest(&client)?;
    // After the manifest: a server that cannot be reached says so first.
    crate::workspace::servers::refuse_second_server(&workspace, &settings.server)?;
    let mut state = StateFile::load(
        &workspace,
        &settings.server,
        &settings.config_dir,
        options.dry_run,
    )?;
    let mut manifest = manifest;
    let (plan, repairs, mut adoption) = plan_here(
        &mut manifest,
        &mut state.state,
        &workspace,
        &options.scope,
        options.all_tables,
    )?;
    let mut notices: Vec<String> = state.notice.take().into_iter().collect();
    notices.extend(subscription_notices(
        &manifest,
        &options.scope,
        options.all_tables,
    ));
    // The plan holds what is needed of it: a manifest of millions of
    // tables is not kept twice for the rest of the run (issue 13, case 15).
    drop(manifest);

    if options.dry_run {
        let rules = preview_rules(&client);
        notices.extend(adoption.notice(true));
        return Ok(SyncReport {
            server: settings.server.clone(),
            workspace: settings.workspace.clone(),
            tables: dry_run(&plan),
            rules,
            notices,
        });
    }

    let parquet_dir = workspace.parquet_dir();
    fs::create_dir_all(&parquet_dir).map_err(Error::io("create", &parquet_dir))?;
    // Links to previous files left by a killed sync: no longer needed (the
    // stat check catches a file the state does not describe), and no
    // download's leftovers, which the notice counts.
    drop_previous(&parquet_dir);
    let swept = download::sweep_temporaries(&parquet_dir);
    if swept > 0 {
        notices.push(format!(
            "removed {swept} temporary file(s) left by an interrupted sync"
        ));
    }

    let before = state.state.tables.clone();
    let previous = keep_previous(&plan, &workspace);
    let mut outcomes = download_all(
        &client,
        &plan,
        &workspace,
        &mut state,
        options.threads,
        catalog,
        progress,
    );
    for o in outcomes.iter_mut() {
        if let Some(reason) = repairs.get(&o.table_id) {
            let then = match o.action {
                Action::Downloaded => "fetched again",
                _ => "not fetched again yet",
            };
            o.note = Some(format!(
                "the local copy no longer matched what was verified ({reason}); {then}"
            ));
        }
    }
    adoption.settle(&mut outcomes, &mut state.state);
    // A table taken outside the subscriptions that is now among them is
    // theirs from here on: it goes when it leaves them.
    for t in plan.tables.iter().filter(|t| t.subscribed) {
        if let Some(local) = state.state.tables.get_mut(&t.entry.id) {
            local.outside_subscriptions = false;
        }
    }
    let cancelled = options.cancel.is_cancelled();
    // Interrupted: nothing more is removed, but what was downloaded is kept.
    if !cancelled {
        let removed = remove_revoked(&plan.removed, &workspace, &mut state, catalog);
        merge_removals(&mut outcomes, removed);
    }
    // A no-op sync writes nothing: the hook path runs at every session start.
    if state.state.tables != before || state.is_new() || adoption.changed_state() {
        // The downloads reach the disk before the state vouches for them.
        let saved = crate::workspace::durable::batch(&parquet_dir)
            .map_err(Error::io("flush the downloads in", &parquet_dir))
            .and_then(|()| state.save());
        if let Err(e) = saved {
            // The report still comes back, with the failed step on its rows.
            notices.push(state_not_written(
                &e,
                &mut outcomes,
                &previous,
                &before,
                &workspace,
                &mut state,
            ));
        }
    }
    for link in previous.values() {
        let _ = fs::remove_file(link);
    }
    // Looked up once for both kinds of view (3.5 ms with 1000 views).
    let relations = catalog.relations();
    // An older client's own views become agnes's (adopt.rs).
    let relations = crate::sync::adopt::adopt_views(
        catalog,
        relations,
        &outcomes,
        &workspace,
        &state.state,
        &mut adoption,
    );
    notices.extend(adoption.notice(false));
    attach_views(
        &mut outcomes,
        &workspace,
        &state,
        catalog,
        &relations,
        false,
    );
    if cancelled {
        return Err(Error::Interrupted);
    }
    crate::sync::scan_views::attach(
        &mut outcomes,
        &plan,
        catalog,
        &relations,
        &crate::sync::scan_views::Limits {
            max_rows: options.scan_max_rows,
            views: options.scan_views,
            whole_manifest: options.scope == Scope::All,
        },
    );
    let rules = write_rules(&client, &workspace);
    Ok(SyncReport {
        server: settings.server.clone(),
        workspace: settings.workspace.clone(),
        tables: outcomes,
        rules,
        notices,
    })
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

/// The plan of `manifest` against this workspace as it is on disk: ids
/// that clash are refused first (names.rs), and a table whose local copy is
/// gone or no longer the one verified counts as missing. Also returns those
/// damaged copies, each with why, and what an older client left that was
/// taken over into `state` (adopt.rs).
fn plan_here(
    manifest: &mut Manifest,
    state: &mut SyncState,
    workspace: &Workspace,
    scope: &Scope,
    all_tables: bool,
) -> Result<(Plan, HashMap<String, String>, crate::sync::adopt::Adoption)> {
    crate::sync::names::refuse_clashes(manifest, &|id| state.tables.contains_key(id));
    let copies = single_file_copies(workspace, state);
    let mut plan = plan::plan(
        manifest,
        state,
        scope,
        all_tables,
        &|id, local| match local.parts {
            None => copies.intact.contains(id),
            Some(_) => local_copy_present(workspace, id, local),
        },
    )?;
    let adoption = crate::sync::adopt::adopt_files(&mut plan, state, workspace);
    Ok((plan, copies.damaged, adoption))
}

/// The synced tables kept as one file, as they are on disk.
#[derive(Default)]
struct Copies {
    /// There, and the file verified (its size and modification time).
    intact: HashSet<String>,
    /// There but no longer the file verified (truncated, emptied,
    /// rewritten), with why: planned as missing and fetched again (issue
    /// 13, case 11). A copy that is gone is in neither.
    damaged: HashMap<String, String>,
}

/// One stat per table, so that a no-op sync of 1000 tables stays cheap.
fn single_file_copies(workspace: &Workspace, state: &SyncState) -> Copies {
    let mut copies = Copies::default();
    for (id, local) in &state.tables {
        if local.parts.is_some() || crate::protocol::ids::check_table_id(id).is_err() {
            continue;
        }
        let file = workspace.parquet_file(id);
        let checked = match fs::metadata(&file) {
            Ok(meta) => local.check_meta(&file, &meta),
            // A link to nothing is there, and damaged; nothing is just gone.
            Err(e) if fs::symlink_metadata(&file).is_ok() => {
                Err(format!("{}: {e}", file.display()))
            }
            Err(_) => continue,
        };
        match checked {
            Ok(()) => copies.intact.insert(id.clone()),
            Err(why) => copies.damaged.insert(id.clone(), why).is_none(),
        };
    }
    copies
}

/// Names `.agnes-previous-<id>.keep`, the links of `keep_previous`: hidden,
/// never matched by `*.parquet`, and not taken for a download's leftovers.
const PREVIOUS: &str = "previous-";
const KEEP_SUFFIX: &str = ".keep";

/// Hard links to the files this sync is about to replace, beside them
/// (`.agnes-previous-<id>.keep`, removed at the end of the sync, or at
/// the start of the next one after a kill). A link costs no
/// space, so on a full disk, where the state cannot be written after the
/// new files were put in place, the old files go back and files and state
/// agree (issue 13, case 17). Where links are not supported there is none,
/// and the next sync's stat check notices the file the state does not describe.
fn keep_previous(plan: &Plan, workspace: &Workspace) -> HashMap<String, PathBuf> {
    plan.tables
        .iter()
        .filter(|t| t.status.needs_download())
        .filter_map(|t| {
            let id = &t.entry.id;
            let target = workspace.parquet_file(id);
            let link = workspace.parquet_dir().join(format!(
                "{}{PREVIOUS}{id}{KEEP_SUFFIX}",
                download::TEMP_PREFIX
            ));
            fs::hard_link(&target, &link)
                .ok()
                .map(|_| (id.clone(), link))
        })
        .collect()
}

/// Removes the `keep_previous` links a killed sync left behind.
fn drop_previous(dir: &Path) {
    let prefix = format!("{}{PREVIOUS}", download::TEMP_PREFIX);
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(KEEP_SUFFIX) {
            let _ = fs::remove_file(entry.path());
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

/// The state could not be written (a full disk): every table downloaded by
/// this sync gets its previous file back (or loses the new one, when it had
/// none), so that the state on disk still describes the files, and its row
/// says what failed. Returns the notice for the report.
fn state_not_written(
    e: &Error,
    outcomes: &mut [TableOutcome],
    previous: &HashMap<String, PathBuf>,
    before: &std::collections::BTreeMap<String, TableState>,
    workspace: &Workspace,
    state: &mut StateFile,
) -> String {
    for o in outcomes
        .iter_mut()
        .filter(|o| o.action == Action::Downloaded)
    {
        let target = workspace.parquet_file(&o.table_id);
        let undone = match (previous.get(&o.table_id), before.get(&o.table_id)) {
            // Without state, a previous file is an older client's (adopt.rs).
            (Some(link), _) => fs::rename(link, &target)
                .map(|_| "put the previous file back")
                .map_err(|e| format!("the previous file could not be put back ({e})")),
            (None, None) => fs::remove_file(&target)
                .map(|_| "removed the new file")
                .map_err(|e| format!("the new file could not be removed ({e})")),
            (None, Some(_)) => Err("the previous file could not be kept".to_string()),
        };
        let undone = undone.map(String::from).unwrap_or_else(|why| {
            format!(
                "{why}; the next sync sees the file differs from the state and fetches it again"
            )
        });
        o.action = Action::Failed;
        o.error = Some(format!(
            "downloaded and verified, but the sync state could not be saved ({e}); {undone}"
        ));
        match before.get(&o.table_id) {
            Some(old) => {
                (o.rows, o.size_bytes) = (Some(old.rows), Some(old.size_bytes));
                o.hash = (!old.hash.is_empty()).then(|| old.hash.clone());
                state.state.tables.insert(o.table_id.clone(), old.clone());
            }
            None => {
                (o.rows, o.size_bytes, o.hash) = (None, None, None);
                state.state.tables.remove(&o.table_id);
            }
        }
    }
    format!("the sync state was not saved: {e}")
}

/// What the user should know about their subscriptions (CONTRACT.md
/// §7.6): a server that lists tables while they subscribe to none (an
/// admin without data packages) syncs nothing, as upstream's client does,
/// and says so once rather than in silence.
pub(crate) fn subscription_notices(
    manifest: &Manifest,
    scope: &Scope,
    all_tables: bool,
) -> Vec<String> {
    let (Some(subscribed), Scope::All) = (&manifest.subscriptions, scope) else {
        return Vec::new();
    };
    let mut notices = Vec::new();
    let listed = manifest.ids();
    let absent: Vec<&str> = subscribed
        .iter()
        .filter(|id| !listed.contains(id.as_str()))
        .map(String::as_str)
        .collect();
    if !absent.is_empty() {
        notices.push(format!(
            "subscribed table(s) not in the manifest's table list, so not synced: {}",
            crate::protocol::ids::truncate(&absent.join(", "), 400)
        ));
    }
    let downloadable = manifest
        .tables
        .iter()
        .filter(|t| t.invalid.is_none() && !t.server_only && t.query_mode != QueryMode::Remote)
        .count();
    if !all_tables
        && downloadable > 0
        && !manifest.tables.iter().any(|t| subscribed.contains(&t.id))
    {
        notices.push(format!(
            "you subscribe to no table (the server lists no data package or direct table for you), \
             so this sync takes none of the {downloadable} table(s) it lets you read, as upstream's \
             client does; `da sync --all-tables` or agnes_sync(all_tables := true) takes every table"
        ));
    }
    notices
}

/// Fetches and parses the manifest; any failure stops the run.
pub fn fetch_manifest(client: &ServerClient) -> Result<Manifest> {
    let body = client.get_json("/api/sync/manifest", "manifest fetch")?;
    manifest::parse(&body).map_err(|reason| Error::BadManifest {
        url: client.url("/api/sync/manifest"),
        reason,
    })
}

fn dry_run(plan: &Plan) -> Vec<TableOutcome> {
    let mut out: Vec<TableOutcome> = plan
        .tables
        .iter()
        .map(|t| {
            let action = match t.status {
                Status::Remote => Action::SkippedRemote,
                Status::ServerOnly => Action::SkippedServerOnly,
                Status::NotSubscribed => Action::SkippedNotSubscribed,
                Status::Invalid => Action::Failed,
                Status::Unchanged => Action::Unchanged,
                _ => Action::WouldDownload,
            };
            let mut o = described(t, action);
            o.error = t.entry.invalid.clone();
            o.note = skip_note(t.status);
            o
        })
        .collect();
    let removed = plan
        .removed
        .iter()
        .map(|Removal { id, why }| {
            let mut o = TableOutcome::new(id, Action::WouldRemove);
            o.note = removal_note(*why, false);
            o
        })
        .collect();
    merge_removals(&mut out, removed);
    out
}

/// What a table that is not synced is for.
pub(crate) fn skip_note(status: Status) -> Option<String> {
    match status {
        Status::ServerOnly => Some(
            "server-only: the server does not distribute it; query it on the server".into(),
        ),
        Status::NotSubscribed => Some(
            "not among your subscriptions (data packages, direct tables); all_tables := true downloads it".into(),
        ),
        _ => None,
    }
}

/// An outcome carrying the manifest's figures for the table.
pub(crate) fn described(t: &PlannedTable, action: Action) -> TableOutcome {
    let mut o = TableOutcome::new(&t.entry.id, action);
    if t.entry.query_mode != QueryMode::Remote {
        o.rows = Some(t.entry.rows);
        o.size_bytes = Some(t.entry.size_bytes);
    }
    o.hash = (!t.entry.hash.is_empty()).then(|| t.entry.hash.clone());
    o
}

/// Downloads every table that needs it, `threads` at a time, and records the
/// verified ones in the state.
fn download_all(
    client: &ServerClient,
    plan: &Plan,
    workspace: &Workspace,
    state: &mut StateFile,
    threads: usize,
    catalog: &dyn Catalog,
    progress: &dyn Progress,
) -> Vec<TableOutcome> {
    let todo: Vec<&PlannedTable> = plan
        .tables
        .iter()
        .filter(|t| t.status.needs_download())
        .collect();
    let local = &state.state.tables;
    let results: Mutex<HashMap<String, Result<Fetched, String>>> = Mutex::new(HashMap::new());
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, 64).min(todo.len()) {
            scope.spawn(|| {
                while let Some(t) = todo.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if client.cancel().is_cancelled() {
                        break;
                    }
                    let result = match &t.entry.parts {
                        Some(parts) => download::fetch_parts(
                            client,
                            &t.entry,
                            parts,
                            local.get(&t.entry.id),
                            workspace,
                            catalog,
                            progress,
                        ),
                        None => download::fetch(
                            client,
                            &t.entry,
                            t.if_none_match.as_deref(),
                            &workspace.parquet_file(&t.entry.id),
                            catalog,
                            progress,
                        ),
                    };
                    progress.finish(&t.entry.id, result.is_ok());
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(t.entry.id.clone(), result);
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());

    plan.tables
        .iter()
        .map(|t| {
            let id = &t.entry.id;
            match (t.status, results.remove(id)) {
                (Status::Remote, _) => described(t, Action::SkippedRemote),
                (Status::ServerOnly, _) => {
                    let mut o = described(t, Action::SkippedServerOnly);
                    o.note = skip_note(t.status);
                    o
                }
                (Status::NotSubscribed, _) => {
                    let mut o = described(t, Action::SkippedNotSubscribed);
                    o.note = match state.state.tables.contains_key(id) {
                        true => Some(
                            "taken earlier outside your subscriptions (all_tables, or by name): \
                             kept as it is, not updated; all_tables := true updates it"
                                .into(),
                        ),
                        false => skip_note(t.status),
                    };
                    o
                }
                (Status::Invalid, _) => {
                    let mut o = TableOutcome::new(id, Action::Failed);
                    o.error = t.entry.invalid.clone();
                    o
                }
                (Status::Unchanged, _) => described(t, Action::Unchanged),
                // Its download never started: the sync was interrupted.
                (_, None) => {
                    let mut o = described(t, Action::Failed);
                    o.error = Some(crate::error::Error::Interrupted.to_string());
                    o
                }
                // A 304 keeps a copy only where there is one: without a
                // local file (no If-None-Match was sent) it is no answer.
                (_, Some(Ok(Fetched::NotModified)))
                    if t.if_none_match.is_none() || !workspace.parquet_file(id).is_file() =>
                {
                    let mut o = described(t, Action::Failed);
                    o.error = Some(
                        "the server answered 304 Not Modified, but this workspace has no copy to keep \
                         (none was asked for); nothing downloaded"
                            .into(),
                    );
                    o
                }
                (_, Some(Ok(Fetched::NotModified))) => {
                    let mut o = described(t, Action::Unchanged);
                    o.note = Some("the server answered 304 Not Modified".into());
                    o
                }
                (
                    _,
                    Some(Ok(Fetched::Downloaded {
                        bytes,
                        etag,
                        footer_rows,
                        note,
                    })),
                ) => {
                    let rows = footer_rows.unwrap_or(t.entry.rows);
                    let mtime_ns = fs::metadata(workspace.parquet_file(id))
                        .ok()
                        .and_then(|m| crate::workspace::state::mtime_ns(&m));
                    state.state.tables.insert(
                        id.clone(),
                        TableState {
                            hash: t.entry.hash.clone(),
                            rows,
                            size_bytes: bytes,
                            etag,
                            parts: None,
                            mtime_ns,
                            outside_subscriptions: !t.subscribed,
                        },
                    );
                    // A table that was partitioned before: its parts go.
                    let folder = workspace.table_dir(id);
                    if fs::symlink_metadata(&folder).is_ok_and(|m| m.is_dir()) {
                        let _ = fs::remove_dir_all(&folder);
                    }
                    let mut o = described(t, Action::Downloaded);
                    (o.rows, o.size_bytes, o.note) = (Some(rows), Some(bytes), note);
                    o
                }
                (
                    _,
                    Some(Ok(Fetched::Parts {
                        bytes,
                        parts,
                        fetched,
                        footer_rows,
                    })),
                ) => {
                    let rows = footer_rows.unwrap_or(t.entry.rows);
                    let total = parts.len();
                    state.state.tables.insert(
                        id.clone(),
                        TableState {
                            hash: t.entry.hash.clone(),
                            rows,
                            size_bytes: bytes,
                            etag: None,
                            parts: Some(parts),
                            // Parts are checked by the folder's contents.
                            mtime_ns: None,
                            outside_subscriptions: !t.subscribed,
                        },
                    );
                    // A table that was one file before: the file goes.
                    let _ = fs::remove_file(workspace.parquet_file(id));
                    let mut o = described(t, Action::Downloaded);
                    (o.rows, o.size_bytes) = (Some(rows), Some(bytes));
                    o.note = Some(format!(
                        "partitioned: {fetched} of {total} part(s) downloaded, the others unchanged"
                    ));
                    o
                }
                (_, Some(Err(error))) => {
                    let mut o = described(t, Action::Failed);
                    o.error = Some(error);
                    o
                }
            }
        })
        .collect()
}

/// Removes what agnes wrote for tables that left the manifest, the user's
/// subscriptions, or distribution: the parquet, agnes's view (never a
/// user's), and the state entry.
fn remove_revoked(
    removals: &[Removal],
    workspace: &Workspace,
    state: &mut StateFile,
    catalog: &dyn Catalog,
) -> Vec<TableOutcome> {
    if removals.is_empty() {
        return Vec::new();
    }
    let relations = catalog.relations().unwrap_or_default();
    removals
        .iter()
        .map(|Removal { id, why }| {
            let mut o = TableOutcome::new(id, Action::Removed);
            o.note = removal_note(*why, true);
            // An id from an old state file is checked like one from a manifest.
            if let Err(e) = crate::protocol::ids::check_table_id(id) {
                state.state.tables.remove(id);
                o.note = Some(format!("forgotten without touching files: {e}"));
                return o;
            }
            let file = workspace.parquet_file(id);
            let folder = workspace.table_dir(id);
            let gone = |r: std::io::Result<()>| match r {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
            let removed = gone(fs::remove_file(&file)).and_then(|()| {
                match fs::symlink_metadata(&folder).is_ok_and(|m| m.is_dir()) {
                    true => gone(fs::remove_dir_all(&folder)),
                    false => Ok(()),
                }
            });
            if let Err(e) = removed {
                o.action = Action::Failed;
                let left = match why {
                    Withdrawal::Gone => "left the manifest",
                    Withdrawal::NotSubscribed => "left your subscriptions",
                    Withdrawal::ServerOnly => "is server-only now",
                };
                o.error = Some(format!(
                    "{left}, but {} could not be removed: {e}",
                    file.display()
                ));
                return o;
            }
            state.state.tables.remove(id);
            if let Some(Existing::AgnesView { .. }) = relations.get(&id.to_lowercase()) {
                if let Err(e) = catalog.drop_view(id) {
                    o.note = Some(format!("view could not be dropped: {e}"));
                }
            }
            o
        })
        .collect()
}

/// Why a table still listed loses its local copy; `done` once it has.
fn removal_note(why: Withdrawal, done: bool) -> Option<String> {
    let were = match done {
        true => "were removed",
        false => "would be removed",
    };
    match why {
        Withdrawal::Gone => None,
        Withdrawal::NotSubscribed => Some(format!(
            "no longer among your subscriptions: its local copy and agnes's view {were} \
             (all_tables := true keeps every table)"
        )),
        Withdrawal::ServerOnly => Some(format!(
            "server-only now: its local copy and agnes's view {were}; query it on the server"
        )),
    }
}

/// Folds the removals into the report: a table still listed keeps its one
/// row (a server-only one may still get a view over `agnes_scan()`), which
/// now says what was removed; a table gone from the manifest gets a row.
fn merge_removals(outcomes: &mut Vec<TableOutcome>, removed: Vec<TableOutcome>) {
    // Most syncs remove nothing: no index of every row for them.
    if removed.is_empty() {
        return;
    }
    let at: HashMap<String, usize> = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| (o.table_id.clone(), i))
        .collect();
    for r in removed {
        let Some(&i) = at.get(&r.table_id) else {
            outcomes.push(r);
            continue;
        };
        let o = &mut outcomes[i];
        if r.action == Action::Failed || o.action == Action::SkippedNotSubscribed {
            o.action = r.action;
        }
        o.note = r.note;
        o.error = r.error;
    }
}

/// Makes sure every synced table with a verified file has agnes's view in the
/// calling database; a failed download keeps the view over the old file.
/// With `keep_others`, agnes's view over another workspace's file is left
/// as it is (a database file opened from another folder keeps its views).
fn attach_views(
    outcomes: &mut [TableOutcome],
    workspace: &Workspace,
    state: &StateFile,
    catalog: &dyn Catalog,
    relations: &std::result::Result<HashMap<String, Existing>, String>,
    keep_others: bool,
) {
    let parquet_dir = workspace.parquet_dir();
    let relations = match relations {
        Ok(r) => r,
        Err(e) => {
            for o in outcomes
                .iter_mut()
                .filter(|o| state.state.tables.contains_key(&o.table_id))
            {
                o.note = Some(format!("views not checked: {e}"));
            }
            return;
        }
    };
    let mut to_create: Vec<(usize, PathBuf)> = Vec::new();
    for (i, o) in outcomes.iter_mut().enumerate() {
        let Some(local) = state.state.tables.get(&o.table_id) else {
            continue;
        };
        if matches!(o.action, Action::SkippedRemote) {
            continue;
        }
        // A server-only or unsubscribed table synced before keeps its view
        // over the copy it has. An unchanged table's copy was found intact
        // by the plan a moment ago: not looked up again.
        let present = matches!(o.action, Action::Unchanged)
            || local_copy_present(workspace, &o.table_id, local);
        if !present {
            continue;
        }
        let file = local_copy(workspace, &o.table_id, local);
        let path = file.to_string_lossy().to_string();
        match relations.get(&o.table_id.to_lowercase()) {
            Some(Existing::UserRelation { kind }) => {
                o.note = Some(format!(
                    "no view: the database already has a {kind} named \"{}\" that agnes did not create; left as is",
                    o.table_id
                ))
            }
            Some(Existing::AgnesView { parquet })
                if keep_others && Path::new(parquet).parent() != Some(parquet_dir.as_path()) =>
            {
                o.note = Some(format!(
                    "no view: \"{}\" is agnes's view over {parquet}, a file of another workspace; \
                     left as is (a sync of this workspace replaces it)",
                    o.table_id
                ))
            }
            // A new file may have new columns: the view is rebuilt over it.
            Some(Existing::AgnesView { parquet }) if *parquet == path && o.action != Action::Downloaded => {
                o.view = Some(o.table_id.clone())
            }
            _ => to_create.push((i, file)),
        }
    }
    let views: Vec<(&str, &std::path::Path)> = to_create
        .iter()
        .map(|(i, file)| (outcomes[*i].table_id.as_str(), file.as_path()))
        .collect();
    let results = catalog.create_views(&views);
    for ((i, _), result) in to_create.iter().zip(results) {
        let o = &mut outcomes[*i];
        match result {
            Ok(()) => o.view = Some(o.table_id.clone()),
            Err(e) => o.note = Some(format!("no view: {e}")),
        }
    }
}

/// Fetches the memory bundle and writes the rules; a failure is a warning.
pub(crate) fn write_rules(client: &ServerClient, workspace: &Workspace) -> RulesOutcome {
    write_fetched_rules(fetch_bundle(client), workspace)
}

/// The memory bundle's body, or why it could not be fetched.
pub(crate) fn fetch_bundle(client: &ServerClient) -> std::result::Result<Vec<u8>, String> {
    client
        .get_json("/api/memory/bundle", "memory bundle fetch")
        .map_err(|e| e.to_string())
}

/// Writes the rules of a bundle fetched already (the quick no-op fetches
/// it beside the manifest); a failure is a warning.
pub(crate) fn write_fetched_rules(
    fetched: std::result::Result<Vec<u8>, String>,
    workspace: &Workspace,
) -> RulesOutcome {
    let rendered = fetched.and_then(|body| rules::render(&body));
    match rendered.and_then(|r| rules::write(&workspace.rules_dir(), &r).map(|_| r)) {
        Ok(r) => RulesOutcome {
            action: "written",
            files: r.files.len(),
            warnings: r.warnings,
        },
        Err(e) => RulesOutcome {
            action: "failed",
            files: 0,
            warnings: vec![format!("corporate memory not updated: {e}")],
        },
    }
}

fn preview_rules(client: &ServerClient) -> RulesOutcome {
    match client
        .get_json("/api/memory/bundle", "memory bundle fetch")
        .map_err(|e| e.to_string())
        .and_then(|b| rules::render(&b))
    {
        Ok(r) => RulesOutcome {
            action: "would_write",
            files: r.files.len(),
            warnings: r.warnings,
        },
        Err(e) => RulesOutcome {
            action: "failed",
            files: 0,
            warnings: vec![format!("corporate memory unavailable: {e}")],
        },
    }
}

/// One row of `agnes_manifest()`: a server table beside the local copy.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestRow {
    pub entry: manifest::TableEntry,
    pub local_hash: Option<String>,
    pub status: Status,
}

/// What the server offers and how each table compares with this workspace.
/// Reads only; writes nothing.
/// `all_tables` compares every table, subscribed or not.
pub fn inspect(
    settings: &Settings,
    timeouts: Timeouts,
    all_tables: bool,
    cancel: &Cancel,
) -> Result<Vec<ManifestRow>> {
    let r = settings.redactor();
    let mut rows =
        inspect_unredacted(settings, timeouts, all_tables, cancel).map_err(|e| e.redacted(&r))?;
    for row in &mut rows {
        let e = &mut row.entry;
        for text in [&mut e.id, &mut e.hash, &mut e.source_type] {
            *text = r.text(text);
        }
        r.option(&mut e.updated);
        r.option(&mut e.invalid);
        r.option(&mut row.local_hash);
    }
    Ok(rows)
}

fn inspect_unredacted(
    settings: &Settings,
    timeouts: Timeouts,
    all_tables: bool,
    cancel: &Cancel,
) -> Result<Vec<ManifestRow>> {
    let workspace = Workspace::new(&settings.workspace);
    let client = ServerClient::new(settings, timeouts, cancel)?;
    let manifest = fetch_manifest(&client)?;
    let mut state = StateFile::load(&workspace, &settings.server, &settings.config_dir, true)?;
    let mut manifest = manifest;
    let (plan, _, _) = plan_here(
        &mut manifest,
        &mut state.state,
        &workspace,
        &Scope::All,
        all_tables,
    )?;
    Ok(plan
        .tables
        .into_iter()
        .map(|t| ManifestRow {
            local_hash: state.state.tables.get(&t.entry.id).map(|l| l.hash.clone()),
            status: t.status,
            entry: t.entry,
        })
        .collect())
}

/// Offline mode: views over the tables this workspace already synced from
/// the server, without asking it anything. For a fresh session (a notebook)
/// while the server is unreachable.
pub fn attach_local(settings: &Settings, catalog: &dyn Catalog) -> Result<Vec<TableOutcome>> {
    let r = settings.redactor();
    let mut outcomes = attach_unredacted(settings, catalog).map_err(|e| e.redacted(&r))?;
    outcomes.iter_mut().for_each(|o| o.redact(&r));
    Ok(outcomes)
}

fn attach_unredacted(settings: &Settings, catalog: &dyn Catalog) -> Result<Vec<TableOutcome>> {
    let workspace = Workspace::new(&settings.workspace);
    // No state, nothing synced: and no legacy migration (it hashes files) on
    // a path that runs at every LOAD.
    if !workspace.sync_state_file(&settings.server).is_file() {
        return Ok(Vec::new());
    }
    let state = StateFile::load(&workspace, &settings.server, &settings.config_dir, true)?;
    let mut outcomes: Vec<TableOutcome> = state
        .state
        .tables
        .iter()
        .filter(|(id, _)| crate::protocol::ids::check_table_id(id).is_ok())
        .map(|(id, local)| {
            let mut o = TableOutcome::new(id, Action::Unchanged);
            (o.rows, o.size_bytes) = (Some(local.rows), Some(local.size_bytes));
            o.hash = (!local.hash.is_empty()).then(|| local.hash.clone());
            if !local_copy_present(&workspace, id, local) {
                o.action = Action::Failed;
                o.error = Some(format!(
                    "{} is gone or incomplete; run a sync with the server reachable",
                    local_copy(&workspace, id, local).display()
                ));
            }
            o
        })
        .collect();
    // Offline, and at LOAD: the workspace is only what the current folder
    // or the environment says, so a view of another workspace is kept.
    attach_views(
        &mut outcomes,
        &workspace,
        &state,
        catalog,
        &catalog.relations(),
        true,
    );
    Ok(outcomes)
}
