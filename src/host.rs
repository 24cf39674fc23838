//! Per-database state of the extension: a connection of our own to the
//! database that loaded agnes, used to read the catalog and create views.
//!
//! Only the entry point can open that connection (DESIGN.md), and while it
//! is open it keeps the database alive. Left alone, that pins the database
//! for the life of the process: in Python, `close()` then `connect()` on the
//! same file waits forever for the old instance to go. So a watchdog thread
//! releases the connection as soon as it is the last one on the database,
//! that is, when every user connection is closed. It looks with one prepared
//! statement (no parsing or planning per look): microseconds of CPU.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread;
use std::time::Duration;

use duckdb::ffi;

use crate::sql::{Prepared, RawConnection};

/// How often the watchdog looks; a reopen waits at most about this long.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// Counts the database's connections, ours included.
const PROBE: &str = "SELECT count FROM duckdb_connection_count()";

/// Our connection and the watchdog's statement on it.
struct Held {
    /// Declared first: dropped before the connection it was prepared on.
    probe: Option<Prepared>,
    connection: RawConnection,
}

struct Slot {
    held: Mutex<Option<Held>>,
    /// Wakes the watchdog when the slot goes.
    gone: Condvar,
}

/// Shared by the table functions of one database through their extra info.
///
/// Never a process-wide static: each `LOAD` in another database gets its own
/// (a static crashed a second database in the same process, DESIGN.md).
#[derive(Clone)]
pub struct Host {
    inner: Arc<Slot>,
}

impl Host {
    /// Opens our own connection while the entry point's database handle is
    /// still valid, and starts the watchdog that gives it back.
    ///
    /// # Safety
    /// `database` must be the live handle DuckDB passed to the entry point.
    pub unsafe fn open(database: ffi::duckdb_database) -> Result<Self, String> {
        let connection = RawConnection::connect(database)?;
        let probe = connection.prepare(PROBE).ok();
        let watched = probe.is_some();
        let inner = Arc::new(Slot {
            held: Mutex::new(Some(Held { probe, connection })),
            gone: Condvar::new(),
        });
        if watched {
            let weak = Arc::downgrade(&inner);
            // Without the watchdog agnes still works; the database just stays open.
            let _ = thread::Builder::new()
                .name("agnes-watchdog".into())
                .spawn(move || watch(weak));
        }
        Ok(Host { inner })
    }

    /// Runs `f` on the connection, one caller at a time.
    pub fn with_connection<T>(
        &self,
        f: impl FnOnce(&RawConnection) -> Result<T, String>,
    ) -> Result<T, String> {
        // A poisoned lock still holds a usable connection: a panic during one
        // call must not disable agnes.
        let guard = self.inner.held.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(held) => f(&held.connection),
            None => Err("agnes has released this database (all its connections were closed); LOAD agnes again".into()),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gone.notify_all();
    }
}

/// Every `WATCH_INTERVAL`, counts the connections; takes ours out and closes
/// it when it is the only one left.
fn watch(slot: Weak<Slot>) {
    loop {
        let Some(strong) = slot.upgrade() else { return };
        let guard = strong.held.lock().unwrap_or_else(|e| e.into_inner());
        // Waits without the lock, so a sync is never held up by the watchdog.
        let (mut guard, _) = strong
            .gone
            .wait_timeout(guard, WATCH_INTERVAL)
            .unwrap_or_else(|e| e.into_inner());
        let Some(held) = guard.as_ref() else { return };
        if !alone(held) {
            continue;
        }
        let released = guard.take();
        drop(guard);
        // Outside the lock: closing the last connection may shut the
        // database down, which drops the functions' `Host`s (this slot).
        drop(strong);
        drop(released);
        return;
    }
}

fn alone(held: &Held) -> bool {
    let Some(probe) = &held.probe else {
        return false;
    };
    match probe.query() {
        Ok(rows) => rows
            .first()
            .and_then(|row| row.first().cloned().flatten())
            .and_then(|n| n.parse::<u64>().ok())
            .is_none_or(|n| n <= 1),
        // The database is going away.
        Err(_) => true,
    }
}
