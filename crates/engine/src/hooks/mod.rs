//! The Claude Code hooks in `<workspace>/.claude/settings.json` that run
//! `da sync` when a session starts and ends (CONTRACT.md §6).
//!
//! Installing merges into the file the user already has: other keys and
//! other hooks stay as they are (in their order), an earlier entry whose
//! every command contains `da sync` is replaced in place, never duplicated,
//! and a file that is not a JSON object is reported and left byte for byte
//! as it was.
//!
//! `install.rs` installs them into the file and reads what it holds;
//! `merge.rs` knows the entries and merges ours into the text.

pub mod install;
pub mod merge;
