//! Errors that stop a whole run. A failure of one table is not one of these:
//! it is a `TableOutcome` with its reason, and the others go on.

use std::path::PathBuf;

/// Why a sync, manifest or upload call could not be done at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("agnes configuration: {0}")]
    Config(String),

    #[error(
        "no Agnes token: pass token := '...', set AGNES_TOKEN, or run `da login` (looked in {0})"
    )]
    NoToken(PathBuf),

    #[error("{what} from {url} failed: {reason}")]
    Http {
        what: &'static str,
        url: String,
        reason: String,
    },

    #[error("{url} refused the token (401): {detail}. Run `da login` to store a fresh token, or pass token := '...'")]
    Unauthorized { url: String, detail: String },

    #[error("the manifest from {url} is not valid: {reason}")]
    BadManifest { url: String, reason: String },

    #[error(
        "table '{0}' is not in the manifest (it may not exist, or you may not have access to it)"
    )]
    UnknownTable(String),

    #[error(
        "another agnes sync is running on workspace {0} (waited {1:.1} s); try again when it ends"
    )]
    Busy(PathBuf, f64),

    #[error(
        "workspace {workspace} holds tables synced from {theirs} ({state}); one workspace syncs from one \
         server, so nothing was synced from {ours}. Sync {ours} into a workspace of its own \
         (workspace := '<folder>', new_workspace := true), or, to move this workspace to {ours}, \
         delete {state} and the files in {parquet} first"
    )]
    SecondServer {
        workspace: PathBuf,
        theirs: String,
        ours: String,
        state: PathBuf,
        parquet: PathBuf,
    },

    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{path} is not valid JSON settings ({reason}); left it untouched: fix it, then run `da hooks install` again")]
    InvalidSettings { path: PathBuf, reason: String },

    #[error("interrupted: what had finished is kept, the rest is as it was before")]
    Interrupted,

    #[error("state file {path} is damaged: {reason}")]
    State { path: PathBuf, reason: String },

    /// Another error's message, with the token hidden and control
    /// characters escaped (`redact`).
    #[error("{0}")]
    Redacted(String),
}

impl Error {
    /// This error as it may be shown: without the token, control characters
    /// escaped. Unchanged when there was nothing to hide.
    pub fn redacted(self, redactor: &crate::secrets::redact::Redactor) -> Error {
        let text = self.to_string();
        let clean = redactor.text(&text);
        match clean == text {
            true => self,
            false => Error::Redacted(clean),
        }
    }

    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
