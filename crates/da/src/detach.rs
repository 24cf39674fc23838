//! `da sync --detach`: the work runs in a `da` of its own, in a new session
//! with its output going to files beside its run report, so that it carries
//! on when the caller gives up on us. Headless Claude Code ends a SessionEnd
//! hook about a second after starting it, and a hook runner may kill the
//! hook's whole process group or wait for its output pipes to close; none
//! of that reaches the detached process (CONTRACT.md §7).
//!
//! This `da` waits for it at most `--wait` seconds: if it ends by then, its
//! output and exit status become ours, as if it had run here; if not, it
//! goes on alone and its report (`da status`) says how it ended. Two runs on
//! one workspace never overlap: each takes the workspace lock (the engine's).

use std::ffi::OsString;
use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use agnes_engine::config::workspace_dir;
use agnes_engine::workspace::layout::Workspace;
use agnes_engine::workspace::runs;
use serde_json::json;

use crate::args::{wait_seconds, Cli, SyncArgs};
use crate::outcome::{Failure, Outcome};
use crate::render::{self, Mode};
use crate::{record, signals};

/// `--wait` when neither the flag nor `AGNES_HOOK_WAIT` says: long enough
/// for a no-op or a small change, short enough not to hold a session.
pub const DEFAULT_WAIT: f64 = 5.0;

/// Seconds a detached run waits for another sync or upload of the same
/// workspace: nobody waits for it, and giving up would lose the upload.
pub const DETACHED_LOCK_WAIT: u32 = 600;

pub fn run(cli: &Cli, args: &SyncArgs) -> Result<Outcome, Failure> {
    let mode = Mode::of(args.json, args.quiet);
    let quiet = |mut f: Failure| {
        f.quiet = mode == Mode::Quiet;
        f
    };
    let root = workspace_dir(args.target.workspace.as_deref()).map_err(|e| quiet(e.into()))?;
    let workspace = Workspace::new(&root);
    runs::prepare(&workspace).map_err(|e| quiet(record::read_only(&root, &e)))?;
    // A hook's output goes nowhere: what stops it here goes into a report.
    let wait = wait_bound(args).map_err(|f| {
        let mut run = runs::Run::start(record::command_line(args), false);
        run.errors.push(f.message.clone());
        run.finish(runs::Outcome::Failed, Duration::ZERO);
        let _ = runs::save(&workspace, &run);
        quiet(f)
    })?;
    let id = runs::new_id(SystemTime::now(), std::process::id());
    let output = |extension: &str| {
        let path = runs::file(&workspace, &id, extension);
        File::create(&path)
            .map(|file| (path.clone(), file))
            .map_err(|e| match record::is_read_only(&e) {
                true => quiet(record::read_only(&root, &e)),
                false => quiet(Failure::new(format!(
                    "cannot create {}: {e}",
                    path.display()
                ))),
            })
    };
    let (out_path, out) = output("out")?;
    let (err_path, err) = output("err")?;

    let exe = std::env::current_exe().map_err(|e| {
        quiet(Failure::new(format!(
            "cannot find da's own executable: {e}"
        )))
    })?;
    let mut command = Command::new(&exe);
    command
        .args(worker_args(cli, args, &root, &id))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    signals::own_session(&mut command);
    let mut child = command.spawn().map_err(|e| {
        quiet(Failure::new(format!(
            "cannot start a detached {}: {e}",
            exe.display()
        )))
    })?;

    let deadline = Instant::now() + Duration::from_secs_f64(wait);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let relay = |path: &Path| fs::read_to_string(path).unwrap_or_default();
                render::out(&relay(&out_path));
                render::err(&relay(&err_path));
                let _ = fs::remove_file(&out_path);
                let _ = fs::remove_file(&err_path);
                return match (status.code(), signals::signal_of(&status)) {
                    (Some(0), _) => Ok(Outcome::Done),
                    (Some(2), _) => Ok(Outcome::Partial),
                    (Some(_), _) => Err(Failure::new("")),
                    (None, signal) => Err(quiet(Failure::new(format!(
                        "the detached da ({}) was killed by {}",
                        child.id(),
                        signals::describe(signal.unwrap_or(0))
                    )))),
                };
            }
            Ok(None) => {}
            // It was started; whatever this is, it runs on its own.
            Err(_) => break,
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
    match mode {
        Mode::Quiet => {}
        Mode::Json => render::out(&format!(
            "{}\n",
            json!({"background": {"pid": child.id(), "run": id, "report": runs::file(&workspace, &id, "json")}})
        )),
        Mode::Human => render::out(&format!(
            "Going on in the background (PID {}); `da status` shows how it ended\n",
            child.id()
        )),
    }
    Ok(Outcome::Done)
}

/// `--wait`, else `AGNES_HOOK_WAIT`, else `DEFAULT_WAIT`.
fn wait_bound(args: &SyncArgs) -> Result<f64, Failure> {
    if let Some(wait) = args.wait {
        return Ok(wait);
    }
    match std::env::var("AGNES_HOOK_WAIT") {
        Ok(text) if !text.trim().is_empty() => {
            wait_seconds(&text).map_err(|e| Failure::new(format!("AGNES_HOOK_WAIT: {e}")))
        }
        _ => Ok(DEFAULT_WAIT),
    }
}

/// The same `da sync`, without `--detach`, on the resolved workspace, under
/// the run id chosen here.
fn worker_args(cli: &Cli, args: &SyncArgs, workspace: &Path, id: &str) -> Vec<OsString> {
    let mut out: Vec<OsString> = vec!["sync".into(), "--detached-run".into(), id.into()];
    out.extend(["--workspace".into(), workspace.as_os_str().to_owned()]);
    if let Some(server) = &args.target.server {
        out.extend(["--server".into(), server.into()]);
    }
    if let Some(duckdb) = &cli.duckdb {
        let duckdb = std::path::absolute(duckdb).unwrap_or_else(|_| duckdb.clone());
        out.extend(["--duckdb".into(), duckdb.into_os_string()]);
    }
    if let Some(table) = &args.table {
        out.extend(["--table".into(), table.into()]);
    }
    for (on, flag) in [
        (args.upload_only, "--upload-only"),
        (args.upload_first, "--upload-first"),
        (args.docs_only, "--docs-only"),
        (args.all_tables, "--all-tables"),
        (args.json, "--json"),
        (args.quiet, "--quiet"),
    ] {
        if on {
            out.push(flag.into());
        }
    }
    out
}

/// At the end of a detached run: its output files, when empty (a quiet
/// hook's), are of no use to anyone; the report holds what happened.
pub fn tidy(args: &SyncArgs) {
    let (Some(id), Ok(root)) = (
        &args.detached_run,
        workspace_dir(args.target.workspace.as_deref()),
    ) else {
        return;
    };
    let workspace = Workspace::new(root);
    for extension in ["out", "err"] {
        let path = runs::file(&workspace, id, extension);
        if fs::metadata(&path).is_ok_and(|m| m.len() == 0) {
            let _ = fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Command;
    use clap::Parser;

    #[test]
    fn the_detached_run_gets_every_flag_of_the_work() {
        let line = "da sync --detach --all-tables --table orders --quiet --json";
        let cli = Cli::try_parse_from(line.split_whitespace()).unwrap();
        let Some(Command::Sync(args)) = &cli.command else {
            panic!("not a sync")
        };
        let worker = worker_args(&cli, args, Path::new("/ws"), "1-2");
        let worker: Vec<&str> = worker.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            worker,
            [
                "sync",
                "--detached-run",
                "1-2",
                "--workspace",
                "/ws",
                "--table",
                "orders",
                "--all-tables",
                "--json",
                "--quiet"
            ]
        );
    }
}
