//! The tables a workspace already holds from its server, read from the sync
//! state alone (no server, no DuckDB): what `LOAD agnes` offers by name.

use std::path::PathBuf;

use crate::config::Settings;
use crate::workspace::layout::Workspace;
use crate::workspace::state::{local_copy, local_copy_present};
use crate::workspace::state::{read_json, SyncState};

/// A synced table with a verified copy on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncedTable {
    pub id: String,
    /// Its parquet file, or a partitioned table's folder of parts.
    pub parquet: PathBuf,
    pub rows: u64,
    pub size_bytes: u64,
    pub hash: String,
}

/// The state file that `synced_tables` reads: a caller can tell from its
/// size and time whether anything changed.
pub fn state_file(settings: &Settings) -> PathBuf {
    Workspace::new(&settings.workspace).sync_state_file(&settings.server)
}

/// Every table of the state whose id is valid and whose copy is all there.
/// No state (nothing synced yet) is no tables; a damaged one is an error.
pub fn synced_tables(settings: &Settings) -> Result<Vec<SyncedTable>, String> {
    let workspace = Workspace::new(&settings.workspace);
    let path = workspace.sync_state_file(&settings.server);
    let Some(state) = read_json::<SyncState>(&path)? else {
        return Ok(Vec::new());
    };
    Ok(state
        .tables
        .into_iter()
        .filter(|(id, t)| {
            crate::protocol::ids::check_table_id(id).is_ok()
                && local_copy_present(&workspace, id, t)
        })
        .map(|(id, t)| SyncedTable {
            parquet: local_copy(&workspace, &id, &t),
            id,
            rows: t.rows,
            size_bytes: t.size_bytes,
            hash: t.hash,
        })
        .collect())
}
