//! What an upload reports: one row per file (`UploadOutcome`: which kind
//! of file, what happened to it as an `Action`), and the notices.

use std::path::PathBuf;

/// Which kind of file a row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `user/sessions/*.jsonl` transcript.
    Session,
    /// `.claude/CLAUDE.local.md`.
    LocalMd,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::LocalMd => "local_md",
        }
    }
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Uploaded,
    /// Already uploaded to this server with the same content; not sent.
    Unchanged,
    WouldUpload,
    Failed,
    /// Not read at all (a symlink, a second copy of one transcript); the
    /// note says why.
    Skipped,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Uploaded => "uploaded",
            Action::Unchanged => "unchanged",
            Action::WouldUpload => "would_upload",
            Action::Failed => "failed",
            Action::Skipped => "skipped",
        }
    }
}

/// One row of `agnes_upload()`.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadOutcome {
    pub kind: Kind,
    pub path: PathBuf,
    pub action: Action,
    /// The file's size: what was (or would be) sent, or was sent before.
    pub bytes: Option<u64>,
    /// Why the file failed.
    pub error: Option<String>,
    /// Something worth knowing: why it was skipped, the name it was sent
    /// under, secrets removed, gzip.
    pub note: Option<String>,
}

/// Everything an upload did.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadReport {
    pub server: String,
    pub workspace: PathBuf,
    pub files: Vec<UploadOutcome>,
    /// Workspace-level warnings (a damaged or unwritable upload state).
    pub notices: Vec<String>,
}
