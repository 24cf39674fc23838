//! How a command ended: done, partly done (`Outcome`), or not done at all
//! (`Failure`); `main` turns these into the exit status.

/// How a command that ran ended. A command that could not run at all is a
/// `Failure` instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything was done.
    Done,
    /// The run went through, but some tables or files failed.
    Partial,
}

/// Why nothing could be done (configuration, manifest, auth, no DuckDB).
/// The message says what the user can do; it never holds the token.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    /// `--quiet`: the message must stay on one line.
    pub quiet: bool,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            quiet: false,
        }
    }

    /// A failure whose message was already printed (clap's usage errors).
    pub fn reported() -> Failure {
        Failure::new("")
    }
}

impl From<agnes_engine::Error> for Failure {
    fn from(e: agnes_engine::Error) -> Failure {
        Failure::new(e.to_string())
    }
}
