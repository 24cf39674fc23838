//! Per-database state of the extension: a connection of our own to the
//! database that loaded agnes, used to read the catalog and create views.
//!
//! Only the entry point can open that connection (DESIGN.md), and while it
//! is open it keeps the database alive. Left alone, that pins the database
//! for the life of the process: in Python, `close()` then `connect()` on the
//! same file waits forever for the old instance to go. So a watchdog thread
//! releases the connection as soon as it is the last one on the database,
//! that is, when every user connection is closed.

use std::sync::{Arc, Mutex, TryLockError, Weak};
use std::thread;
use std::time::Duration;

use duckdb::Connection;

/// How often the watchdog looks; a reopen waits at most about this long.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

type Slot = Mutex<Option<Connection>>;

/// Shared by the table functions of one database through their extra info.
///
/// Never a process-wide static: each `LOAD` in another database gets its own
/// (a static crashed a second database in the same process, DESIGN.md).
#[derive(Clone)]
pub struct Host {
    inner: Arc<Slot>,
}

// SAFETY: the connection is only ever used behind the mutex, one thread at a
// time; DuckDB connections may move between threads.
unsafe impl Send for Host {}
unsafe impl Sync for Host {}

impl Host {
    /// Opens our own connection while the entry point's is still valid, and
    /// starts the watchdog that gives it back.
    pub fn open(entry: &Connection) -> duckdb::Result<Self> {
        let inner = Arc::new(Mutex::new(Some(entry.try_clone()?)));
        let weak = Arc::downgrade(&inner);
        // Without the watchdog agnes still works; the database just stays open.
        let _ = thread::Builder::new()
            .name("agnes-watchdog".into())
            .spawn(move || watch(weak));
        Ok(Host { inner })
    }

    /// Runs `f` on the connection, one caller at a time.
    pub fn with_connection<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, String>,
    ) -> Result<T, String> {
        // A poisoned lock still holds a usable connection: a panic during one
        // call must not disable agnes.
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(con) => f(con),
            None => Err("agnes has released this database (all its connections were closed); LOAD agnes again".into()),
        }
    }
}

/// Polls the number of connections; releases ours when it is the only one.
fn watch(slot: Weak<Slot>) {
    loop {
        thread::sleep(WATCH_INTERVAL);
        let Some(slot) = slot.upgrade() else { return };
        let released = match slot.try_lock() {
            // A sync is running: the user is there.
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Poisoned(e)) => release_if_alone(&mut e.into_inner()),
            Ok(mut guard) => release_if_alone(&mut guard),
        };
        match released {
            // Dropped outside the lock: closing the last connection may shut
            // the database down, which drops the functions' `Host`s.
            Some(Released(con)) => {
                drop(con);
                return;
            }
            None if slot.lock().map(|g| g.is_none()).unwrap_or(true) => return,
            None => {}
        }
    }
}

struct Released(Option<Connection>);

fn release_if_alone(guard: &mut Option<Connection>) -> Option<Released> {
    let con = guard.as_ref()?;
    let count: Result<u64, _> =
        con.query_row("SELECT count FROM duckdb_connection_count()", [], |row| {
            row.get(0)
        });
    match count {
        Ok(n) if n > 1 => None,
        // Alone, or the database is going away.
        _ => Some(Released(guard.take())),
    }
}
