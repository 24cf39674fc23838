//! A whole sync: manifest, plan, parallel verified downloads, state, views,
//! removals and rules, reported table by table (CONTRACT.md §4). One failing
//! table never stops the others.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::cancel::Cancel;
use crate::catalog::{Catalog, Existing};
use crate::config::Settings;
use crate::download::{self, Fetched};
use crate::error::{Error, Result};
use crate::http::{ServerClient, Timeouts};
use crate::layout::Workspace;
use crate::lock;
use crate::manifest::{self, Manifest, QueryMode};
use crate::plan::{self, Plan, PlannedTable, Scope, Status};
use crate::progress::Progress;
use crate::redact::Redactor;
use crate::rules;
use crate::state::{StateFile, TableState};

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
            dry_run: false,
            threads: 4,
            timeouts: Timeouts::default(),
            lock_wait: Duration::from_secs(30),
            cancel: Cancel::new(),
            scan_max_rows: crate::scan_views::DEFAULT_MAX_ROWS,
            scan_views: crate::scan_views::DEFAULT_VIEWS_PER_SYNC,
        }
    }
}

/// What happened to one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Downloaded,
    Unchanged,
    SkippedRemote,
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
        self.table_id = r.text(&self.table_id);
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
    fn redacted(mut self, r: &Redactor) -> SyncReport {
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
    let mut state = StateFile::load(
        &workspace,
        &settings.server,
        &settings.config_dir,
        options.dry_run,
    )?;
    let mut manifest = manifest;
    crate::names::refuse_clashes(&mut manifest, &|id| state.state.tables.contains_key(id));
    let plan = plan::plan(&manifest, &state.state, &options.scope, &|id| {
        workspace.parquet_file(id).is_file()
    })?;
    let mut notices: Vec<String> = state.notice.take().into_iter().collect();

    if options.dry_run {
        let rules = preview_rules(&client);
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
    let swept = download::sweep_temporaries(&parquet_dir);
    if swept > 0 {
        notices.push(format!(
            "removed {swept} temporary file(s) left by an interrupted sync"
        ));
    }

    let before = state.state.tables.clone();
    let mut outcomes = download_all(
        &client,
        &plan,
        &workspace,
        &mut state,
        options.threads,
        catalog,
        progress,
    );
    let cancelled = options.cancel.is_cancelled();
    // Interrupted: nothing more is removed, but what was downloaded is kept.
    let removed = match cancelled {
        true => Vec::new(),
        false => remove_revoked(&plan.removed, &workspace, &mut state, catalog),
    };
    // A no-op sync writes nothing: the hook path runs at every session start.
    if state.state.tables != before || state.is_new() {
        state.save()?;
    }
    attach_views(&mut outcomes, &workspace, &state, catalog, false);
    if cancelled {
        return Err(Error::Interrupted);
    }
    crate::scan_views::attach(
        &mut outcomes,
        &plan,
        catalog,
        &crate::scan_views::Limits {
            max_rows: options.scan_max_rows,
            views: options.scan_views,
            whole_manifest: options.scope == Scope::All,
        },
    );
    outcomes.extend(removed);
    let rules = write_rules(&client, &workspace);
    Ok(SyncReport {
        server: settings.server.clone(),
        workspace: settings.workspace.clone(),
        tables: outcomes,
        rules,
        notices,
    })
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
                Status::Invalid => Action::Failed,
                Status::Unchanged => Action::Unchanged,
                _ => Action::WouldDownload,
            };
            let mut o = described(t, action);
            o.error = t.entry.invalid.clone();
            o
        })
        .collect();
    out.extend(
        plan.removed
            .iter()
            .map(|id| TableOutcome::new(id, Action::WouldRemove)),
    );
    out
}

/// An outcome carrying the manifest's figures for the table.
fn described(t: &PlannedTable, action: Action) -> TableOutcome {
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
    let results: Mutex<HashMap<String, Result<Fetched, String>>> = Mutex::new(HashMap::new());
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, 64).min(todo.len()) {
            scope.spawn(|| {
                while let Some(t) = todo.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if client.cancel().is_cancelled() {
                        break;
                    }
                    let target = workspace.parquet_file(&t.entry.id);
                    let result = download::fetch(
                        client,
                        &t.entry,
                        t.if_none_match.as_deref(),
                        &target,
                        catalog,
                        progress,
                    );
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
                (Status::Invalid, _) => {
                    let mut o = TableOutcome::new(id, Action::Failed);
                    o.error = t.entry.invalid.clone();
                    o
                }
                (_, None) => described(t, Action::Unchanged),
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
                    })),
                ) => {
                    let rows = footer_rows.unwrap_or(t.entry.rows);
                    state.state.tables.insert(
                        id.clone(),
                        TableState {
                            hash: t.entry.hash.clone(),
                            rows,
                            size_bytes: bytes,
                            etag,
                        },
                    );
                    let mut o = described(t, Action::Downloaded);
                    (o.rows, o.size_bytes) = (Some(rows), Some(bytes));
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

/// Removes what agnes wrote for tables that left the manifest: the parquet,
/// agnes's view (never a user's), and the state entry.
fn remove_revoked(
    ids: &[String],
    workspace: &Workspace,
    state: &mut StateFile,
    catalog: &dyn Catalog,
) -> Vec<TableOutcome> {
    if ids.is_empty() {
        return Vec::new();
    }
    let relations = catalog.relations().unwrap_or_default();
    ids.iter()
        .map(|id| {
            let mut o = TableOutcome::new(id, Action::Removed);
            // An id from an old state file is checked like one from a manifest.
            if let Err(e) = crate::ids::check_table_id(id) {
                state.state.tables.remove(id);
                o.note = Some(format!("forgotten without touching files: {e}"));
                return o;
            }
            let file = workspace.parquet_file(id);
            if let Err(e) = fs::remove_file(&file).or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            }) {
                o.action = Action::Failed;
                o.error = Some(format!(
                    "left the manifest, but {} could not be removed: {e}",
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

/// Makes sure every synced table with a verified file has agnes's view in the
/// calling database; a failed download keeps the view over the old file.
/// With `keep_others`, agnes's view over another workspace's file is left
/// as it is (a database file opened from another folder keeps its views).
fn attach_views(
    outcomes: &mut [TableOutcome],
    workspace: &Workspace,
    state: &StateFile,
    catalog: &dyn Catalog,
    keep_others: bool,
) {
    let parquet_dir = workspace.parquet_dir();
    let relations = match catalog.relations() {
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
        if !state.state.tables.contains_key(&o.table_id)
            || matches!(o.action, Action::SkippedRemote)
        {
            continue;
        }
        let file = workspace.parquet_file(&o.table_id);
        if !file.is_file() {
            continue;
        }
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
fn write_rules(client: &ServerClient, workspace: &Workspace) -> RulesOutcome {
    let rendered = client
        .get_json("/api/memory/bundle", "memory bundle fetch")
        .map_err(|e| e.to_string())
        .and_then(|body| rules::render(&body));
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
pub fn inspect(
    settings: &Settings,
    timeouts: Timeouts,
    cancel: &Cancel,
) -> Result<Vec<ManifestRow>> {
    let r = settings.redactor();
    let mut rows = inspect_unredacted(settings, timeouts, cancel).map_err(|e| e.redacted(&r))?;
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
    cancel: &Cancel,
) -> Result<Vec<ManifestRow>> {
    let workspace = Workspace::new(&settings.workspace);
    let client = ServerClient::new(settings, timeouts, cancel)?;
    let manifest = fetch_manifest(&client)?;
    let state = StateFile::load(&workspace, &settings.server, &settings.config_dir, true)?;
    let mut manifest = manifest;
    crate::names::refuse_clashes(&mut manifest, &|id| state.state.tables.contains_key(id));
    let plan = plan::plan(&manifest, &state.state, &Scope::All, &|id| {
        workspace.parquet_file(id).is_file()
    })?;
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
        .filter(|(id, _)| crate::ids::check_table_id(id).is_ok())
        .map(|(id, local)| {
            let mut o = TableOutcome::new(id, Action::Unchanged);
            (o.rows, o.size_bytes) = (Some(local.rows), Some(local.size_bytes));
            o.hash = (!local.hash.is_empty()).then(|| local.hash.clone());
            if !workspace.parquet_file(id).is_file() {
                o.action = Action::Failed;
                o.error = Some(format!(
                    "{} is gone; run a sync with the server reachable",
                    workspace.parquet_file(id).display()
                ));
            }
            o
        })
        .collect();
    // Offline, and at LOAD: the workspace is only what the current folder
    // or the environment says, so a view of another workspace is kept.
    attach_views(&mut outcomes, &workspace, &state, catalog, true);
    Ok(outcomes)
}
