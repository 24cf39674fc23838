//! Progress of downloads, for a display on a terminal. The engine reports;
//! whoever shows it decides how.

/// Receives per-table byte progress from the download workers.
pub trait Progress: Sync {
    fn start(&self, table: &str, total_bytes: Option<u64>);
    fn advance(&self, table: &str, bytes: u64);
    fn finish(&self, table: &str, ok: bool);
}

/// Shows nothing: SQL callers and quiet hooks.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: &str, _: u64) {}
    fn finish(&self, _: &str, _: bool) {}
}
