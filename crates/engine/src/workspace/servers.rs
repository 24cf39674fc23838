//! One workspace, one server (issue 13, case 5).
//!
//! The sync state is kept per server, but the files are not: every server's
//! `orders` is `server/parquet/orders.parquet` (CONTRACT.md §3, which the
//! rules, the hooks and every view depend on). Syncing a second server into
//! the same folder would overwrite the first one's files behind its state,
//! and a later sync of the first would answer `unchanged` over the second's
//! rows. Keeping a copy per server would change that layout and double the
//! disk for what is almost always a mistake (a changed `AGNES_SERVER`, a
//! notebook pointed at staging), so a second server is refused with an error
//! that names both and says how to proceed.

use std::fs;

use crate::error::{Error, Result};
use crate::workspace::layout::Workspace;
use crate::workspace::state::{read_json, SyncState};

/// Refuses to sync `server` into a workspace that holds tables synced from
/// another server. A state file of another server with no tables, or one
/// that cannot be read, holds no files and does not count.
pub fn refuse_second_server(workspace: &Workspace, server: &str) -> Result<()> {
    let ours = workspace.sync_state_file(server);
    let Some(dir) = ours.parent() else {
        return Ok(());
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path == ours || !name.starts_with("sync-state-") || !name.ends_with(".json") {
            continue;
        }
        let Ok(Some(state)) = read_json::<SyncState>(&path) else {
            continue;
        };
        if state.tables.is_empty() || state.server == server {
            continue;
        }
        return Err(Error::SecondServer {
            workspace: workspace.root().to_path_buf(),
            theirs: state.server,
            ours: server.to_string(),
            state: path,
            parquet: workspace.parquet_dir(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::state::TableState;

    #[test]
    fn a_second_server_with_tables_is_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        assert!(refuse_second_server(&ws, "http://b").is_ok());
        let mut a = SyncState {
            server: "http://a".into(),
            ..Default::default()
        };
        let path = ws.sync_state_file("http://a");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        // No tables: nothing of A's is in the folder.
        fs::write(&path, serde_json::to_vec(&a).unwrap()).unwrap();
        assert!(refuse_second_server(&ws, "http://b").is_ok());
        a.tables.insert("orders".into(), TableState::default());
        fs::write(&path, serde_json::to_vec(&a).unwrap()).unwrap();
        assert!(refuse_second_server(&ws, "http://a").is_ok());
        let err = refuse_second_server(&ws, "http://b")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("http://a") && err.contains("http://b") && err.contains("new_workspace"),
            "{err}"
        );
    }
}
