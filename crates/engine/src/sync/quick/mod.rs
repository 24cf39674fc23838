//! The hook's no-op without DuckDB.
//!
//! Most SessionStart hooks find nothing to do, and half of their time went
//! to starting `duckdb` and opening a database with a view per table. After
//! a full sync into a database file, `da` records a stamp: the size and
//! modification time of the database (and its WAL), of the state file and
//! of every synced file, with what the state says of each table
//! (`stamp.rs`). The next sync may skip DuckDB only when the manifest asks
//! for nothing (every table unchanged, none removed) and every one of those
//! is exactly as stamped: a dropped view or a replaced database changes the
//! database file or its WAL, a touched or truncated parquet its file, a
//! sync from elsewhere (a notebook) the state. Anything else, or any doubt,
//! takes the full path. The rules are written as in any sync.
//!
//! What it costs beyond the manifest's fetch (issue 25): the stamp is read
//! in one pass and stands in for the state file; the synced files are
//! stat'ed, and the memory bundle fetched, while the server builds the
//! manifest; the manifest is read only as far as the plan needs
//! (`protocol/listing.rs`).

mod stamp;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::cancel::Cancel;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::protocol::listing::{self, Listing};
use crate::protocol::manifest;
use crate::sync::plan::{Scope, Status};
use crate::sync::report::{skip_note, subscription_notices, Action, SyncReport, TableOutcome};
use crate::sync::rules::{fetch_bundle, write_fetched_rules};
use crate::transfer::http::{ServerClient, Timeouts};
use crate::workspace::layout::Workspace;
use crate::workspace::lock;
use crate::workspace::state::write_atomic;

use stamp::{Held, Line, Remote};

/// Why the quick path was not taken, or its report.
#[derive(Debug)]
pub enum Quick {
    NoOp(SyncReport),
    FullPath(&'static str),
}

/// Records, after a full sync wrote its views into `database` (and DuckDB
/// closed it), what the next sync compares with; `remote` are the remote and
/// server-only tables it reported, `scan_views` those it made a view for.
pub fn record(
    settings: &Settings,
    database: &Path,
    remote: BTreeSet<String>,
    scan_views: BTreeSet<String>,
) -> Result<()> {
    let workspace = Workspace::new(&settings.workspace);
    let state_file = workspace.sync_state_file(&settings.server);
    let stamp_file = workspace.views_stamp_file(&settings.server);
    let text = stamp::render(&workspace, database, &state_file, &remote, &scan_views).ok_or(
        Error::State {
            path: state_file,
            reason: "not stamped: it changed while it was read, or holds what a stamp cannot"
                .into(),
        },
    )?;
    // The JSON stamp of earlier versions, never read again.
    let _ = fs::remove_file(stamp_file.with_extension("json"));
    write_atomic(&stamp_file, text.as_bytes())
}

/// Forgets the stamp: the next sync takes the full path.
pub fn forget(settings: &Settings) {
    let workspace = Workspace::new(&settings.workspace);
    let _ = fs::remove_file(workspace.views_stamp_file(&settings.server));
}

/// A sync of every table into `database` when it provably has nothing to
/// do (module doc); `FullPath` otherwise. Asks the server for the manifest
/// and the memory bundle, like any sync.
pub fn try_noop(
    settings: &Settings,
    database: &Path,
    timeouts: Timeouts,
    cancel: &Cancel,
) -> Result<Quick> {
    let workspace = Workspace::new(&settings.workspace);
    let Ok(text) = fs::read_to_string(workspace.views_stamp_file(&settings.server)) else {
        return Ok(Quick::FullPath("no stamp of a full sync"));
    };
    let Some((header, lines)) = stamp::parse_header(&text) else {
        return Ok(Quick::FullPath("no stamp of a full sync"));
    };
    if header.database != database {
        return Ok(Quick::FullPath("another database"));
    }
    // A sync under way changes what is compared: leave it to the full path.
    let Ok(_lock) = lock::lock(&workspace, Duration::ZERO, cancel) else {
        return Ok(Quick::FullPath("another sync is running"));
    };
    let state_file = workspace.sync_state_file(&settings.server);
    if stamp::Header::now(database, &state_file) != header {
        return Ok(Quick::FullPath("files changed since the last full sync"));
    }
    let client = ServerClient::server_only(settings, timeouts, cancel)?;
    // The server takes most of the fetch to build the manifest: meanwhile
    // the files are stat'ed and the bundle fetched.
    let (body, intact, bundle) = std::thread::scope(|s| {
        let intact = s.spawn(|| {
            let lines = stamp::parse_lines(lines)?;
            let intact = stamp::copies_intact(&workspace.parquet_dir(), &lines);
            Some((lines, intact))
        });
        let bundle = s.spawn(|| fetch_bundle(&client));
        let body = client.get_json("/api/sync/manifest", "manifest fetch");
        (body, intact.join().ok(), bundle.join().ok())
    });
    let lines = match intact.flatten() {
        None => return Ok(Quick::FullPath("no stamp of a full sync")),
        Some((_, false)) => return Ok(Quick::FullPath("files changed since the last full sync")),
        Some((lines, true)) => lines,
    };
    let body = body?;
    let Some(listing) = listing::read(&body) else {
        // Anything the quick read does not take as it is (a bad entry, a
        // manifest that is not one) is the full path's to report.
        return Ok(Quick::FullPath("a manifest the quick path does not read"));
    };
    let tables = match outcomes(&listing, &lines) {
        Ok(tables) => tables,
        Err(why) => return Ok(Quick::FullPath(why)),
    };
    let notices = notices(&listing, &body);
    drop(listing);
    let bundle = bundle.unwrap_or_else(|| Err("the bundle fetch failed".into()));
    let report = SyncReport {
        server: settings.server.clone(),
        workspace: settings.workspace.clone(),
        tables,
        rules: write_fetched_rules(bundle, &workspace),
        notices,
    };
    Ok(Quick::NoOp(report.redacted(&settings.redactor())))
}

/// Each table's row as the full path would report it, when it provably
/// has nothing to do for any; else why not. Both lists are sorted by id.
fn outcomes(
    listing: &Listing,
    lines: &[Line],
) -> std::result::Result<Vec<TableOutcome>, &'static str> {
    let mut lines = lines.iter().peekable();
    let mut out = Vec::with_capacity(listing.tables.len());
    for t in &listing.tables {
        // A table synced (or seen remote) before that the manifest no
        // longer lists: to remove, or the remote set changed.
        if lines.next_if(|l| l.id < t.id.as_ref()).is_some() {
            return Err("tables to remove");
        }
        let line = lines.next_if(|l| l.id == t.id.as_ref());
        let synced = line.filter(|l| l.held != Held::None);
        let status = match () {
            _ if t.server_only => Status::ServerOnly,
            _ if t.remote => Status::Remote,
            _ if !t.subscribed => Status::NotSubscribed,
            _ => match synced {
                None => Status::New,
                Some(l) if l.stamp.is_none() => Status::Missing,
                Some(_) if t.hash.is_empty() => Status::Unknown,
                Some(l) if l.hash != t.hash => Status::Changed,
                Some(_) => Status::Unchanged,
            },
        };
        // As `plan::removals`: what left the subscriptions or became
        // server-only loses its local copy.
        if let Some(l) = synced {
            let withdrawn = match status {
                Status::NotSubscribed => !l.outside_subscriptions,
                Status::ServerOnly => true,
                _ => false,
            };
            if withdrawn {
                return Err("tables to remove");
            }
        }
        let remote = line.map_or(Remote::No, |l| l.remote);
        let is_remote = matches!(status, Status::Remote | Status::ServerOnly);
        if is_remote != (remote != Remote::No) {
            return Err("remote tables changed: their views are made by the full path");
        }
        let (action, view) = match status {
            Status::Unchanged => (Action::Unchanged, true),
            // As the full path left them: a view over agnes_scan(), or none.
            _ if remote == Remote::ScanView => (Action::ScanView, true),
            Status::Remote => (Action::SkippedRemote, false),
            // Skipped as the full path skips them; a not-subscribed table
            // synced earlier keeps the view the full path left it.
            Status::ServerOnly => (Action::SkippedServerOnly, false),
            Status::NotSubscribed => (Action::SkippedNotSubscribed, false),
            _ => return Err("tables to download or check"),
        };
        let mut o = TableOutcome::new(&t.id, action);
        if !t.remote {
            (o.rows, o.size_bytes) = (Some(t.rows), Some(t.size_bytes));
        }
        o.hash = (!t.hash.is_empty()).then(|| t.hash.to_string());
        o.view = view.then(|| t.id.to_string());
        if matches!(
            action,
            Action::SkippedServerOnly | Action::SkippedNotSubscribed
        ) {
            o.note = skip_note(status);
        }
        out.push(o);
    }
    match lines.next() {
        Some(_) => Err("tables to remove"),
        None => Ok(out),
    }
}

/// The full path's notices about the subscriptions. They need the whole
/// manifest, which is parsed only when one of them can apply: a subscribed
/// name the manifest does not list, or no listed table subscribed.
fn notices(listing: &Listing, body: &[u8]) -> Vec<String> {
    if listing.subscriptions.is_none() {
        return Vec::new();
    }
    let quiet = listing.unlisted == 0 && listing.tables.iter().any(|t| t.subscribed);
    if quiet {
        return Vec::new();
    }
    match manifest::parse(body) {
        Ok(manifest) => subscription_notices(&manifest, &Scope::All, false),
        Err(_) => Vec::new(),
    }
}
