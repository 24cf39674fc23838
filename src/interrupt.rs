//! Running a table function's work so that the user can stop it.
//!
//! DuckDB gives a C API table function no way to learn that its query was
//! interrupted: the executor only looks between chunks, and a sync has no
//! chunk to give until it is done. So the work runs on a thread of its own
//! while the calling thread waits in short steps, watching for SIGINT (what
//! Ctrl-C in the `duckdb` CLI and in Python sends). On one it cancels the
//! work, which abandons its downloads (their temporary files removed) and
//! keeps what had finished, waits a moment for that, and fails the call.
//!
//! The SIGINT watch is a handler chained in front of the host's own, which
//! still runs as before (the CLI cancels its query, Python raises
//! `KeyboardInterrupt`). It is installed only where the host has a handler
//! of its own: where Ctrl-C has its default meaning (end the process),
//! agnes does not change that.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use agnes_engine::Cancel;

/// How often the waiting thread looks for an interrupt.
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// How long an interrupted run is given to tidy up (temporary files, state,
/// views of what finished) before the call returns anyway.
const TIDY_UP: Duration = Duration::from_millis(1500);

/// Runs `work` on its own thread; returns its result, or an error when the
/// user interrupts (or the work panics).
pub fn run<T: Send + 'static>(
    work: impl FnOnce(&Cancel) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let cancel = Cancel::new();
    let watch = sigint::watch();
    let (done, outcome) = mpsc::channel();
    let worker_cancel = cancel.clone();
    thread::Builder::new()
        .name("agnes-run".into())
        .spawn(move || {
            let result =
                catch_unwind(AssertUnwindSafe(|| work(&worker_cancel))).unwrap_or_else(|_| {
                    Err("agnes failed (internal error); nothing else was changed".into())
                });
            let _ = done.send(result);
        })
        .map_err(|e| format!("cannot start agnes's worker thread: {e}"))?;
    loop {
        match outcome.recv_timeout(LOOK_EVERY) {
            Ok(result) => return result,
            Err(RecvTimeoutError::Disconnected) => {
                return Err("agnes failed (internal error)".into())
            }
            Err(RecvTimeoutError::Timeout) if watch.interrupted() => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
    cancel.cancel();
    let until = Instant::now() + TIDY_UP;
    while Instant::now() < until {
        if outcome.recv_timeout(LOOK_EVERY).is_ok() {
            break;
        }
    }
    Err(agnes_engine::Error::Interrupted.to_string())
}

/// While it lives, a SIGINT cancels its `Cancel`: for work that runs on
/// DuckDB's own thread a chunk at a time (a scan's stream), where a
/// blocking read must end when the user presses Ctrl-C.
pub struct CancelOnSigint {
    pub cancel: Cancel,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl CancelOnSigint {
    pub fn new() -> CancelOnSigint {
        use std::sync::atomic::{AtomicBool, Ordering};
        let cancel = Cancel::new();
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let watch = sigint::watch();
        let (c, d) = (cancel.clone(), done.clone());
        // Without the watcher the read still ends at its network bounds.
        let _ = thread::Builder::new()
            .name("agnes-sigint".into())
            .spawn(move || {
                while !d.load(Ordering::Relaxed) {
                    if watch.interrupted() {
                        c.cancel();
                        return;
                    }
                    thread::sleep(LOOK_EVERY);
                }
            });
        CancelOnSigint { cancel, done }
    }
}

impl Drop for CancelOnSigint {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(unix)]
mod sigint {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Once;

    static SEEN: AtomicU64 = AtomicU64::new(0);
    static INSTALL: Once = Once::new();

    /// SIGINTs seen since `watch()` was called.
    pub struct Watch {
        baseline: u64,
    }

    impl Watch {
        pub fn interrupted(&self) -> bool {
            SEEN.load(Ordering::SeqCst) != self.baseline
        }
    }

    pub fn watch() -> Watch {
        INSTALL.call_once(install);
        Watch {
            baseline: SEEN.load(Ordering::SeqCst),
        }
    }

    fn install() {
        if !host_handles_sigint() {
            return;
        }
        // SAFETY: the action only increments an atomic (async-signal-safe);
        // the registry chains to the host's handler.
        let _ = unsafe {
            signal_hook_registry::register(libc::SIGINT, || {
                SEEN.fetch_add(1, Ordering::SeqCst);
            })
        };
    }

    /// Whether SIGINT has a handler of the host's (not the default action,
    /// not ignored).
    fn host_handles_sigint() -> bool {
        // SAFETY: reads the current disposition only.
        unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGINT, std::ptr::null(), &mut current) != 0 {
                return false;
            }
            current.sa_sigaction != libc::SIG_DFL && current.sa_sigaction != libc::SIG_IGN
        }
    }
}

#[cfg(not(unix))]
mod sigint {
    /// No signal watch here: a run ends at its network bounds.
    pub struct Watch;

    impl Watch {
        pub fn interrupted(&self) -> bool {
            false
        }
    }

    pub fn watch() -> Watch {
        Watch
    }
}
