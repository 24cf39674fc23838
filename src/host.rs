//! Per-database state of the extension: a connection of our own to the
//! database that loaded agnes, used to read the catalog and create views.
//!
//! Only the entry point can open that connection (DESIGN.md), and while it
//! is open it keeps the database alive. Left alone, that pins the database
//! for the life of the process: in Python, `close()` then `connect()` on the
//! same file waits forever for the old instance to go. So a watchdog thread
//! releases the connection as soon as it is the last one on the database,
//! that is, when every user connection is closed.
//!
//! A look is one prepared statement, about 0.3 ms of CPU. The watchdog looks
//! every 100 ms while anything changes (connections opened or closed, agnes
//! used) and slows down to once a second when nothing does, so an idle
//! process pays a fraction of a millisecond per second, and a reopen after
//! long idleness waits at most a second.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread;
use std::time::Duration;

use duckdb::ffi;

use crate::names::SyncedNames;
use crate::sql::{Prepared, RawConnection};

/// How often the watchdog looks while things change, and at the slowest.
const WATCH_FAST: Duration = Duration::from_millis(100);
const WATCH_SLOW: Duration = Duration::from_secs(1);

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
    /// Set by each use of the connection: the watchdog looks often again.
    used: AtomicBool,
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
    /// The workspace's synced tables, as the replacement scan sees them.
    pub names: Arc<SyncedNames>,
}

impl Host {
    /// Opens our own connection while the entry point's database handle is
    /// still valid, and starts the watchdog that gives it back.
    ///
    /// # Safety
    /// `database` must be the live handle DuckDB passed to the entry point.
    pub unsafe fn open(
        database: ffi::duckdb_database,
        names: Arc<SyncedNames>,
    ) -> Result<Self, String> {
        let connection = RawConnection::connect(database)?;
        let probe = connection.prepare(PROBE).ok();
        let watched = probe.is_some();
        let inner = Arc::new(Slot {
            held: Mutex::new(Some(Held { probe, connection })),
            used: AtomicBool::new(false),
            gone: Condvar::new(),
        });
        if watched {
            let weak = Arc::downgrade(&inner);
            // Without the watchdog agnes still works; the database just stays open.
            let _ = thread::Builder::new()
                .name("agnes-watchdog".into())
                .spawn(move || watch(weak));
        }
        Ok(Host { inner, names })
    }

    /// Runs `f` on the connection if nobody is using it; `None` when it is
    /// busy (a statement of agnes's own running on it, which may be binding
    /// the very call that asks: a view over `agnes_scan()` being created).
    pub fn try_with_connection<T>(
        &self,
        f: impl FnOnce(&RawConnection) -> Result<T, String>,
    ) -> Option<Result<T, String>> {
        let guard = match self.inner.held.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        self.inner.used.store(true, Ordering::Relaxed);
        Some(match guard.as_ref() {
            Some(held) => f(&held.connection),
            None => Err("agnes has released this database (all its connections were closed); LOAD agnes again".into()),
        })
    }

    /// Runs `f` on the connection, one caller at a time.
    pub fn with_connection<T>(
        &self,
        f: impl FnOnce(&RawConnection) -> Result<T, String>,
    ) -> Result<T, String> {
        // A poisoned lock still holds a usable connection: a panic during one
        // call must not disable agnes.
        let guard = self.inner.held.lock().unwrap_or_else(|e| e.into_inner());
        self.inner.used.store(true, Ordering::Relaxed);
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

/// Counts the connections now and then; takes ours out and closes it when
/// it is the only one left.
fn watch(slot: Weak<Slot>) {
    let mut interval = WATCH_FAST;
    let mut last_count = None;
    loop {
        let Some(strong) = slot.upgrade() else { return };
        let guard = strong.held.lock().unwrap_or_else(|e| e.into_inner());
        // Waits without the lock, so a sync is never held up by the watchdog.
        let (mut guard, _) = strong
            .gone
            .wait_timeout(guard, interval)
            .unwrap_or_else(|e| e.into_inner());
        let Some(held) = guard.as_ref() else { return };
        let count = connections(held);
        if count.is_some_and(|n| n > 1) {
            let used = strong.used.swap(false, Ordering::Relaxed);
            interval = match used || count != last_count {
                true => WATCH_FAST,
                false => (interval * 5 / 4).min(WATCH_SLOW),
            };
            last_count = count;
            continue;
        }
        // Alone, or the database is going away.
        let released = guard.take();
        drop(guard);
        // Outside the lock: closing the last connection may shut the
        // database down, which drops the functions' `Host`s (this slot).
        drop(strong);
        drop(released);
        return;
    }
}

/// The number of connections to the database, ours included; `None` when
/// it cannot be asked (the database is going away).
fn connections(held: &Held) -> Option<u64> {
    let probe = held.probe.as_ref()?;
    let rows = probe.query().ok()?;
    rows.first()?.first()?.as_ref()?.parse().ok()
}
