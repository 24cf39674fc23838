//! The record of the last runs on a workspace: one short JSON report per
//! sync or upload in `<workspace>/.agnes/runs/`, so that a run whose output
//! nobody saw (a Claude Code hook, a detached upload) can be looked at
//! afterwards (`da status`). Only the newest `KEEP` runs are kept.
//!
//! A run writes its report twice: `running` when it starts, so that a run
//! that is still going (or was killed) shows up, and its outcome at the end.
//! A run's other files (`<id>.out`, `<id>.err`: the output of a detached run)
//! share its id and go with it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::workspace::layout::Workspace;

/// How many runs are kept.
pub const KEEP: usize = 20;

/// What a run is doing or how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Started, not ended: still going, or killed before it could say.
    Running,
    /// Everything was done.
    Done,
    /// Done, but some tables or files failed.
    Partial,
    /// Nothing could be done.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Done => "done",
            Outcome::Partial => "partial",
            Outcome::Failed => "failed",
        }
    }
}

/// One run's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Sorts like the start time: `2026-11-24T090203.123Z-4242`.
    pub id: String,
    /// What was run, e.g. `da sync --upload-first`.
    pub command: String,
    /// RFC 3339, UTC.
    pub started: String,
    #[serde(default)]
    pub finished: Option<String>,
    #[serde(default)]
    pub seconds: Option<f64>,
    pub pid: u32,
    /// Run in a process of its own, detached from whoever started it (hooks).
    #[serde(default)]
    pub detached: bool,
    pub outcome: Outcome,
    /// What it did, one short line each (`downloaded 4 tables`).
    #[serde(default)]
    pub did: Vec<String>,
    /// What failed, one line each, with its table or file.
    #[serde(default)]
    pub errors: Vec<String>,
    /// Warnings and notes worth seeing later.
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Run {
    /// A run starting now in this process.
    pub fn start(command: impl Into<String>, detached: bool) -> Run {
        Run::start_as(
            new_id(SystemTime::now(), std::process::id()),
            command,
            detached,
        )
    }

    /// A run starting now under an id chosen before (by the process that
    /// started this one detached).
    pub fn start_as(id: String, command: impl Into<String>, detached: bool) -> Run {
        Run {
            id,
            command: command.into(),
            started: rfc3339(SystemTime::now()),
            finished: None,
            seconds: None,
            pid: std::process::id(),
            detached,
            outcome: Outcome::Running,
            did: Vec::new(),
            errors: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Marks the run ended, `elapsed` after it started.
    pub fn finish(&mut self, outcome: Outcome, elapsed: Duration) {
        self.outcome = outcome;
        self.finished = Some(rfc3339(SystemTime::now()));
        // Milliseconds are enough for people, and keep the file short.
        self.seconds = Some((elapsed.as_secs_f64() * 1000.0).round() / 1000.0);
    }
}

/// A run id: the start time in UTC, file-name safe and sorting like time,
/// then the process id (two runs may start in one millisecond).
pub fn new_id(at: SystemTime, pid: u32) -> String {
    let stamp = humantime::format_rfc3339_millis(at)
        .to_string()
        .replace(':', "");
    format!("{stamp}-{pid}")
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// `<runs dir>/<id>.<extension>`.
pub fn file(workspace: &Workspace, id: &str, extension: &str) -> PathBuf {
    workspace.runs_dir().join(format!("{id}.{extension}"))
}

/// Creates the runs folder. The error is the raw one, so that the caller can
/// tell a read-only workspace from other trouble.
pub fn prepare(workspace: &Workspace) -> io::Result<PathBuf> {
    let dir = workspace.runs_dir();
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Writes (or rewrites) a run's report atomically, then drops the runs
/// beyond the newest `KEEP`.
pub fn save(workspace: &Workspace, run: &Run) -> io::Result<()> {
    let dir = prepare(workspace)?;
    let json = serde_json::to_vec_pretty(run).map_err(io::Error::other)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".run-")
        .suffix(".tmp")
        .tempfile_in(&dir)?;
    io::Write::write_all(&mut tmp, &json)?;
    tmp.persist(file(workspace, &run.id, "json"))
        .map_err(|e| e.error)?;
    prune(&dir, KEEP);
    Ok(())
}

/// The newest `n` reports, newest first. Unreadable ones are skipped: they
/// are a record, not state anything depends on.
pub fn recent(workspace: &Workspace, n: usize) -> Vec<Run> {
    let mut ids = run_ids(&workspace.runs_dir());
    ids.reverse();
    ids.into_iter()
        .filter_map(|id| {
            let bytes = fs::read(file(workspace, &id, "json")).ok()?;
            serde_json::from_slice::<Run>(&bytes).ok()
        })
        .take(n)
        .collect()
}

/// The ids of the runs with files in `dir`, oldest first.
fn run_ids(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let (id, _) = name.rsplit_once('.')?;
            // Temporary files start with a dot; ids start with the year.
            id.starts_with(|c: char| c.is_ascii_digit())
                .then(|| id.to_string())
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Removes every file of the runs older than the newest `keep`.
fn prune(dir: &Path, keep: usize) {
    let ids = run_ids(dir);
    let old = ids.len().saturating_sub(keep);
    for id in &ids[..old] {
        for extension in ["json", "out", "err"] {
            let _ = fs::remove_file(dir.join(format!("{id}.{extension}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_like_time_and_are_file_names() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_465_955_625);
        let a = new_id(t, 99);
        let b = new_id(t + Duration::from_millis(1), 1);
        assert_eq!(a, "2026-11-23T203235.625Z-99");
        assert!(a < b);
        assert!(!a.contains(':') && !a.contains('/'));
    }

    #[test]
    fn a_run_is_saved_running_then_ended_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        assert!(recent(&ws, 5).is_empty());
        let mut run = Run::start("da sync", true);
        save(&ws, &run).unwrap();
        assert_eq!(recent(&ws, 5)[0].outcome, Outcome::Running);
        run.did.push("downloaded 4 tables".into());
        run.errors.push("orders: HTTP 404".into());
        run.finish(Outcome::Partial, Duration::from_millis(1234));
        save(&ws, &run).unwrap();
        let back = recent(&ws, 5);
        assert_eq!(back, vec![run.clone()]);
        assert_eq!(back[0].seconds, Some(1.234));
        assert!(back[0].detached);
        // Only the report is left: no temporary file.
        let names: Vec<_> = fs::read_dir(ws.runs_dir()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn only_the_newest_runs_are_kept_with_their_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut ids = Vec::new();
        for i in 0..(KEEP as u64 + 3) {
            let id = new_id(t0 + Duration::from_secs(i), 7);
            let mut run = Run::start_as(id.clone(), format!("run {i}"), false);
            run.finish(Outcome::Done, Duration::ZERO);
            fs::create_dir_all(ws.runs_dir()).unwrap();
            fs::write(file(&ws, &id, "out"), "x").unwrap();
            save(&ws, &run).unwrap();
            ids.push(id);
        }
        let kept = recent(&ws, 100);
        assert_eq!(kept.len(), KEEP);
        assert_eq!(kept[0].command, format!("run {}", KEEP + 2));
        assert_eq!(kept[KEEP - 1].command, "run 3");
        for old in &ids[..3] {
            assert!(!file(&ws, old, "json").exists() && !file(&ws, old, "out").exists());
        }
        assert!(file(&ws, &ids[3], "out").exists());
        // A damaged report is skipped, not fatal.
        fs::write(file(&ws, &ids[KEEP + 2], "json"), "{").unwrap();
        assert_eq!(recent(&ws, 1)[0].command, format!("run {}", KEEP + 1));
    }
}
