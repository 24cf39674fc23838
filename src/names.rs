//! Synced tables by name, without a view: a replacement scan.
//!
//! DuckDB asks a replacement scan about a table name only when nothing in
//! the catalog has it, so a user's own table or view of that name always
//! wins. agnes answers with `read_parquet('<the synced file>')` for a table
//! of the workspace's sync state, and with nothing otherwise (DuckDB then
//! says the table does not exist, as ever). So `LOAD agnes` need not create
//! a view per table (each one binds, which reads a parquet footer: 880 ms
//! for 1000 tables), and an in-memory session gets every synced table at no
//! cost. The state is read again only when its file changes.
//!
//! A partitioned table is read as the glob of its parts: DuckDB's own
//! detection of hive folders gives the partition columns, as the view's
//! `hive_partitioning = true` does. Its parts must share their columns
//! (the view's `union_by_name` cannot be asked for here).

use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use agnes_engine::{synced_tables, Settings, SyncedTable};
use duckdb::ffi;

/// The synced tables of the workspace that was current at `LOAD`.
pub struct SyncedNames {
    settings: Option<Settings>,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    /// Size and time of the state file the tables were read from.
    stamp: Option<(u64, SystemTime)>,
    /// By lower-cased id: DuckDB names are case-insensitive.
    tables: HashMap<String, SyncedTable>,
}

impl SyncedNames {
    /// For `settings`, or for nothing when agnes is not configured here.
    pub fn new(settings: Option<Settings>) -> SyncedNames {
        SyncedNames {
            settings,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The synced tables, by id.
    pub fn list(&self) -> Vec<SyncedTable> {
        let mut tables: Vec<SyncedTable> = self.current().into_values().collect();
        tables.sort_by(|a, b| a.id.cmp(&b.id));
        tables
    }

    /// The parquet file of the synced table `name`, if there is one.
    fn file_of(&self, name: &str) -> Option<PathBuf> {
        let cache = self.refreshed()?;
        let table = cache.tables.get(&name.to_lowercase())?;
        // A copy removed since the state was written: not a synced table.
        table.parquet.exists().then(|| table.parquet.clone())
    }

    fn current(&self) -> HashMap<String, SyncedTable> {
        self.refreshed()
            .map(|cache| cache.tables.clone())
            .unwrap_or_default()
    }

    /// The cache, read again if the state file changed since.
    fn refreshed(&self) -> Option<std::sync::MutexGuard<'_, Cache>> {
        let settings = self.settings.as_ref()?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let stamp = std::fs::metadata(agnes_engine::sync::synced::state_file(settings))
            .ok()
            .and_then(|m| Some((m.len(), m.modified().ok()?)));
        if stamp != cache.stamp {
            let tables = synced_tables(settings).unwrap_or_default();
            cache.tables = tables
                .into_iter()
                .map(|t| (t.id.to_lowercase(), t))
                .collect();
            cache.stamp = stamp;
        }
        Some(cache)
    }
}

/// Registers the replacement scan in `database`, which owns `names` from now
/// on (it frees it when it closes).
///
/// # Safety
/// `database` must be the live handle of the entry point.
pub unsafe fn register(database: ffi::duckdb_database, names: Arc<SyncedNames>) {
    ffi::duckdb_add_replacement_scan(
        database,
        Some(replace),
        Arc::into_raw(names) as *mut c_void,
        Some(release),
    );
}

/// DuckDB's question: does agnes have a table called `name`?
unsafe extern "C" fn replace(
    info: ffi::duckdb_replacement_scan_info,
    name: *const c_char,
    data: *mut c_void,
) {
    // Never a panic into DuckDB: an answer of nothing is always safe.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if name.is_null() || data.is_null() {
            return;
        }
        let names = &*(data as *const SyncedNames);
        let Ok(name) = CStr::from_ptr(name).to_str() else {
            return;
        };
        let Some(file) = names.file_of(name) else {
            return;
        };
        // Taken literally by read_parquet, glob characters and all; a
        // partitioned table's parts by a glob under its folder (DuckDB
        // detects the hive `key=value` folders by itself: a replacement scan
        // can pass no named parameter).
        let mut path = crate::sql::glob_literal(&file.to_string_lossy());
        if file.is_dir() {
            path.push_str("/**/*.parquet");
        }
        let Ok(path) = CString::new(path) else {
            return;
        };
        ffi::duckdb_replacement_scan_set_function_name(info, c"read_parquet".as_ptr());
        let mut value = ffi::duckdb_create_varchar(path.as_ptr());
        ffi::duckdb_replacement_scan_add_parameter(info, value);
        ffi::duckdb_destroy_value(&mut value);
    }));
}

unsafe extern "C" fn release(data: *mut c_void) {
    if !data.is_null() {
        drop(Arc::from_raw(data as *const SyncedNames));
    }
}
