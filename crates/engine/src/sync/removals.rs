//! Tables that left the manifest, the user's subscriptions or
//! distribution: their files, agnes's view (never a user's) and their state
//! entry removed, and the rows that say so.

use std::collections::HashMap;
use std::fs;

use crate::catalog::{Catalog, Existing};
use crate::sync::plan::{Removal, Withdrawal};
use crate::sync::report::{Action, TableOutcome};
use crate::workspace::layout::Workspace;
use crate::workspace::state::StateFile;

/// Removes what agnes wrote for tables that left the manifest, the user's
/// subscriptions, or distribution: the parquet, agnes's view (never a
/// user's), and the state entry.
pub(super) fn remove_revoked(
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
pub(super) fn removal_note(why: Withdrawal, done: bool) -> Option<String> {
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
pub(super) fn merge_removals(outcomes: &mut Vec<TableOutcome>, removed: Vec<TableOutcome>) {
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
