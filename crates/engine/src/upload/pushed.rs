//! Upstream's ledger of uploaded transcripts
//! (`.claude/agnes-sessions-uploaded.txt`, written by `agnes push` of 0.84):
//! a transcript of the same size that agnes has not sent itself counts as
//! sent (issue 24; the rest of taking over a workspace an older client
//! filled is `sync/adopt.rs`).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::workspace::layout::Workspace;

/// Upstream's ledger of uploaded transcripts, relative to the workspace.
const PUSH_LEDGER: [&str; 2] = [".claude", "agnes-sessions-uploaded.txt"];
/// Ledgers bigger than this are not read (as upstream's sync records,
/// `sync/adopt.rs`).
const MAX_LEDGER: u64 = 64 * 1024 * 1024;

/// Upstream's ledger of uploaded transcripts: session id (the file name
/// without `.jsonl`) to the size it had when sent; the largest wins, as
/// upstream reads it. Nothing when there is no ledger.
pub fn pushed_sessions(workspace: &Workspace) -> HashMap<String, u64> {
    let path: PathBuf = PUSH_LEDGER
        .iter()
        .fold(workspace.root().into(), |p, s| p.join(s));
    let mut out = HashMap::new();
    let Ok(meta) = fs::metadata(&path) else {
        return out;
    };
    if !meta.is_file() || meta.len() > MAX_LEDGER {
        return out;
    }
    let Ok(text) = fs::read_to_string(&path) else {
        return out;
    };
    for line in text.lines() {
        let mut fields = line.split('\t');
        let (Some(id), Some(size)) = (fields.next(), fields.next()) else {
            continue;
        };
        let (id, Ok(size)) = (id.trim(), size.trim().parse::<u64>()) else {
            continue;
        };
        if !id.is_empty() {
            let kept = out.entry(id.to_string()).or_insert(size);
            *kept = (*kept).max(size);
        }
    }
    out
}

/// Whether upstream's ledger says the transcript at `path`, of `size` bytes,
/// was uploaded: its session id with that very size.
pub fn pushed(ledger: &HashMap<String, u64>, path: &Path, size: u64) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".jsonl"))
        .is_some_and(|id| ledger.get(id) == Some(&size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_upload_ledger_is_read_as_upstream_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path().join("ws"));
        let ledger = ws.root().join(".claude/agnes-sessions-uploaded.txt");
        fs::create_dir_all(ledger.parent().unwrap()).unwrap();
        fs::write(
            &ledger,
            b"s1\t100\t2026-01-01T00:00:00Z\ns1\t250\t2026-01-02T00:00:00Z\n\
              2026-01-01T00:00:00Z\t/legacy/path.jsonl\n\ngarbage\ns2\t7\n",
        )
        .unwrap();
        let ledger = pushed_sessions(&ws);
        assert_eq!(ledger.len(), 2);
        assert!(pushed(&ledger, Path::new("/p/s1.jsonl"), 250));
        assert!(!pushed(&ledger, Path::new("/p/s1.jsonl"), 100));
        assert!(pushed(&ledger, Path::new("/p/s2.jsonl"), 7));
        assert!(!pushed(&ledger, Path::new("/p/s3.jsonl"), 7));
        assert!(pushed_sessions(&Workspace::new("/nonexistent")).is_empty());
    }
}
