//! The tables a workspace already holds from its server, read from the sync
//! state alone (no server, no DuckDB): what `LOAD agnes` offers by name.

use std::path::PathBuf;

use crate::config::Settings;
use crate::layout::Workspace;
use crate::state::{read_json, SyncState};

/// A synced table with a verified file on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncedTable {
    pub id: String,
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

/// Every table of the state whose id is valid and whose file is there. No
/// state (nothing synced yet) is no tables; a damaged one is an error.
pub fn synced_tables(settings: &Settings) -> Result<Vec<SyncedTable>, String> {
    let workspace = Workspace::new(&settings.workspace);
    let path = workspace.sync_state_file(&settings.server);
    let Some(state) = read_json::<SyncState>(&path)? else {
        return Ok(Vec::new());
    };
    Ok(state
        .tables
        .into_iter()
        .filter(|(id, _)| crate::ids::check_table_id(id).is_ok())
        .map(|(id, t)| SyncedTable {
            parquet: workspace.parquet_file(&id),
            id,
            rows: t.rows,
            size_bytes: t.size_bytes,
            hash: t.hash,
        })
        .filter(|t| t.parquet.is_file())
        .collect())
}
