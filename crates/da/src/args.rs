//! The command line, declared once with clap; `--help` is made from it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_STATUS: &str = "\
Exit status:
  0  all good
  1  nothing could be done: configuration, manifest, server down, token refused (401), no duckdb or extension
  2  the run went through, but some tables (or uploads) failed; each is reported

Environment:
  AGNES_SERVER / DA_SERVER          server URL (else config.yaml, else http://localhost:8000)
  AGNES_TOKEN / DA_TOKEN            token (else token.json, written by `da login`)
  AGNES_CONFIG_DIR / DA_CONFIG_DIR  folder of config.yaml and token.json (~/.config/da)
  AGNES_LOCAL_DIR / DA_LOCAL_DIR    workspace (else the current directory)
  AGNES_DUCKDB                      the duckdb executable (else duckdb on PATH)
  AGNES_EXTENSION                   agnes.duckdb_extension (else beside da, else `LOAD agnes`)";

/// Sync an analyst's Agnes data into DuckDB: the command line of the agnes
/// extension, for the Claude Code hooks and for scripts.
#[derive(Debug, Parser)]
#[command(name = "da", version, after_help = EXIT_STATUS)]
pub struct Cli {
    /// The duckdb executable to run [default: $AGNES_DUCKDB, then duckdb on PATH]
    #[arg(long, global = true, value_name = "PATH")]
    pub duckdb: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download the tables that changed, create their views in
    /// user/duckdb/analytics.duckdb, and write the corporate memory rules
    #[command(after_help = EXIT_STATUS)]
    Sync(SyncArgs),
    /// What the server offers, and what is stale here
    #[command(after_help = EXIT_STATUS)]
    Manifest(ManifestArgs),
    /// The Claude Code hooks of the workspace
    Hooks {
        #[command(subcommand)]
        command: HooksCommand,
    },
    /// Store the server URL and your token for the other commands
    Login(LoginArgs),
}

/// Where a command goes: the server and the workspace.
#[derive(Debug, Args)]
pub struct Target {
    /// The workspace folder [default: $AGNES_LOCAL_DIR, then the current directory]
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<String>,
    /// The Agnes server URL [default: $AGNES_SERVER, then config.yaml]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Sync this table only
    #[arg(long, value_name = "TABLE")]
    pub table: Option<String>,
    /// Only the corporate memory rules, no tables
    #[arg(long)]
    pub docs_only: bool,
    /// Show what would be done; download, upload and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON document
    #[arg(long)]
    pub json: bool,
    /// For hooks: nothing on stdout, at most one line on stderr
    #[arg(long)]
    pub quiet: bool,
    /// Upload session transcripts and CLAUDE.local.md instead of downloading
    #[arg(long)]
    pub upload_only: bool,
    /// Every table you may read, not only your subscriptions (data packages,
    /// direct tables) on a server that has them
    #[arg(long)]
    pub all_tables: bool,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// Print one JSON document
    #[arg(long)]
    pub json: bool,
    /// Compare every table you may read, not only your subscriptions
    #[arg(long)]
    pub all_tables: bool,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Write the SessionStart and SessionEnd hooks (`da sync --quiet`,
    /// `da sync --upload-only --quiet`) into <workspace>/.claude/settings.json,
    /// keeping everything else in it
    Install(HooksArgs),
}

#[derive(Debug, Args)]
pub struct HooksArgs {
    /// The workspace folder [default: $AGNES_LOCAL_DIR, then the current directory]
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The Agnes server URL
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The token (other users can see it in the process list); without it,
    /// it is read from standard input
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
