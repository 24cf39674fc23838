//! The files a sync replaces are kept beside them until the state vouches
//! for the new ones: where the state cannot be written (a full disk), the
//! previous files go back, so that files and state agree and the previous
//! good parquet survives (issue 13, case 17).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::sync::download;
use crate::sync::plan::Plan;
use crate::sync::report::{Action, TableOutcome};
use crate::workspace::layout::Workspace;
use crate::workspace::state::{StateFile, TableState};

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
pub(super) fn keep_previous(plan: &Plan, workspace: &Workspace) -> HashMap<String, PathBuf> {
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
pub(super) fn drop_previous(dir: &Path) {
    let prefix = format!("{}{PREVIOUS}", download::TEMP_PREFIX);
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(KEEP_SUFFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The state could not be written (a full disk): every table downloaded by
/// this sync gets its previous file back (or loses the new one, when it had
/// none), so that the state on disk still describes the files, and its row
/// says what failed. Returns the notice for the report.
pub(super) fn state_not_written(
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
