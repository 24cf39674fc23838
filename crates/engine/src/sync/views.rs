//! agnes's views over the synced parquet in the calling database: made
//! where missing, remade over a new file, and never in place of a
//! relation agnes did not create.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, Existing};
use crate::sync::report::{Action, TableOutcome};
use crate::workspace::layout::Workspace;
use crate::workspace::state::{local_copy, local_copy_present, StateFile};

/// Makes sure every synced table with a verified file has agnes's view in the
/// calling database; a failed download keeps the view over the old file.
/// With `keep_others`, agnes's view over another workspace's file is left
/// as it is (a database file opened from another folder keeps its views).
pub(super) fn attach_views(
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
