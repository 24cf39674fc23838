//! `da status`: on one screen, what `da` would use and how it went: the
//! versions of `da`, the extension and `duckdb`; the server and whether it
//! answers; the token and whether the server takes it (and whose it says it
//! is); the workspace; the last runs' reports; the hooks. `--version` prints
//! the first three.
//!
//! The server is asked through the extension, like every other command
//! (`agnes_manifest()`): CONTRACT.md documents no "who am I" call, so
//! "accepted" means the manifest came back, "refused" its 401, and the
//! owner is what the token (a JWT) says of itself.

use std::path::{Path, PathBuf};

use agnes_engine::config::{self, workspace_dir, Overrides, Settings};
use agnes_engine::hooks::install::{inspect, HookState, HooksReport};
use agnes_engine::workspace::layout::Workspace;
use agnes_engine::workspace::runs::{self, Run};
use serde_json::{json, Value};

use crate::args::{Cli, StatusArgs};
use crate::duckdb::{text, DuckDb, Row};
use crate::outcome::{Failure, Outcome};
use crate::render;

/// The three programs: `da`, and the `duckdb` and extension it would run.
struct Programs {
    duckdb_path: Option<PathBuf>,
    duckdb_version: Result<String, String>,
    extension_source: Option<String>,
    extension_version: Result<String, String>,
    /// The probe's follow-up query, when one was asked for.
    then: Option<Result<Vec<Row>, String>>,
}

fn programs(cli: &Cli, target: Option<&Settings>, then: Option<&str>) -> Programs {
    let duckdb = match DuckDb::find(cli.duckdb.as_deref()) {
        // The server and workspace as configuration, as `da sync` passes them.
        Ok(d) => match target {
            Some(settings) => d.for_target(settings),
            None => d,
        },
        Err(f) => {
            return Programs {
                duckdb_path: None,
                duckdb_version: Err(f.message.clone()),
                extension_source: None,
                extension_version: Err("not loaded: no duckdb to load it into".into()),
                then: then.map(|_| Err(f.message)),
            }
        }
    };
    let duckdb_version = duckdb.cli_version();
    let (extension_version, then) = match duckdb.probe(then) {
        Ok((version, then)) => (
            text(&version, "extension_version").ok_or_else(|| "no version".to_string()),
            then,
        ),
        Err(e) => (Err(e.clone()), then.map(|_| Err(e))),
    };
    Programs {
        duckdb_path: Some(duckdb.executable().to_path_buf()),
        duckdb_version,
        extension_source: Some(duckdb.extension_source()),
        extension_version,
        then,
    }
}

fn da_path() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// `da --version`: da's own version line, then the extension and duckdb
/// it would use, with their paths.
pub fn version(cli: &Cli) -> Result<Outcome, Failure> {
    let p = programs(cli, None, None);
    let mut text = format!("da {}\n", env!("CARGO_PKG_VERSION"));
    text += &match (&p.extension_version, &p.extension_source) {
        (Ok(v), Some(source)) => format!("extension {v} ({source})\n"),
        (Err(e), _) => format!("extension: {}\n", plain(e)),
        (Ok(v), None) => format!("extension {v}\n"),
    };
    text += &match (&p.duckdb_version, &p.duckdb_path) {
        (Ok(v), Some(path)) => format!("duckdb {v} ({})\n", path.display()),
        (Err(e), _) => format!("duckdb: {}\n", plain(e)),
        (Ok(v), None) => format!("duckdb {v}\n"),
    };
    render::out(&text);
    Ok(Outcome::Done)
}

/// How the server answered the manifest.
enum Server {
    /// Not asked: no token, or no working duckdb and extension.
    Unchecked(String),
    /// The manifest came back: what it lists, by status.
    Accepted { tables: u64, stale: u64 },
    /// 401.
    Refused(String),
    /// It answered, with an error other than 401.
    Failing(String),
    /// No answer (refused connection, timeout, name not found).
    Down(String),
}

pub fn run(cli: &Cli, args: &StatusArgs) -> Result<Outcome, Failure> {
    let overrides = Overrides {
        server: args.target.server.clone(),
        token: None,
        workspace: args.target.workspace.clone(),
        // Only reads: any folder may be looked at.
        new_workspace: true,
    };
    let settings = Settings::resolve(&overrides);
    let root = match &settings {
        Ok(s) => s.workspace.clone(),
        Err(_) => workspace_dir(args.target.workspace.as_deref())?,
    };
    let workspace = Workspace::new(&root);

    let manifest_query = settings
        .as_ref()
        .ok()
        .filter(|s| s.token.is_some())
        .map(|_| "SELECT status, count(*) AS n FROM agnes_manifest(timeout := 10) GROUP BY status");
    let p = programs(cli, settings.as_ref().ok(), manifest_query);
    let server = match (&settings, p.then.clone()) {
        (Err(e), _) => Server::Unchecked(format!("configuration: {e}")),
        (Ok(s), None) => Server::Unchecked(match s.require_token() {
            Err(e) => e.to_string(),
            Ok(_) => "not asked".into(),
        }),
        (Ok(_), Some(Ok(rows))) => {
            let count = |row: &Row| row.get("n").and_then(Value::as_u64).unwrap_or(0);
            let stale = |row: &Row| {
                matches!(
                    text(row, "status").as_deref(),
                    Some("new" | "changed" | "missing" | "unknown")
                )
            };
            Server::Accepted {
                tables: rows.iter().map(count).sum(),
                stale: rows.iter().filter(|r| stale(r)).map(count).sum(),
            }
        }
        (Ok(_), Some(Err(e))) => classify(e, p.extension_version.is_ok()),
    };

    let token = settings.as_ref().ok().and_then(|s| s.token.clone());
    let token_source = settings
        .as_ref()
        .ok()
        .and_then(|s| config::token_source(&overrides, s));
    let claims = token.as_ref().and_then(|t| t.claims());
    let hooks_path = root.join(".claude").join("settings.json");
    let hooks = inspect(&hooks_path).map_err(|e| e.to_string());
    let last_runs = runs::recent(&workspace, args.runs);

    let ok = p.duckdb_version.is_ok()
        && p.extension_version.is_ok()
        && matches!(server, Server::Accepted { .. });

    let server_url = settings.as_ref().map(|s| s.server.clone()).ok();
    let config_dir = settings.as_ref().map(|s| s.config_dir.clone()).ok();
    let (server_state, server_detail) = match &server {
        Server::Unchecked(why) => ("unchecked", Some(why.clone())),
        Server::Accepted { .. } => ("answers", None),
        Server::Refused(_) => ("answers", None),
        Server::Failing(e) => ("failing", Some(e.clone())),
        Server::Down(e) => ("down", Some(e.clone())),
    };
    let (token_state, token_detail) = match (&token, &server) {
        (None, _) => ("missing", settings.as_ref().err().map(|e| e.to_string())),
        (Some(_), Server::Accepted { .. }) => ("accepted", None),
        (Some(_), Server::Refused(e)) => ("refused", Some(e.clone())),
        (Some(_), _) => ("unchecked", None),
    };
    let parquet = count_tables(&workspace);
    let database = workspace.analytics_db();
    let database_bytes = std::fs::metadata(&database).ok().map(|m| m.len());

    if args.json {
        let doc = json!({
            "ok": ok,
            "da": {"version": env!("CARGO_PKG_VERSION"), "path": da_path()},
            "extension": {
                "source": p.extension_source,
                "version": p.extension_version.as_ref().ok(),
                "error": p.extension_version.as_ref().err(),
            },
            "duckdb": {
                "path": p.duckdb_path,
                "version": p.duckdb_version.as_ref().ok(),
                "error": p.duckdb_version.as_ref().err(),
            },
            "config_dir": config_dir,
            "server": {
                "url": server_url,
                "state": server_state,
                "error": server_detail,
                "tables": match server { Server::Accepted { tables, .. } => Some(tables), _ => None },
                "to_download": match server { Server::Accepted { stale, .. } => Some(stale), _ => None },
            },
            "token": {
                "state": token_state,
                "source": token_source,
                "owner": claims.as_ref().and_then(|c| c.owner()),
                "expires": claims.as_ref().and_then(|c| c.expires).map(iso),
                "error": token_detail,
            },
            "workspace": {
                "path": root,
                "tables": parquet,
                "database": database,
                "database_bytes": database_bytes,
            },
            "runs": last_runs.iter().map(run_json).collect::<Vec<_>>(),
            "hooks": hooks_json(&hooks_path, &hooks),
        });
        render::out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        ));
    } else {
        let mut lines: Vec<(String, String)> = Vec::new();
        let mut line = |label: &str, value: String| lines.push((label.to_string(), value));
        line(
            "da",
            format!("{}  {}", env!("CARGO_PKG_VERSION"), da_path()),
        );
        line(
            "extension",
            match (&p.extension_version, &p.extension_source) {
                (Ok(v), Some(s)) => format!("{v}  {s}"),
                (Ok(v), None) => v.clone(),
                (Err(e), _) => format!("NOT WORKING: {}", plain(e)),
            },
        );
        line(
            "duckdb",
            match (&p.duckdb_version, &p.duckdb_path) {
                (Ok(v), Some(path)) => format!("{v}  {}", path.display()),
                (Ok(v), None) => v.clone(),
                (Err(e), _) => format!("NOT WORKING: {}", plain(e)),
            },
        );
        if let Some(dir) = &config_dir {
            line("config", dir.display().to_string());
        }
        let url = server_url.clone().unwrap_or_else(|| "?".into());
        line(
            "server",
            match &server {
                Server::Accepted { tables, stale } => {
                    format!("{url}: answers; {tables} tables for this token, {stale} to download")
                }
                Server::Refused(_) => format!("{url}: answers"),
                Server::Failing(e) => format!("{url}: answers with an error: {}", plain(e)),
                Server::Down(e) => format!("{url}: DOES NOT ANSWER: {}", plain(e)),
                Server::Unchecked(why) => format!("{url}: not checked ({})", plain(why)),
            },
        );
        let from = token_source
            .as_ref()
            .map(|s| format!(" (from {s})"))
            .unwrap_or_default();
        let whose = match &claims {
            Some(c) => {
                let owner = c.owner().map(plain).unwrap_or_else(|| "no owner".into());
                match c.expires {
                    Some(exp) if exp < now_secs() => format!("; {owner}, EXPIRED {}", iso(exp)),
                    Some(exp) => format!("; {owner}, expires {}", iso(exp)),
                    None => format!("; {owner}"),
                }
            }
            None => String::new(),
        };
        line(
            "token",
            match token_state {
                "accepted" => format!("accepted{from}{whose}"),
                "refused" => format!(
                    "REFUSED{from}{whose}: {}",
                    plain(token_detail.as_deref().unwrap_or(""))
                ),
                "missing" => format!(
                    "NONE: {}",
                    plain(
                        token_detail
                            .as_deref()
                            .unwrap_or("set AGNES_TOKEN or run `da login`")
                    )
                ),
                _ => format!("not checked{from}{whose}"),
            },
        );
        line(
            "workspace",
            format!(
                "{}: {parquet} tables here, {}",
                root.display(),
                match database_bytes {
                    Some(b) => format!("database {} ({})", database.display(), render::size(b)),
                    None => "no database yet".to_string(),
                }
            ),
        );
        line("hooks", hooks_human(&hooks_path, &hooks));
        let mut out = String::new();
        for (label, value) in &lines {
            out += &format!("{label:<10} {value}\n");
        }
        out += &runs_human(&workspace, &last_runs);
        render::out(&out);
    }
    match ok {
        true => Ok(Outcome::Done),
        false => Err(Failure::new("")),
    }
}

/// Reads the manifest's failure: a 401 is a refused token from a server that
/// answers; an HTTP status is a server that answers badly; anything else
/// (connection refused, timeout) is no answer at all.
fn classify(message: String, loaded: bool) -> Server {
    if !loaded {
        return Server::Unchecked(message);
    }
    if message.contains("refused the token (401)") {
        return Server::Refused(message);
    }
    if message.contains(" failed: HTTP ") {
        return Server::Failing(message);
    }
    if message.starts_with("manifest fetch from") {
        return Server::Down(message);
    }
    Server::Failing(message)
}

/// Tables in `server/parquet`: files and (partitioned) folders.
fn count_tables(workspace: &Workspace) -> usize {
    std::fs::read_dir(workspace.parquet_dir())
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    !name.starts_with('.') && (name.ends_with(".parquet") || e.path().is_dir())
                })
                .count()
        })
        .unwrap_or(0)
}

fn hooks_json(path: &Path, hooks: &Result<Option<HooksReport>, String>) -> Value {
    let state = |s: HookState| match s {
        HookState::Installed => "installed",
        HookState::Outdated => "outdated",
        HookState::Missing => "missing",
    };
    match hooks {
        Err(e) => json!({"settings": path, "error": e}),
        Ok(None) => {
            json!({"settings": path, "session_start": "missing", "session_end": "missing", "agnes_cli": []})
        }
        Ok(Some(r)) => json!({
            "settings": path,
            "session_start": state(r.session_start),
            "session_end": state(r.session_end),
            "agnes_cli": r.agnes_cli_hooks.iter().map(|h| json!({"event": h.event, "command": h.command})).collect::<Vec<_>>(),
        }),
    }
}

fn hooks_human(path: &Path, hooks: &Result<Option<HooksReport>, String>) -> String {
    let report = match hooks {
        Err(e) => return format!("cannot read them: {}", plain(e)),
        Ok(None) => {
            return format!(
                "NOT INSTALLED (no {}): run `da hooks install`",
                path.display()
            )
        }
        Ok(Some(r)) => r,
    };
    let mut text = match (report.session_start, report.session_end) {
        (HookState::Installed, HookState::Installed) => {
            format!("installed in {}", path.display())
        }
        (HookState::Missing, HookState::Missing) => format!(
            "NOT INSTALLED in {}: run `da hooks install`",
            path.display()
        ),
        (start, end) => {
            let say = |s: HookState| match s {
                HookState::Installed => "installed",
                HookState::Outdated => "an earlier version",
                HookState::Missing => "missing",
            };
            format!(
                "SessionStart {}, SessionEnd {} in {}: run `da hooks install`",
                say(start),
                say(end),
                path.display()
            )
        }
    };
    if !report.agnes_cli_hooks.is_empty() {
        let list: Vec<String> = report
            .agnes_cli_hooks
            .iter()
            .map(|h| format!("{}: {}", plain(&h.event), plain(&h.command)))
            .collect();
        text += &format!(
            "\n           also the Agnes CLI's hooks ({}), which sync the same workspace; \
             `da hooks install --replace-agnes-hooks` removes them",
            list.join("; ")
        );
    }
    text
}

fn run_json(run: &Run) -> Value {
    let mut value = serde_json::to_value(run).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("alive".into(), json!(is_running(run)));
    }
    value
}

fn runs_human(workspace: &Workspace, runs: &[Run]) -> String {
    if runs.is_empty() {
        return format!(
            "last runs  none recorded in {}\n",
            workspace.runs_dir().display()
        );
    }
    let mut text = format!(
        "last runs  newest first ({}):\n",
        workspace.runs_dir().display()
    );
    for run in runs {
        let when = run.started.replace('T', " ");
        let when = when.split('.').next().unwrap_or(&when);
        let how = match (run.outcome, is_running(run)) {
            (runs::Outcome::Running, true) => format!("still running (PID {})", run.pid),
            (runs::Outcome::Running, false) => "ended without a report (killed?)".to_string(),
            (outcome, _) => format!(
                "{} in {:.1} s",
                outcome.as_str(),
                run.seconds.unwrap_or(0.0)
            ),
        };
        let detached = if run.detached { " (detached)" } else { "" };
        text += &format!("  {when}  {}{detached}: {how}\n", plain(&run.command));
        for did in &run.did {
            text += &format!("      {}\n", plain(did));
        }
        for error in run.errors.iter().take(3) {
            text += &format!("      error: {}\n", plain(error));
        }
        if run.errors.len() > 3 {
            text += &format!("      ... and {} more errors\n", run.errors.len() - 3);
        }
        for note in run.notes.iter().take(2) {
            text += &format!("      note: {}\n", plain(note));
        }
    }
    text
}

/// A run marked running whose process is still there.
fn is_running(run: &Run) -> bool {
    if run.outcome != runs::Outcome::Running {
        return false;
    }
    let Ok(pid) = i32::try_from(run.pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn iso(secs: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Text from outside (server messages, token claims, file contents) on one
/// line, without control characters that could rewrite the terminal.
fn plain(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}
