//! Printing: the human summary (the old `da sync` lines), one JSON document
//! (`--json`, the old keys plus more), or quiet (`--quiet`, for hooks:
//! nothing on stdout, at most one line on stderr).
//!
//! A closed stdout (`da sync | head -1`) is a normal end, not an error.

use std::io::Write;

use serde_json::{json, Value};

use crate::duckdb::Row;
use crate::outcome::Failure;
use crate::summary::{SyncSummary, TableRow, UploadSummary};

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Human,
    Json,
    Quiet,
}

impl Mode {
    /// `--quiet` wins over `--json`: a hook's stdout stays empty.
    pub fn of(json: bool, quiet: bool) -> Mode {
        match (json, quiet) {
            (_, true) => Mode::Quiet,
            (true, false) => Mode::Json,
            _ => Mode::Human,
        }
    }
}

/// Marks a failure as one of `--quiet`, whose message stays on one line.
pub fn quietly<T>(mode: Mode, result: Result<T, Failure>) -> Result<T, Failure> {
    result.map_err(|mut f| {
        f.quiet = mode == Mode::Quiet;
        f
    })
}

/// Writes `text` to stdout in one go; a broken pipe is ignored.
pub fn out(text: &str) {
    let text = terminal_safe(text);
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush());
}

pub fn err(text: &str) {
    let _ = std::io::stderr()
        .lock()
        .write_all(terminal_safe(text).as_bytes());
}

/// `text` with every control character but the line breaks escaped: server
/// text (errors, notes, ids) must not reach the terminal as ESC or OSC
/// sequences (OSC 52 writes the clipboard), `\r` or BEL.
pub fn terminal_safe(text: &str) -> String {
    text.split('\n')
        .map(agnes_engine::secrets::redact::escape_controls)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `message` on one line, for `--quiet`.
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn json_document(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Bytes for people, as the old CLI printed them: `512 B`, `1.2 KiB`.
pub fn size(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    for unit in ["KiB", "MiB", "GiB", "TiB", "PiB"] {
        value /= 1024.0;
        if value < 1024.0 {
            return format!("{value:.1} {unit}");
        }
    }
    format!("{value:.1} EiB")
}

fn ids<'a>(tables: impl Iterator<Item = &'a TableRow>) -> Vec<&'a str> {
    tables.map(|t| t.table.as_str()).collect()
}

fn errors(failed: &[&TableRow]) -> Value {
    failed
        .iter()
        .map(|t| json!({"table": t.table, "error": t.error.as_deref().unwrap_or("failed")}))
        .collect()
}

/// Prints a sync's result in `mode`.
pub fn sync(summary: &SyncSummary, mode: Mode) {
    match (mode, summary.dry_run) {
        (Mode::Quiet, _) => sync_quiet(summary),
        (Mode::Json, false) => out(&json_document(&sync_json(summary))),
        (Mode::Json, true) => out(&json_document(&dry_run_json(summary))),
        (Mode::Human, false) => sync_human(summary),
        (Mode::Human, true) => dry_run_human(summary),
    }
}

/// Quiet: one stderr line when tables failed (or the database cannot be
/// opened by this duckdb), nothing otherwise.
fn sync_quiet(summary: &SyncSummary) {
    if let Some(line) = sync_quiet_line(summary) {
        err(&line);
    }
}

fn sync_quiet_line(summary: &SyncSummary) -> Option<String> {
    let failed = summary.failed();
    let Some(first) = failed.first() else {
        return summary
            .quiet_warning
            .as_ref()
            .map(|w| format!("da sync: {}\n", one_line(w)));
    };
    let more = match failed.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    Some(format!(
        "da sync: {} of {} tables failed: {}: {}{more}\n",
        failed.len(),
        summary.tables.len(),
        first.table,
        one_line(first.error.as_deref().unwrap_or("failed")),
    ))
}

/// `da sync --upload-first`: the upload's result, then the sync's; in JSON
/// the sync's document with the upload's under `upload`; quiet, one line
/// for whichever failed (the sync first).
pub fn sync_after_upload(
    summary: &SyncSummary,
    upload: &Result<UploadSummary, Failure>,
    mode: Mode,
) {
    match mode {
        Mode::Quiet => {
            let line = sync_quiet_line(summary).or_else(|| match upload {
                Ok(u) => upload_quiet_line(u),
                Err(f) => Some(format!(
                    "da sync --upload-first: upload: {}\n",
                    one_line(&f.message)
                )),
            });
            if let Some(line) = line {
                err(&line);
            }
        }
        Mode::Json => {
            let mut doc = sync_json(summary);
            doc["upload"] = match upload {
                Ok(u) => upload_json(u),
                Err(f) => json!({"error": f.message}),
            };
            out(&json_document(&doc));
        }
        Mode::Human => {
            match upload {
                Ok(u) => self::upload(u, mode),
                Err(f) => err(&format!("Upload failed: {}\n", f.message)),
            }
            sync(summary, mode);
        }
    }
}

/// The old summary lines, then what is new (removals, pending views) on
/// stdout; warnings and notes on stderr.
/// `Errors: N` and one line per failed table, as the old CLI printed them.
fn errors_human(failed: &[&TableRow]) -> String {
    if failed.is_empty() {
        return String::new();
    }
    let mut text = format!("Errors: {}\n", failed.len());
    for t in failed {
        text += &format!(
            "  {}: {}\n",
            t.table,
            t.error.as_deref().unwrap_or("failed")
        );
    }
    text
}

/// The skips only a 0.84 server causes: server-only tables and tables
/// outside the user's subscriptions.
fn skipped_current(s: &SyncSummary) -> String {
    let mut text = String::new();
    let server_only = s.with("skipped_server_only").count();
    if server_only > 0 {
        text += &format!("Skipped (server-only, query on the server): {server_only}\n");
    }
    let unsubscribed = s.with("skipped_not_subscribed").count();
    if unsubscribed > 0 {
        text += &format!("Skipped (not subscribed; --all-tables takes them): {unsubscribed}\n");
    }
    text
}

fn sync_human(s: &SyncSummary) {
    let mut text = format!(
        "Downloaded: {} tables\nSkipped (unchanged): {}\n",
        s.with("downloaded").count(),
        s.with("unchanged").count()
    );
    let remote = s.with("skipped_remote").count();
    if remote > 0 {
        text += &format!("Skipped (remote-mode): {remote}\n");
    }
    text += &skipped_current(s);
    let removed = s.with("removed").count();
    if removed > 0 {
        text += &format!("Removed: {removed}\n");
    }
    text += &errors_human(&s.failed());
    if let Some(pending) = &s.views_pending {
        text += &format!("Views: {pending}\n");
    }
    out(&text);
    err(&warnings(s));
}

/// Rules warnings, notices, and tables that have no view, one per line.
fn warnings(s: &SyncSummary) -> String {
    let mut text = String::new();
    if let Some(e) = &s.rules.error {
        text += &format!("Warning: {e}\n");
    }
    for w in &s.rules_warnings {
        text += &format!("Warning: {w}\n");
    }
    for n in &s.notices {
        text += &format!("Note: {n}\n");
    }
    if s.views_pending.is_none() {
        for t in &s.tables {
            let viewless = matches!(t.action.as_str(), "downloaded" | "unchanged");
            if let (true, None, Some(note)) = (viewless, &t.view, &t.note) {
                text += &format!("Note: {}: {note}\n", t.table);
            }
        }
    }
    text
}

fn rules_json(s: &SyncSummary) -> Value {
    let mut warnings: Vec<&str> = s.rules.error.iter().map(String::as_str).collect();
    warnings.extend(s.rules_warnings.iter().map(String::as_str));
    json!({"action": s.rules.action, "files": s.rules.files, "warnings": warnings})
}

fn tables_json(s: &SyncSummary) -> Value {
    s.tables
        .iter()
        .map(|t| {
            json!({
                "table": t.table, "action": t.action, "rows": t.rows, "size_bytes": t.size_bytes,
                "hash": t.hash, "view": t.view, "error": t.error, "note": t.note,
            })
        })
        .collect()
}

fn sync_json(s: &SyncSummary) -> Value {
    json!({
        "downloaded": ids(s.with("downloaded")),
        "skipped": ids(s.with("unchanged")),
        "skipped_remote": ids(s.with("skipped_remote")),
        "skipped_server_only": ids(s.with("skipped_server_only")),
        "skipped_not_subscribed": ids(s.with("skipped_not_subscribed")),
        "errors": errors(&s.failed()),
        "removed": ids(s.with("removed")),
        "views": s.tables.iter().filter_map(|t| t.view.as_deref()).collect::<Vec<_>>(),
        "views_pending": s.views_pending,
        "rules": rules_json(s),
        "notices": s.notices,
        "tables": tables_json(s),
    })
}

fn dry_run_human(s: &SyncSummary) {
    let todo: Vec<&TableRow> = s.with("would_download").collect();
    let bytes: u64 = todo.iter().filter_map(|t| t.size_bytes).sum();
    let mut text = format!(
        "Dry run — would download {} tables ({})\nSkipped (unchanged): {}\n",
        todo.len(),
        size(bytes),
        s.with("unchanged").count()
    );
    let remote = s.with("skipped_remote").count();
    if remote > 0 {
        text += &format!("Skipped (remote-mode): {remote}\n");
    }
    text += &skipped_current(s);
    for t in &todo {
        text += &format!(
            "  {} rows={} size={}\n",
            t.table,
            t.rows.unwrap_or(0),
            size(t.size_bytes.unwrap_or(0))
        );
    }
    let remove: Vec<&str> = ids(s.with("would_remove"));
    if !remove.is_empty() {
        text += &format!("Would remove: {}\n", remove.len());
        for id in remove {
            text += &format!("  {id}\n");
        }
    }
    text += &errors_human(&s.failed());
    out(&text);
    err(&warnings(s));
}

fn dry_run_json(s: &SyncSummary) -> Value {
    let todo: Vec<&TableRow> = s.with("would_download").collect();
    let plan: Vec<Value> = todo
        .iter()
        .map(|t| json!({"table": t.table, "rows": t.rows.unwrap_or(0), "size_bytes": t.size_bytes.unwrap_or(0)}))
        .collect();
    let unchanged = s.with("unchanged").count();
    json!({
        "dry_run": true,
        "would_download": plan,
        "skipped": ids(s.with("unchanged")),
        "skipped_remote": ids(s.with("skipped_remote")),
        "would_remove": ids(s.with("would_remove")),
        "errors": errors(&s.failed()),
        "summary": {
            "tables_total": todo.len() + unchanged,
            "tables_to_download": todo.len(),
            "tables_skipped_unchanged": unchanged,
            "bytes_total": todo.iter().filter_map(|t| t.size_bytes).sum::<u64>(),
        },
        "rules": rules_json(s),
        "tables": tables_json(s),
    })
}

/// Prints an upload's result in `mode`.
pub fn upload(s: &UploadSummary, mode: Mode) {
    let failed = s.with("failed");
    match mode {
        Mode::Quiet => {
            if let Some(line) = upload_quiet_line(s) {
                err(&line);
            }
        }
        Mode::Json => out(&json_document(&upload_json(s))),
        Mode::Human if s.dry_run => {
            let sessions = s.sessions("would_upload");
            let mut text = format!(
                "Dry run — would upload {} session file(s)\n",
                sessions.len()
            );
            for f in sessions {
                text += &format!("  {}\n", f.path);
            }
            text += &match s.local_md("would_upload") {
                Some(f) => format!("Would upload CLAUDE.local.md ({})\n", f.path),
                None => "No CLAUDE.local.md to upload\n".to_string(),
            };
            out(&text);
        }
        Mode::Human => {
            let mut text = format!("Uploaded {} sessions\n", s.sessions("uploaded").len());
            if s.local_md("uploaded").is_some() {
                text += "Uploaded CLAUDE.local.md\n";
            }
            let unchanged = s.with("unchanged").len();
            if unchanged > 0 {
                text += &format!("Skipped (unchanged): {unchanged}\n");
            }
            let skipped = s.with("skipped");
            if !skipped.is_empty() {
                text += &format!("Skipped (not read): {}\n", skipped.len());
                for f in &skipped {
                    text += &format!("  {}: {}\n", f.path, f.note.as_deref().unwrap_or("skipped"));
                }
            }
            if !failed.is_empty() {
                text += &format!("Errors: {}\n", failed.len());
                for f in &failed {
                    text += &format!("  {}: {}\n", f.path, f.error.as_deref().unwrap_or("failed"));
                }
            }
            out(&text);
        }
    }
    if mode == Mode::Human {
        err(&s
            .notices
            .iter()
            .map(|n| format!("Note: {n}\n"))
            .collect::<String>());
    }
}

fn upload_quiet_line(s: &UploadSummary) -> Option<String> {
    let failed = s.with("failed");
    let first = failed.first()?;
    Some(format!(
        "da sync --upload-only: {} of {} files failed: {}: {}\n",
        failed.len(),
        s.files.len(),
        first.path,
        one_line(first.error.as_deref().unwrap_or("failed"))
    ))
}

fn upload_json(s: &UploadSummary) -> Value {
    let files: Vec<Value> = s
        .files
        .iter()
        .map(|f| json!({"kind": f.kind, "path": f.path, "action": f.action, "bytes": f.bytes, "error": f.error, "note": f.note}))
        .collect();
    let errors: Vec<Value> = s
        .with("failed")
        .iter()
        .map(|f| json!({"path": f.path, "error": f.error.as_deref().unwrap_or("failed")}))
        .collect();
    if s.dry_run {
        let sessions: Vec<&str> = s
            .sessions("would_upload")
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        let local_md = s.local_md("would_upload").map(|f| f.path.as_str());
        return json!({
            "dry_run": true,
            "would_upload": {"sessions": sessions, "local_md": local_md},
            "summary": {"sessions_count": sessions.len(), "local_md_present": local_md.is_some()},
            "errors": errors,
            "notices": s.notices,
            "files": files,
        });
    }
    json!({
        "sessions": s.sessions("uploaded").len(),
        "local_md": s.local_md("uploaded").is_some(),
        "unchanged": s.with("unchanged").len(),
        "errors": errors,
        "notices": s.notices,
        "files": files,
    })
}

/// Prints `agnes_manifest()`'s rows: an aligned table, or JSON.
pub fn manifest(server: &str, rows: &[Row], mode: Mode) {
    if mode != Mode::Human {
        out(&json_document(&json!({"server": server, "tables": rows})));
        return;
    }
    if rows.is_empty() {
        out(&format!("{server} offers no tables to this token\n"));
        return;
    }
    let cell = |row: &Row, column: &str| match row.get(column) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    let mut lines = vec![["TABLE", "MODE", "ROWS", "SIZE", "STATUS"].map(String::from)];
    let mut problems = String::new();
    for row in rows {
        let bytes = row.get("size_bytes").and_then(Value::as_u64).unwrap_or(0);
        lines.push([
            cell(row, "table_id"),
            cell(row, "query_mode"),
            cell(row, "rows"),
            size(bytes),
            cell(row, "status"),
        ]);
        let error = cell(row, "error");
        if !error.is_empty() {
            problems += &format!("  {}: {error}\n", cell(row, "table_id"));
        }
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for line in &lines {
        let padded: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            // Numbers right-aligned, words left-aligned.
            .map(|(i, (c, w))| match i {
                2 | 3 => format!("{c:>w$}"),
                _ => format!("{c:<w$}"),
            })
            .collect();
        text += padded.join("  ").trim_end();
        text.push('\n');
    }
    if !problems.is_empty() {
        text += &format!("Invalid entries:\n{problems}");
    }
    out(&text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(one_line("IO Error: a\n\nb  c\n"), "IO Error: a b c");
        assert_eq!(Mode::of(true, true), Mode::Quiet);
        assert_eq!(Mode::of(true, false), Mode::Json);
        assert_eq!(
            terminal_safe("a\x1b]52;c;eA==\x07\rb\nc\n"),
            "a\\x1b]52;c;eA==\\x07\\rb\nc\n"
        );
    }
}
