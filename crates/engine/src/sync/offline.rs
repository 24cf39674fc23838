//! Offline mode: views over the tables this workspace already synced from
//! the server, without asking it anything (`agnes_sync(offline := true)`,
//! and `LOAD agnes`).

use crate::catalog::Catalog;
use crate::config::Settings;
use crate::error::Result;
use crate::sync::report::{Action, TableOutcome};
use crate::sync::views::attach_views;
use crate::workspace::layout::Workspace;
use crate::workspace::state::{local_copy, local_copy_present, StateFile};

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
