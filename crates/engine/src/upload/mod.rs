//! Uploads: the session transcripts and `.claude/CLAUDE.local.md` sent to
//! the server (CONTRACT.md §5, §7), each file only when its content changed
//! since the last upload. `run.rs` runs one: the files found and read
//! (`files.rs`, `transcripts.rs`), what was sent before (`ledger.rs`, and
//! `pushed.rs` for upstream's `agnes push`), the sending with secrets
//! removed (`send.rs`, `secrets/scrub.rs`), and the report (`report.rs`).

pub mod files;
pub mod ledger;
pub mod pushed;
pub mod report;
pub mod run;
pub mod send;
pub mod transcripts;
