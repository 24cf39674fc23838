//! The `duckdb` child goes with `da`: SIGTERM, SIGINT (Ctrl-C) or SIGHUP on
//! `da` is passed on to the child before `da` dies of it, and on Linux the
//! kernel sends the child SIGTERM when `da` dies any other way (SIGKILL).
//! Otherwise an orphaned `duckdb` would go on syncing and hold the workspace
//! lock, and the next sync would wait for it and fail "busy".
//!
//! The child runs in a process group of its own and the signal goes to the
//! whole group: a `duckdb` on PATH is often a launcher (pip's `duckdb` is a
//! Python script that runs the real binary as its child), and the real one
//! must go too. (After a SIGKILL of `da`, only the direct child is told.)
//!
//! A detached run (`da sync --detach`) is deliberately not covered: it runs
//! in a session of its own and outlives the `da` that started it.

#[cfg(unix)]
pub use imp::*;
#[cfg(not(unix))]
pub use portable::*;

#[cfg(unix)]
mod imp {
    use std::os::unix::process::{CommandExt, ExitStatusExt};

    use std::process::{Command, ExitStatus};
    use std::sync::atomic::{AtomicI32, Ordering};

    /// The running `duckdb` child's pid, 0 when there is none. Read by the
    /// signal handler, so an atomic and nothing else.
    static CHILD: AtomicI32 = AtomicI32::new(0);

    const FORWARDED: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

    /// Installs the handler for the signals that end `da`.
    pub fn install() {
        for signal in FORWARDED {
            // SAFETY: `forward` only calls async-signal-safe functions.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = forward as *const () as libc::sighandler_t;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
    }

    /// Passes the signal on to the child as SIGTERM, then dies of it the
    /// default way, so that whoever waits for `da` sees the signal.
    extern "C" fn forward(signal: libc::c_int) {
        let child = CHILD.load(Ordering::SeqCst);
        // SAFETY: kill, signal and raise are async-signal-safe.
        unsafe {
            if child > 0 && libc::kill(-child, libc::SIGTERM) != 0 {
                libc::kill(child, libc::SIGTERM);
            }
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }

    /// Marks `pid` as the child to pass signals on to, until the guard goes.
    pub struct Tracked;

    impl Tracked {
        pub fn new(pid: u32) -> Tracked {
            CHILD.store(i32::try_from(pid).unwrap_or(0), Ordering::SeqCst);
            Tracked
        }
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            CHILD.store(0, Ordering::SeqCst);
        }
    }

    /// Makes `command`'s process die with this one (Linux: PR_SET_PDEATHSIG).
    /// Elsewhere the signal handler above does it for the signals that can be
    /// caught.
    pub fn die_with_parent(command: &mut Command) {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: getpid/prctl/getppid are async-signal-safe, as a pre_exec
            // closure requires.
            let parent = unsafe { libc::getpid() };
            unsafe {
                command.pre_exec(move || {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // The parent may have died before the prctl: then no signal
                    // will come, so do not start at all.
                    if libc::getppid() != parent {
                        return Err(std::io::Error::other("da ended before duckdb started"));
                    }
                    Ok(())
                });
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = command;
    }

    /// Puts `command`'s process in a process group of its own (its pid), which
    /// the signal handler signals as a whole.
    pub fn own_group(command: &mut Command) {
        command.process_group(0);
    }

    /// Puts `command`'s process in a new session (and so a new process group,
    /// without a controlling terminal): a terminal's Ctrl-C or hang-up and a
    /// kill of the caller's process group do not reach it.
    pub fn own_session(command: &mut Command) {
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            command.pre_exec(|| match libc::setsid() {
                -1 => Err(std::io::Error::last_os_error()),
                _ => Ok(()),
            });
        }
    }

    /// "signal 11 (SIGSEGV)".
    pub fn describe(signal: i32) -> String {
        let name = match signal {
            libc::SIGHUP => "SIGHUP",
            libc::SIGINT => "SIGINT",
            libc::SIGQUIT => "SIGQUIT",
            libc::SIGILL => "SIGILL",
            libc::SIGTRAP => "SIGTRAP",
            libc::SIGABRT => "SIGABRT",
            libc::SIGBUS => "SIGBUS",
            libc::SIGFPE => "SIGFPE",
            libc::SIGKILL => "SIGKILL",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGPIPE => "SIGPIPE",
            libc::SIGTERM => "SIGTERM",
            _ => return format!("signal {signal}"),
        };
        format!("signal {signal} ({name})")
    }

    /// Whether a process dying of `signal` crashed (rather than being stopped
    /// from outside).
    pub fn is_crash(signal: i32) -> bool {
        matches!(
            signal,
            libc::SIGSEGV
                | libc::SIGBUS
                | libc::SIGILL
                | libc::SIGFPE
                | libc::SIGABRT
                | libc::SIGTRAP
        )
    }

    /// The signal a process died of, if it did.
    pub fn signal_of(status: &ExitStatus) -> Option<i32> {
        status.signal()
    }
}

/// Where there are no signals to pass on (Windows): nothing to install, and
/// a child is ended by its parent's console going.
#[cfg(not(unix))]
mod portable {
    use std::process::{Command, ExitStatus};

    pub fn install() {}

    pub struct Tracked;

    impl Tracked {
        pub fn new(_pid: u32) -> Tracked {
            Tracked
        }
    }

    pub fn die_with_parent(_command: &mut Command) {}

    pub fn own_group(_command: &mut Command) {}

    pub fn own_session(_command: &mut Command) {}

    pub fn describe(signal: i32) -> String {
        format!("signal {signal}")
    }

    pub fn is_crash(_signal: i32) -> bool {
        false
    }

    pub fn signal_of(_status: &ExitStatus) -> Option<i32> {
        None
    }
}
