//! Putting a finished temporary file in place of another by renaming it.
//!
//! On Unix a rename replaces a file even while other processes have it open
//! (they go on reading the old one). On Windows it fails while another
//! process holds the file open without delete sharing: a notebook in the
//! middle of a query over a parquet file, an editor with `settings.json`
//! open. That is usually a moment, so the rename is retried for a while;
//! after that the error names the file and says why, and the old file is
//! still there, untouched.

use std::fs::File;
use std::io;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::{NamedTempFile, PersistError};

/// How long a file held open by another program is waited for.
const HELD_OPEN_WAIT: Duration = Duration::from_secs(5);
const RETRY_EVERY: Duration = Duration::from_millis(50);

/// Renames `tmp` over `target`, waiting for another program to let go of it.
pub fn persist(tmp: NamedTempFile, target: &Path) -> Result<File, PersistError> {
    persist_waiting(tmp, target, HELD_OPEN_WAIT, held_open)
}

fn persist_waiting(
    mut tmp: NamedTempFile,
    target: &Path,
    wait: Duration,
    busy: fn(&io::Error) -> bool,
) -> Result<File, PersistError> {
    let started = Instant::now();
    loop {
        match tmp.persist(target) {
            Ok(file) => return Ok(file),
            Err(e) if busy(&e.error) && started.elapsed() < wait => {
                tmp = e.file;
                sleep(RETRY_EVERY);
            }
            Err(e) if busy(&e.error) => {
                let error = io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!(
                        "{} is open in another program (for {:.0} s): {}",
                        target.display(),
                        started.elapsed().as_secs_f64(),
                        e.error
                    ),
                );
                return Err(PersistError {
                    error,
                    file: e.file,
                });
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether a failed rename means "another process has the target open".
#[cfg(windows)]
fn held_open(e: &io::Error) -> bool {
    // ERROR_ACCESS_DENIED, ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION.
    matches!(e.raw_os_error(), Some(5 | 32 | 33))
}

#[cfg(not(windows))]
fn held_open(_: &io::Error) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Write;

    fn temp_with(dir: &Path, text: &str) -> NamedTempFile {
        let mut tmp = NamedTempFile::new_in(dir).unwrap();
        tmp.write_all(text.as_bytes()).unwrap();
        tmp
    }

    #[test]
    fn replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t.parquet");
        fs::write(&target, "old").unwrap();
        persist(temp_with(dir.path(), "new"), &target).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
    }

    // A rename that keeps failing (here: over a non-empty folder, which no
    // OS allows) stands in for Windows' "held open": the error names the
    // file after the wait, and the temporary file is handed back intact.
    #[test]
    fn a_target_that_stays_busy_is_reported_after_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("busy");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), "x").unwrap();
        let started = Instant::now();
        let err = persist_waiting(
            temp_with(dir.path(), "new"),
            &target,
            Duration::from_millis(200),
            |_| true,
        )
        .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(err.error.kind(), io::ErrorKind::ResourceBusy);
        let text = err.error.to_string();
        assert!(text.contains("busy is open in another program"), "{text}");
        assert_eq!(fs::read_to_string(err.file.path()).unwrap(), "new");
        assert!(target.join("inside").exists());
    }

    #[test]
    fn a_target_let_go_during_the_wait_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("busy");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), "x").unwrap();
        let freed = target.clone();
        let release = std::thread::spawn(move || {
            sleep(Duration::from_millis(150));
            fs::remove_dir_all(&freed).unwrap();
        });
        persist_waiting(
            temp_with(dir.path(), "new"),
            &target,
            Duration::from_secs(5),
            |_| true,
        )
        .unwrap();
        release.join().unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
    }

    // On Windows that same failure reads as "held open" (access denied).
    #[cfg(not(windows))]
    #[test]
    fn other_failures_are_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("busy");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), "x").unwrap();
        let started = Instant::now();
        let err = persist(temp_with(dir.path(), "new"), &target).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_ne!(err.error.kind(), io::ErrorKind::ResourceBusy);
    }
}
