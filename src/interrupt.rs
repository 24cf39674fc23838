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
//! `KeyboardInterrupt`). It is there only while an agnes call runs: each
//! call puts it in front of whatever handler the host has at that moment,
//! and the last call to end gives the host's back. Hosts change their
//! handler between statements (ipykernel sets Python's around every cell
//! and ignores SIGINT between cells), so a handler installed once per
//! process would be gone by the second cell. Where Ctrl-C has its default
//! meaning (end the process) or is ignored, agnes changes nothing.

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
    /// Held here, not by the thread, so that the host's handler is given
    /// back as the scan ends rather than at the thread's next look.
    _watch: sigint::Watch,
}

impl CancelOnSigint {
    pub fn new() -> CancelOnSigint {
        use std::sync::atomic::{AtomicBool, Ordering};
        let cancel = Cancel::new();
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let watch = sigint::watch();
        let (c, d, since) = (cancel.clone(), done.clone(), watch.since());
        // Without the watcher the read still ends at its network bounds.
        let _ = thread::Builder::new()
            .name("agnes-sigint".into())
            .spawn(move || {
                while !d.load(Ordering::Relaxed) {
                    if since.interrupted() {
                        c.cancel();
                        return;
                    }
                    thread::sleep(LOOK_EVERY);
                }
            });
        CancelOnSigint {
            cancel,
            done,
            _watch: watch,
        }
    }
}

impl Drop for CancelOnSigint {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(unix)]
mod sigint {
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Mutex, MutexGuard};

    /// SIGINTs seen while agnes's handler was in place.
    static SEEN: AtomicU64 = AtomicU64::new(0);

    /// The host's handler that `on_sigint` passes each signal on to, as the
    /// handler reads it (a lock is no use in a signal handler).
    static HOST_HANDLER: AtomicUsize = AtomicUsize::new(libc::SIG_DFL);
    static HOST_SIGINFO: AtomicBool = AtomicBool::new(false);

    /// Watches alive, and the host's whole disposition (mask and flags
    /// too) to put back when the last ends.
    struct Held {
        watches: usize,
        host: Option<libc::sigaction>,
    }

    static HELD: Mutex<Held> = Mutex::new(Held {
        watches: 0,
        host: None,
    });

    fn held() -> MutexGuard<'static, Held> {
        HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// SIGINTs seen since a point in time; `Copy`, for a watching thread.
    #[derive(Clone, Copy)]
    pub struct Since {
        baseline: u64,
    }

    impl Since {
        pub fn interrupted(&self) -> bool {
            SEEN.load(Ordering::SeqCst) != self.baseline
        }
    }

    /// agnes's handler in front of the host's while it lives.
    pub struct Watch {
        since: Since,
    }

    impl Watch {
        pub fn interrupted(&self) -> bool {
            self.since.interrupted()
        }

        pub fn since(&self) -> Since {
            self.since
        }
    }

    impl Drop for Watch {
        fn drop(&mut self) {
            let mut held = held();
            held.watches -= 1;
            if held.watches == 0 {
                give_back(&mut held);
            }
        }
    }

    /// Puts agnes's handler in front of the host's current one (again,
    /// when the host replaced it since another watch began).
    pub fn watch() -> Watch {
        let mut held = held();
        held.watches += 1;
        take_over(&mut held);
        Watch {
            since: Since {
                baseline: SEEN.load(Ordering::SeqCst),
            },
        }
    }

    fn ours() -> usize {
        on_sigint as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) as usize
    }

    /// The current disposition of SIGINT, if it can be read.
    fn current() -> Option<libc::sigaction> {
        // SAFETY: reads the disposition only, into a zeroed struct.
        unsafe {
            let mut now: libc::sigaction = std::mem::zeroed();
            (libc::sigaction(libc::SIGINT, std::ptr::null(), &mut now) == 0).then_some(now)
        }
    }

    fn take_over(held: &mut Held) {
        let Some(host) = current() else { return };
        let handler = host.sa_sigaction;
        // Ours already; or the host has no handler: Ctrl-C keeps its
        // default meaning (or stays ignored) and agnes adds none.
        if handler == ours() || handler == libc::SIG_DFL || handler == libc::SIG_IGN {
            return;
        }
        // Written before ours is in place: a signal never finds it unset.
        HOST_SIGINFO.store(host.sa_flags & libc::SA_SIGINFO != 0, Ordering::SeqCst);
        HOST_HANDLER.store(handler, Ordering::SeqCst);
        let mut mine = host;
        mine.sa_sigaction = ours();
        mine.sa_flags |= libc::SA_SIGINFO;
        // SAFETY: `on_sigint` only increments an atomic and calls the
        // host's handler as the host registered it; same mask and flags.
        if unsafe { libc::sigaction(libc::SIGINT, &mine, std::ptr::null_mut()) } == 0 {
            held.host = Some(host);
        }
    }

    /// The host's handler back, unless the host has set another since
    /// (that one stands).
    fn give_back(held: &mut Held) {
        let Some(host) = held.host.take() else { return };
        if current().is_some_and(|now| now.sa_sigaction == ours()) {
            // SAFETY: the disposition the host had, as read from the kernel.
            unsafe { libc::sigaction(libc::SIGINT, &host, std::ptr::null_mut()) };
        }
    }

    /// Counts the signal and hands it to the host's handler.
    extern "C" fn on_sigint(
        signal: libc::c_int,
        info: *mut libc::siginfo_t,
        context: *mut libc::c_void,
    ) {
        SEEN.fetch_add(1, Ordering::SeqCst);
        let handler = HOST_HANDLER.load(Ordering::SeqCst);
        if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
            return;
        }
        // SAFETY: `handler` is the host's handler as the kernel held it,
        // of the form its SA_SIGINFO flag says.
        unsafe {
            if HOST_SIGINFO.load(Ordering::SeqCst) {
                let host: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    std::mem::transmute(handler);
                host(signal, info, context);
            } else {
                let host: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
                host(signal);
            }
        }
    }
}

#[cfg(not(unix))]
mod sigint {
    /// No signal watch here: a run ends at its network bounds.
    pub struct Watch;

    #[derive(Clone, Copy)]
    pub struct Since;

    impl Since {
        pub fn interrupted(&self) -> bool {
            false
        }
    }

    impl Watch {
        pub fn interrupted(&self) -> bool {
            false
        }

        pub fn since(&self) -> Since {
            Since
        }
    }

    pub fn watch() -> Watch {
        Watch
    }
}

/// The one test of this process that touches SIGINT's disposition (it is
/// process-wide), so its steps run in order in one function.
#[cfg(all(test, unix))]
mod tests {
    use super::sigint;
    use std::sync::atomic::{AtomicU32, Ordering};

    static HOST_SAW: AtomicU32 = AtomicU32::new(0);

    extern "C" fn host(_: libc::c_int) {
        HOST_SAW.fetch_add(1, Ordering::SeqCst);
    }

    fn set(handler: libc::sighandler_t, flags: libc::c_int) {
        // SAFETY: a plain handler or SIG_DFL/SIG_IGN, for this test process.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler;
            action.sa_flags = flags;
            assert_eq!(
                libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()),
                0
            );
        }
    }

    fn now() -> (libc::sighandler_t, libc::c_int) {
        // SAFETY: reads the disposition only.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGINT, std::ptr::null(), &mut action);
            (action.sa_sigaction, action.sa_flags)
        }
    }

    fn raise() {
        // SAFETY: the handler in place is ours or `host`; both return.
        unsafe { libc::raise(libc::SIGINT) };
    }

    #[test]
    fn the_handler_is_agnes_s_only_while_a_call_runs() {
        let host = host as extern "C" fn(libc::c_int) as libc::sighandler_t;
        set(host, libc::SA_RESTART);
        let host_disposition = now();

        // A call: agnes's handler sees the signal and hands it on.
        let watch = sigint::watch();
        assert_ne!(now().0, host);
        raise();
        assert!(watch.interrupted());
        assert_eq!(HOST_SAW.load(Ordering::SeqCst), 1);
        drop(watch);
        assert_eq!(now(), host_disposition, "the host's disposition, flags too");

        // Between calls the signal is the host's alone.
        let before = sigint::watch().since();
        raise();
        assert_eq!(HOST_SAW.load(Ordering::SeqCst), 2);
        assert!(!before.interrupted());

        // A host that ignores SIGINT, then sets its handler again (ipykernel
        // around each cell), while a scan of an earlier cell still lives:
        // the next call takes over again, and the last to end gives back.
        let lingering = sigint::watch();
        set(libc::SIG_IGN, 0);
        set(host, 0);
        let host_disposition = now();
        let call = sigint::watch();
        raise();
        assert!(call.interrupted());
        assert_eq!(HOST_SAW.load(Ordering::SeqCst), 3);
        drop(call);
        drop(lingering);
        assert_eq!(now(), host_disposition);

        // The host replaces its handler during a call: its new one stands.
        let call = sigint::watch();
        set(libc::SIG_IGN, 0);
        drop(call);
        assert_eq!(now().0, libc::SIG_IGN);

        // No handler of the host's: agnes adds none.
        for disposition in [libc::SIG_IGN, libc::SIG_DFL] {
            set(disposition, 0);
            let call = sigint::watch();
            assert_eq!(now().0, disposition);
            drop(call);
            assert_eq!(now().0, disposition);
        }
    }
}
