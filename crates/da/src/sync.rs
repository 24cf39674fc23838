//! `da sync`: runs `agnes_sync()` on the workspace's analytics.duckdb and
//! reads its rows into a `SyncSummary` for `render` to print.

use std::io::IsTerminal;
use std::path::Path;

use agnes_engine::sync::quick::{self, Quick};
use agnes_engine::workspace::layout::Workspace;

use crate::args::{settings, Cli, SyncArgs};
use crate::detach::DETACHED_LOCK_WAIT;
use crate::duckdb::{failure, literal, DuckDb, QueryError};
use crate::outcome::{Failure, Outcome};
use crate::record::Recorder;
use crate::render::{self, quietly, Mode};
use crate::summary::SyncSummary;
use crate::upload;

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

fn create_parent(path: &Path) -> Result<(), Failure> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))
}
