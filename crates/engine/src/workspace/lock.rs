//! One sync or upload at a time per workspace: two at once would race on the
//! temporary files, the state file and the rules.

use std::fs::{self, File, TryLockError};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::workspace::layout::Workspace;

/// Held until dropped; the OS releases it if the process dies.
#[derive(Debug)]
pub struct WorkspaceLock {
    _file: File,
}

/// Takes the workspace lock, waiting at most `wait` (or until cancelled),
/// then reports busy.
pub fn lock(workspace: &Workspace, wait: Duration, cancel: &Cancel) -> Result<WorkspaceLock> {
    let path = workspace.lock_file();
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(Error::io("open", &path))?;
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(WorkspaceLock { _file: file }),
            Err(TryLockError::WouldBlock) if cancel.is_cancelled() => {
                return Err(Error::Interrupted)
            }
            Err(TryLockError::WouldBlock) if started.elapsed() < wait => {
                sleep(Duration::from_millis(25))
            }
            Err(TryLockError::WouldBlock) => {
                return Err(Error::Busy(
                    workspace.root().to_path_buf(),
                    started.elapsed().as_secs_f64(),
                ))
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", &path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_waits_then_reports_busy_and_succeeds_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        let none = Cancel::new();
        let first = lock(&ws, Duration::ZERO, &none).unwrap();
        let started = Instant::now();
        let busy = lock(&ws, Duration::from_millis(200), &none).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(matches!(busy, Error::Busy(..)), "{busy}");
        assert!(busy.to_string().contains("another agnes sync is running"));
        // A cancelled wait ends at once, long before its 30 s.
        let cancelled = Cancel::new();
        cancelled.cancel();
        let started = Instant::now();
        let stopped = lock(&ws, Duration::from_secs(30), &cancelled).unwrap_err();
        assert!(matches!(stopped, Error::Interrupted), "{stopped}");
        assert!(started.elapsed() < Duration::from_secs(1));
        drop(first);
        lock(&ws, Duration::ZERO, &none).unwrap();
    }
}
