//! `da sync`: runs `agnes_sync()` on the workspace's analytics.duckdb and
//! reads its rows into a `SyncSummary` for `render` to print.

use std::io::IsTerminal;
use std::path::Path;

use agnes_engine::sync::quick::{self, Quick};
use agnes_engine::workspace::layout::Workspace;
use agnes_engine::{Settings, SyncReport};

use crate::args::{Cli, SyncArgs, Target};
use crate::duckdb::{literal, DuckDb, QueryError, Row};
use crate::record::Recorder;
use crate::render::{self, Mode};
use crate::upload;
use crate::{Failure, Outcome};

/// One table's row of `agnes_sync()`.
#[derive(Debug, Clone)]
pub struct TableRow {
    pub table: String,
    pub action: String,
    pub rows: Option<u64>,
    pub size_bytes: Option<u64>,
    pub hash: Option<String>,
    pub view: Option<String>,
    pub error: Option<String>,
    pub note: Option<String>,
}

/// The rules step's row.
#[derive(Debug, Clone, Default)]
pub struct RulesRow {
    pub action: String,
    pub files: u64,
    pub error: Option<String>,
}

/// Everything one `agnes_sync()` call reported.
#[derive(Debug, Clone, Default)]
pub struct SyncSummary {
    pub dry_run: bool,
    pub tables: Vec<TableRow>,
    pub rules: RulesRow,
    pub rules_warnings: Vec<String>,
    pub notices: Vec<String>,
    /// Set when the database was held by another process and the views
    /// could not be made in it: says where they will appear instead.
    pub views_pending: Option<String>,
    /// Worth the one line `--quiet` allows even when nothing failed: a
    /// database this `duckdb` cannot open will not get views by waiting.
    pub quiet_warning: Option<String>,
}

impl SyncSummary {
    fn from_rows(rows: Vec<Row>, dry_run: bool) -> SyncSummary {
        let mut summary = SyncSummary {
            dry_run,
            ..Default::default()
        };
        for row in rows {
            let action = text(&row, "action").unwrap_or_default();
            match text(&row, "kind").as_deref() {
                Some("table") => summary.tables.push(TableRow {
                    table: text(&row, "table_id").unwrap_or_default(),
                    action,
                    rows: int(&row, "rows"),
                    size_bytes: int(&row, "size_bytes"),
                    hash: text(&row, "hash"),
                    view: text(&row, "view_name"),
                    error: text(&row, "error"),
                    note: text(&row, "note"),
                }),
                Some("rules") if action == "warning" => {
                    summary.rules_warnings.extend(text(&row, "note"))
                }
                Some("rules") => {
                    summary.rules = RulesRow {
                        action,
                        files: int(&row, "rows").unwrap_or(0),
                        error: text(&row, "error"),
                    }
                }
                Some("notice") => summary.notices.extend(text(&row, "note")),
                _ => {}
            }
        }
        summary
    }

    /// The summary of a sync the engine did itself (the quick no-op).
    fn from_report(report: SyncReport) -> SyncSummary {
        let tables = report
            .tables
            .into_iter()
            .map(|t| TableRow {
                action: t.action.as_str().to_string(),
                table: t.table_id,
                rows: t.rows,
                size_bytes: t.size_bytes,
                hash: t.hash,
                view: t.view,
                error: t.error,
                note: t.note,
            })
            .collect();
        let failed = report.rules.action == "failed";
        SyncSummary {
            tables,
            rules: RulesRow {
                action: report.rules.action.to_string(),
                files: report.rules.files as u64,
                error: failed.then(|| report.rules.warnings.join("; ")),
            },
            rules_warnings: match failed {
                true => Vec::new(),
                false => report.rules.warnings,
            },
            notices: report.notices,
            ..Default::default()
        }
    }

    /// Tables whose action is `action`.
    pub fn with(&self, action: &str) -> impl Iterator<Item = &TableRow> {
        let action = action.to_string();
        self.tables.iter().filter(move |t| {
            // A remote table is not downloaded, whether or not agnes made a
            // view over agnes_scan() for it: the old CLI's `skipped_remote`.
            t.action == action || (action == "skipped_remote" && t.action == "scan_view")
        })
    }

    pub fn failed(&self) -> Vec<&TableRow> {
        self.with("failed").collect()
    }
}

/// Runs `da sync` (not `--upload-only`); with `--upload-first`, the upload
/// goes first, and its failure does not stop the sync.
pub fn run(
    cli: &Cli,
    args: &SyncArgs,
    mut record: Option<&mut Recorder>,
) -> Result<Outcome, Failure> {
    let mode = Mode::of(args.json, args.quiet);
    let upload = match args.upload_first {
        true => Some(upload::summarize(cli, args)),
        false => None,
    };
    if let (Some(upload), Some(record)) = (&upload, record.as_deref_mut()) {
        match upload {
            Ok(u) => record.upload(u),
            Err(f) => record.error(format!("upload: {}", f.message)),
        }
    }
    let summary = quietly(mode, summarize(cli, args, mode))?;
    if let Some(record) = record {
        record.sync(&summary);
    }
    let upload_failed = match &upload {
        None => false,
        Some(Ok(u)) => !u.with("failed").is_empty(),
        Some(Err(_)) => true,
    };
    match &upload {
        Some(upload) => render::sync_after_upload(&summary, upload, mode),
        None => render::sync(&summary, mode),
    }
    let outcome = match summary.failed().is_empty() && !upload_failed {
        true => Outcome::Done,
        false => Outcome::Partial,
    };
    // The process ends next: freeing a row at a time would cost the hook
    // 6 ms at 50,000 tables (issue 25).
    std::mem::forget(summary);
    Ok(outcome)
}

fn summarize(cli: &Cli, args: &SyncArgs, mode: Mode) -> Result<SyncSummary, Failure> {
    let settings = settings(&args.target)?;
    let database = Workspace::new(&settings.workspace).analytics_db();
    let whole = !args.dry_run && !args.docs_only && args.table.is_none() && !args.all_tables;
    // Nothing to do, provably (agnes_engine::sync::quick): no DuckDB to start.
    // Any doubt or error is left to the full path, which reports it.
    if whole {
        let timeouts = agnes_engine::Timeouts::default();
        let cancel = agnes_engine::Cancel::new();
        if let Ok(Quick::NoOp(report)) = quick::try_noop(&settings, &database, timeouts, &cancel) {
            return Ok(SyncSummary::from_report(report));
        }
    }
    let duckdb = DuckDb::find(cli.duckdb.as_deref())?.for_target(&settings);
    let progress = mode == Mode::Human && !args.dry_run && std::io::stderr().is_terminal();
    let mut params = Vec::new();
    if let Some(table) = &args.table {
        params.push(format!("\"table\" := {}", literal(table)));
    }
    if args.detached_run.is_some() {
        params.push(format!("lock_timeout := {DETACHED_LOCK_WAIT}"));
    }
    for (on, param) in [
        (args.docs_only, "docs_only := true"),
        (args.dry_run, "dry_run := true"),
        (args.all_tables, "all_tables := true"),
        (progress, "progress := true"),
    ] {
        if on {
            params.push(param.to_string());
        }
    }
    let query = format!("SELECT * FROM agnes_sync({})", params.join(", "));

    // A dry run writes nothing, not even the database; the rules alone
    // need no views.
    let database = (!args.dry_run && !args.docs_only).then_some(database.as_path());
    if let Some(db) = database {
        create_parent(db)?;
    }
    let mut quiet_warning = None;
    let (rows, views_pending) = match duckdb.query(database, &query, progress) {
        Ok(rows) => (rows, None),
        // A notebook holds the file: sync in memory, so that the files,
        // the state and the rules are still brought up to date.
        Err(QueryError::Locked { holder }) => {
            let rows = duckdb.query(None, &query, progress).map_err(failure)?;
            let db = database.map(Path::display);
            let pending = format!(
                "{} is open in {holder}; the views will appear at the next agnes_sync() in that session",
                db.map(|d| d.to_string()).unwrap_or_default()
            );
            (rows, Some(pending))
        }
        // A notebook on a newer DuckDB wrote the file: the same, and say
        // how to get the views.
        Err(QueryError::NewerDatabase { detail }) => {
            let rows = duckdb.query(None, &query, progress).map_err(failure)?;
            let version = duckdb
                .cli_version()
                .ok()
                .and_then(|v| v.split_whitespace().next().map(str::to_string))
                .unwrap_or_default();
            let pending = format!(
                "{} was written by a newer DuckDB than {} ({version}) can open ({detail}); \
                 the files, state and rules are synced, but no views were made in it: \
                 run da with a duckdb as new as the one that wrote it (--duckdb PATH or \
                 AGNES_DUCKDB=PATH), or run agnes_sync() in that DuckDB",
                database
                    .map(Path::display)
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                duckdb.executable().display(),
            );
            quiet_warning = Some(pending.clone());
            (rows, Some(pending))
        }
        Err(e) => return Err(failure(e)),
    };
    let mut summary = SyncSummary::from_rows(rows, args.dry_run);
    if views_pending.is_some() {
        // Those views were made in the throw-away in-memory database.
        for t in &mut summary.tables {
            t.view = None;
        }
        summary.views_pending = views_pending;
    }
    summary.quiet_warning = quiet_warning;
    // The views of every table are in the database as this sync left them:
    // the next sync may find that it has nothing to do without DuckDB.
    match (
        database,
        whole && summary.views_pending.is_none() && summary.failed().is_empty(),
    ) {
        (Some(db), true) => {
            let ids = |actions: &[&str]| {
                summary
                    .tables
                    .iter()
                    .filter(|t| actions.contains(&t.action.as_str()))
                    .map(|t| t.table.clone())
                    .collect()
            };
            let remote = ids(&["scan_view", "skipped_remote", "skipped_server_only"]);
            let scan_views = ids(&["scan_view"]);
            if quick::record(&settings, db, remote, scan_views).is_err() {
                quick::forget(&settings);
            }
        }
        _ => quick::forget(&settings),
    }
    Ok(summary)
}

/// Settings from the flags, the environment and the config dir, with a
/// token: without one nothing can be done, so say so before starting DuckDB.
pub fn settings(target: &Target) -> Result<Settings, Failure> {
    // `--server` and `--workspace` are the user's own choice: they
    // configure the call like AGNES_SERVER and AGNES_LOCAL_DIR do, and are
    // passed on to the extension as those (`DuckDb::for_target`).
    let flags = |name: &str| match name {
        "AGNES_SERVER" if target.server.is_some() => target.server.clone(),
        "AGNES_LOCAL_DIR" if target.workspace.is_some() => target.workspace.clone(),
        _ => std::env::var(name).ok(),
    };
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::new(format!("cannot read the current directory: {e}")))?;
    let settings = Settings::resolve_with(&agnes_engine::Overrides::default(), &flags, &cwd)?;
    settings.require_token()?;
    Ok(settings)
}

fn create_parent(path: &Path) -> Result<(), Failure> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))
}

/// A query error that has no second chance.
pub fn failure(e: QueryError) -> Failure {
    match e {
        QueryError::Failed(f) => f,
        QueryError::Locked { holder } => Failure::new(format!(
            "the database is held by {holder}; close it there, or try again"
        )),
        QueryError::NewerDatabase { detail } => Failure::new(format!(
            "the database was written by a newer DuckDB ({detail}); run da with that \
             newer duckdb: --duckdb PATH or AGNES_DUCKDB=PATH"
        )),
    }
}

/// Seconds a detached run waits for another sync or upload of the same
/// workspace: nobody waits for it, and giving up would lose the upload.
pub const DETACHED_LOCK_WAIT: u32 = 600;

/// Marks a failure as one of `--quiet`, whose message stays on one line.
pub fn quietly<T>(mode: Mode, result: Result<T, Failure>) -> Result<T, Failure> {
    result.map_err(|mut f| {
        f.quiet = mode == Mode::Quiet;
        f
    })
}

pub fn text(row: &Row, column: &str) -> Option<String> {
    match row.get(column)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

pub fn int(row: &Row, column: &str) -> Option<u64> {
    row.get(column)?.as_u64()
}
