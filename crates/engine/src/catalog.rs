//! What the engine needs from the database it syncs into. The DuckDB face
//! implements it; the engine never sees DuckDB types or SQL.

use std::collections::HashMap;
use std::path::Path;

/// A relation that already has a synced table's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// A view agnes created, reading this parquet path.
    AgnesView { parquet: String },
    /// A view agnes created over `agnes_scan()` of this table (a remote or
    /// server-only table, queried on the server).
    AgnesScanView {
        table_id: String,
        /// What it was made with (`scan_views::signature`): a view made
        /// with the same is left as it is.
        signature: String,
    },
    /// A table or view of the user's: never replaced, never dropped.
    UserRelation { kind: String },
}

/// A view agnes did not make whose definition is exactly one an older
/// client (the Python `da sync`, upstream's `agnes pull`) makes for a table
/// (adopt.rs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OlderView {
    /// The view's name, as it is.
    pub name: String,
    pub reads: OlderRead,
}

/// What an older client's view reads, as written in its definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OlderRead {
    /// `read_parquet('<path>')`.
    File(String),
    /// `read_parquet('<folder>/**/*.parquet', union_by_name = true,
    /// hive_partitioning = true)`: a partitioned table's parts.
    PartsGlob(String),
}

/// What a view over `agnes_scan()` is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanGuard {
    /// A scan through the view (no `where`, no `limit`) of more rows than
    /// this is refused, with the `agnes_scan(..., where := ...)` form shown.
    pub max_rows: u64,
    /// The manifest's row count, for servers that cannot estimate.
    pub known_rows: u64,
}

/// The database side of a sync.
pub trait Catalog: Sync {
    /// Every relation in the schema where views are made, by lower-case
    /// name (SQL identifiers are case-insensitive).
    fn relations(&self) -> Result<HashMap<String, Existing>, String>;

    /// Creates or replaces agnes's view `name` over the parquet at `parquet`;
    /// a folder (a partitioned table's parts) means every `*.parquet` under it.
    fn create_view(&self, name: &str, parquet: &Path) -> Result<(), String>;

    /// Creates several views; one result per view, in order. A catalog may
    /// do them together (one transaction), as long as one bad view fails alone.
    fn create_views(&self, views: &[(&str, &Path)]) -> Vec<Result<(), String>> {
        views
            .iter()
            .map(|(name, parquet)| self.create_view(name, parquet))
            .collect()
    }

    /// Creates or replaces agnes's view `name` over `agnes_scan(table_id)`.
    /// `signature` is kept with the view, and given back by `relations`.
    fn create_scan_view(
        &self,
        name: &str,
        table_id: &str,
        guard: ScanGuard,
        signature: &str,
    ) -> Result<(), String> {
        let _ = (name, table_id, guard, signature);
        Err("this database cannot hold views over agnes_scan()".into())
    }

    /// The views of the schema where agnes makes its own that agnes did not
    /// make and whose definition is, exactly, an older client's view over
    /// parquet. Anything else is not listed. Only asked when a synced table
    /// has a view agnes did not make.
    fn older_client_views(&self) -> Result<Vec<OlderView>, String> {
        Ok(Vec::new())
    }

    /// Drops agnes's view `name`.
    fn drop_view(&self, name: &str) -> Result<(), String>;

    /// Reads the parquet footer of `path`, returning its row count: the
    /// structural check for a download without a content hash.
    fn parquet_rows(&self, path: &Path) -> Result<u64, String>;
}
