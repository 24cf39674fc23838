//! Per-database state of the extension: a connection of our own to the
//! database that loaded agnes, used to read settings and create views.

use std::sync::{Arc, Mutex, MutexGuard};

use duckdb::Connection;

/// Shared by the table functions of one database through their extra info.
///
/// Never a process-wide static: each `LOAD` in another database gets its own
/// (a static crashed a second database in the same process, DESIGN.md).
#[derive(Clone)]
pub struct Host {
    inner: Arc<Mutex<Connection>>,
}

// SAFETY: the connection is only ever used behind the mutex, one thread at a
// time; DuckDB connections may move between threads.
unsafe impl Send for Host {}
unsafe impl Sync for Host {}

impl Host {
    /// Opens our own connection while the entry point's is still valid.
    pub fn open(entry: &Connection) -> duckdb::Result<Self> {
        Ok(Host {
            inner: Arc::new(Mutex::new(entry.try_clone()?)),
        })
    }

    /// The connection, locked. A poisoned lock still holds a usable
    /// connection: a panic during one call must not disable agnes.
    pub fn connection(&self) -> MutexGuard<'_, Connection> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}
