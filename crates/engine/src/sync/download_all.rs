//! Every table that needs it downloaded, `threads` at a time (one table's
//! fetch is `download.rs`), the verified ones recorded in the state, and
//! each table's row saying what happened.

use std::collections::HashMap;
use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::catalog::Catalog;
use crate::error::Result;
use crate::progress::Progress;
use crate::sync::download::{self, Fetched};
use crate::sync::plan::{Plan, PlannedTable, Status};
use crate::sync::report::{described, skip_note, Action, TableOutcome};
use crate::transfer::http::ServerClient;
use crate::workspace::layout::Workspace;
use crate::workspace::state::{StateFile, TableState};

/// Downloads every table that needs it, `threads` at a time, and records the
/// verified ones in the state.
pub(super) fn download_all(
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
