//! A whole sync: manifest, plan, parallel verified downloads, state, views,
//! removals and rules, reported table by table (CONTRACT.md §4). One failing
//! table never stops the others.
//!
//! The steps, in the order `run` takes them, each in a file of its own:
//! the plan against the disk (here, and `plan.rs`, `names.rs`, `adopt.rs`),
//! the downloads (`download_all.rs`, `download.rs`) with the previous files
//! kept until the state is saved (`previous.rs`), the removals
//! (`removals.rs`), the views (`views.rs`, `scan_views.rs`) and the rules
//! (`rules.rs`); `report.rs` holds what comes back.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::time::Duration;

use crate::cancel::Cancel;
use crate::catalog::Catalog;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::protocol::manifest::{self, Manifest};
use crate::sync::download;
use crate::sync::download_all::download_all;
use crate::sync::plan::{self, Plan, Removal, Scope, Status};
use crate::sync::previous::{drop_previous, keep_previous, state_not_written};
use crate::sync::removals::{merge_removals, removal_note, remove_revoked};
use crate::sync::report::{
    described, skip_note, subscription_notices, Action, SyncReport, TableOutcome,
};
use crate::sync::rules::{preview_rules, write_rules};
use crate::sync::views::attach_views;
use crate::transfer::http::{ServerClient, Timeouts};
use crate::workspace::layout::Workspace;
use crate::workspace::lock;
use crate::workspace::state::{local_copy_present, StateFile, SyncState};

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
        // The downloads reach the disk before the state vouches for them;
        // with none (removals, adoption) there is nothing to flush.
        let downloaded = outcomes.iter().any(|o| o.action == Action::Downloaded);
        let flushed = match downloaded {
            true => crate::workspace::durable::batch(&parquet_dir)
                .map_err(Error::io("flush the downloads in", &parquet_dir)),
            false => Ok(()),
        };
        let saved = flushed.and_then(|()| state.save());
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

/// The plan of `manifest` against this workspace as it is on disk: ids
/// that clash are refused first (names.rs), and a table whose local copy is
/// gone or no longer the one verified counts as missing. Also returns those
/// damaged copies, each with why, and what an older client left that was
/// taken over into `state` (adopt.rs).
pub(super) fn plan_here(
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
