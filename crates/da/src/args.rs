//! The command line, declared once with clap; `--help` is made from it.

use std::path::PathBuf;

use agnes_engine::Settings;
use clap::{Args, Parser, Subcommand};

use crate::outcome::Failure;

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
  AGNES_EXTENSION                   agnes.duckdb_extension (else beside da, else `LOAD agnes`)
  AGNES_HOOK_WAIT                   seconds `da sync --detach` waits for its work (else 5)

Config folder without AGNES_CONFIG_DIR / DA_CONFIG_DIR: the first of ~/.config/da,
$XDG_CONFIG_HOME/da, $XDG_CONFIG_HOME/agnes, ~/.config/agnes that holds config.yaml
or token.json. Every sync and upload leaves a report in <workspace>/.agnes/runs;
`da status` shows the last ones.";

/// Sync an analyst's Agnes data into DuckDB: the command line of the agnes
/// extension, for the Claude Code hooks and for scripts.
#[derive(Debug, Parser)]
#[command(name = "da", disable_version_flag = true, after_help = EXIT_STATUS)]
pub struct Cli {
    /// The duckdb executable to run [default: $AGNES_DUCKDB, then duckdb on PATH]
    #[arg(long, global = true, value_name = "PATH")]
    pub duckdb: Option<PathBuf>,

    /// Print the versions of da, of the agnes extension and of the duckdb it
    /// would run, with their paths
    #[arg(short = 'V', long)]
    pub version: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
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
    /// What da would use and how its last runs went: versions, server,
    /// token, workspace, the last runs, the hooks
    #[command(after_help = STATUS_EXIT)]
    Status(StatusArgs),
    /// Print a shell completion script: `da completions bash > ~/.local/share/bash-completion/completions/da`
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

const STATUS_EXIT: &str = "\
Exit status:
  0  the server answers and accepts the token, and duckdb and the extension run
  1  something on the list does not work; the report says what";

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print one JSON document
    #[arg(long)]
    pub json: bool,
    /// How many of the last runs to show
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub runs: usize,
    #[command(flatten)]
    pub target: Target,
}

/// Where a command goes: the server and the workspace.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The workspace folder [default: $AGNES_LOCAL_DIR, then the current directory]
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<String>,
    /// The Agnes server URL [default: $AGNES_SERVER, then config.yaml]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
}

#[derive(Debug, Clone, Args)]
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
    #[arg(long, conflicts_with = "upload_first")]
    pub upload_only: bool,
    /// Upload session transcripts and CLAUDE.local.md first, then sync
    /// (for SessionStart: what an earlier SessionEnd missed)
    #[arg(long, conflicts_with_all = ["dry_run", "docs_only", "table"])]
    pub upload_first: bool,
    /// Do the work in a process of its own that carries on when da returns
    /// or is killed (for hooks); wait for it at most --wait seconds
    #[arg(long, conflicts_with = "dry_run")]
    pub detach: bool,
    /// With --detach: seconds to wait for the work before leaving it to
    /// finish in the background [default: $AGNES_HOOK_WAIT, then 5]
    #[arg(long, value_name = "SECONDS", requires = "detach", value_parser = wait_seconds)]
    pub wait: Option<f64>,
    /// Set on the detached process by the one that started it: the id of
    /// its run report
    #[arg(long, hide = true, value_name = "ID", value_parser = run_id)]
    pub detached_run: Option<String>,
    /// Every table you may read, not only your subscriptions (data packages,
    /// direct tables) on a server that has them
    #[arg(long)]
    pub all_tables: bool,
    #[command(flatten)]
    pub target: Target,
}

/// A run id as `runs::new_id` makes them: it names files in the runs folder.
fn run_id(text: &str) -> Result<String, String> {
    let fits = text.starts_with(|c: char| c.is_ascii_digit())
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    match fits {
        true => Ok(text.to_string()),
        false => Err(format!("not a run id: {text:?}")),
    }
}

/// Seconds to wait: a number from 0 to one hour.
pub fn wait_seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if (0.0..=3600.0).contains(&s) => Ok(s),
        _ => Err(format!(
            "expected a number of seconds from 0 to 3600, got {text:?}"
        )),
    }
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
    /// Write the SessionStart hook (upload what was missed, then sync,
    /// waiting a few seconds at most) and the SessionEnd hook (upload in
    /// the background) into <workspace>/.claude/settings.json, keeping
    /// everything else in it
    Install(HooksArgs),
}

#[derive(Debug, Args)]
pub struct HooksArgs {
    /// The workspace folder [default: $AGNES_LOCAL_DIR, then the current directory]
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<String>,
    /// Also remove the hooks of the Agnes CLI (`agnes pull`, `agnes push`,
    /// `agnes update`), which sync the same workspace
    #[arg(long)]
    pub replace_agnes_hooks: bool,
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

/// Settings from the flags, the environment and the config dir, with a
/// token: without one nothing can be done, so say so before starting DuckDB.
pub fn settings(target: &Target) -> Result<Settings, Failure> {
    // `--server` and `--workspace` are the user's own choice: they
    // configure the call like AGNES_SERVER and AGNES_LOCAL_DIR do, and are
    // passed on to the extension as those (`DuckDb::for_target`).
    let flags = |name: &str| match name {
        "AGNES_SERVER" if target.server.is_some() => target.server.clone(),
        "AGNES_LOCAL_DIR" if target.workspace.is_some() => target.workspace.clone(),
        _ => std::env::var(name).ok(),
    };
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::new(format!("cannot read the current directory: {e}")))?;
    let settings = Settings::resolve_with(&agnes_engine::Overrides::default(), &flags, &cwd)?;
    settings.require_token()?;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_plain_file_names() {
        assert!(run_id("2026-11-24T091044.406Z-11660").is_ok());
        for bad in ["../x", "x", "1/2", "", "1\n"] {
            assert!(run_id(bad).is_err(), "{bad}");
        }
        assert_eq!(wait_seconds(" 2.5 "), Ok(2.5));
        assert!(wait_seconds("-1").is_err() && wait_seconds("soon").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
