//! When downloaded bytes are made to reach the disk.
//!
//! A download is written to a temporary, verified, then renamed into place.
//! Flushing each file before its rename costs one journal commit per table:
//! at 10,000 tables that was most of a cold sync (issue 25). On Linux the
//! flushes are gathered instead: the files are renamed as they come, and one
//! `syncfs` puts them all on disk before the state file records them. What a
//! power cut can then leave is a renamed file whose bytes never arrived, and
//! the state does not describe it: the next sync sees the file differs from
//! the state (its size and time) and fetches it again. Elsewhere each file
//! is still flushed before its rename.

use std::fs::File;
use std::io;
use std::path::Path;

/// Whether one flush of the whole batch replaces the flush of each file.
const BATCHED: bool = cfg!(target_os = "linux");

/// Called on a verified download just before its rename.
pub fn before_rename(file: &File) -> io::Result<()> {
    match BATCHED {
        true => Ok(()),
        false => file.sync_all(),
    }
}

/// Called once after a batch of downloads under `dir`, before the state
/// that describes them is written.
pub fn batch(dir: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let folder = File::open(dir)?;
        rustix::fs::syncfs(&folder)?;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_flush_of_a_folder_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.parquet"), b"PAR1").unwrap();
        batch(dir.path()).unwrap();
    }

    #[test]
    fn a_missing_folder_is_an_error_not_a_silent_pass() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let e = batch(&gone).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
