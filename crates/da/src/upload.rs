//! `da sync --upload-only`: runs `agnes_upload()` (session transcripts and
//! CLAUDE.local.md back to the server) and reads its rows.

use crate::args::{settings, Cli, SyncArgs};
use crate::detach::DETACHED_LOCK_WAIT;
use crate::duckdb::{failure, int, text, DuckDb, Row};
use crate::outcome::{Failure, Outcome};
use crate::record::Recorder;
use crate::render::{self, quietly, Mode};
use crate::summary::{FileRow, UploadSummary};

/// Runs `da sync --upload-only`.
pub fn run(cli: &Cli, args: &SyncArgs, record: Option<&mut Recorder>) -> Result<Outcome, Failure> {
    let mode = Mode::of(args.json, args.quiet);
    let summary = quietly(mode, summarize(cli, args))?;
    if let Some(record) = record {
        record.upload(&summary);
    }
    render::upload(&summary, mode);
    Ok(match summary.with("failed").is_empty() {
        true => Outcome::Done,
        false => Outcome::Partial,
    })
}

pub fn summarize(cli: &Cli, args: &SyncArgs) -> Result<UploadSummary, Failure> {
    let settings = settings(&args.target)?;
    let duckdb = DuckDb::find(cli.duckdb.as_deref())?.for_target(&settings);
    let mut query = String::from("SELECT * FROM agnes_upload(");
    let mut named = Vec::new();
    if args.dry_run {
        named.push("dry_run := true".to_string());
    }
    if args.detached_run.is_some() {
        named.push(format!("lock_timeout := {}", DETACHED_LOCK_WAIT));
    }
    query += &named.join(", ");
    query += ")";
    // Uploads need no database: an in-memory one is never locked.
    let rows = duckdb.query(None, &query, false).map_err(|e| {
        let mut f = failure(e);
        if f.message.contains("agnes_upload does not exist") {
            f.message =
                "this agnes extension has no agnes_upload(); build or install a newer one".into();
        }
        f
    })?;
    let (notices, files): (Vec<FileRow>, Vec<FileRow>) =
        rows.iter().map(file_row).partition(|f| f.kind == "notice");
    Ok(UploadSummary {
        dry_run: args.dry_run,
        files,
        notices: notices.into_iter().filter_map(|n| n.error).collect(),
    })
}

fn file_row(row: &Row) -> FileRow {
    FileRow {
        kind: text(row, "kind").unwrap_or_default(),
        path: text(row, "path").unwrap_or_default(),
        action: text(row, "action").unwrap_or_default(),
        bytes: int(row, "bytes"),
        error: text(row, "error"),
        note: text(row, "note"),
    }
}
