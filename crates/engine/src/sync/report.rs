//! What a sync reports: one row per table (`TableOutcome`, what happened
//! to it as an `Action`), the rules step's outcome and the notices. Every
//! text in it is redacted before it leaves the engine.

use std::path::PathBuf;

use crate::protocol::manifest::{Manifest, QueryMode};
use crate::secrets::redact::Redactor;
use crate::sync::plan::{PlannedTable, Scope, Status};

/// What happened to one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Downloaded,
    Unchanged,
    SkippedRemote,
    /// Listed by the server but never distributed (0.84 `server_only`).
    SkippedServerOnly,
    /// Not among the user's subscriptions (0.84).
    SkippedNotSubscribed,
    /// A remote or server-only table: a view over `agnes_scan()` was made.
    ScanView,
    WouldDownload,
    Failed,
    Removed,
    WouldRemove,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Downloaded => "downloaded",
            Action::Unchanged => "unchanged",
            Action::SkippedRemote => "skipped_remote",
            Action::SkippedServerOnly => "skipped_server_only",
            Action::SkippedNotSubscribed => "skipped_not_subscribed",
            Action::ScanView => "scan_view",
            Action::WouldDownload => "would_download",
            Action::Failed => "failed",
            Action::Removed => "removed",
            Action::WouldRemove => "would_remove",
        }
    }
}

/// One row of `agnes_sync()`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableOutcome {
    pub table_id: String,
    pub action: Action,
    pub rows: Option<u64>,
    pub size_bytes: Option<u64>,
    pub hash: Option<String>,
    /// The view that answers for this table in the calling database.
    pub view: Option<String>,
    /// Why the table failed.
    pub error: Option<String>,
    /// Something worth knowing that is not a failure (a view left to the user).
    pub note: Option<String>,
}

impl TableOutcome {
    pub(crate) fn new(table_id: &str, action: Action) -> TableOutcome {
        TableOutcome {
            table_id: table_id.to_string(),
            action,
            rows: None,
            size_bytes: None,
            hash: None,
            view: None,
            error: None,
            note: None,
        }
    }
}

/// The rules step's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct RulesOutcome {
    /// `written`, `would_write` or `failed`.
    pub action: &'static str,
    /// Files in `.claude/rules/` that the bundle makes.
    pub files: usize,
    /// A failed fetch, or items skipped.
    pub warnings: Vec<String>,
}

/// Everything a sync did.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncReport {
    pub server: String,
    pub workspace: PathBuf,
    pub tables: Vec<TableOutcome>,
    pub rules: RulesOutcome,
    /// Workspace-level notices (state migrated, damaged state set aside).
    pub notices: Vec<String>,
}

impl TableOutcome {
    /// This row as it may be shown (`redact`).
    pub fn redact(&mut self, r: &Redactor) {
        r.apply(&mut self.table_id);
        for text in [
            &mut self.hash,
            &mut self.view,
            &mut self.error,
            &mut self.note,
        ] {
            r.option(text);
        }
    }
}

impl SyncReport {
    pub(crate) fn redacted(mut self, r: &Redactor) -> SyncReport {
        self.tables.iter_mut().for_each(|o| o.redact(r));
        r.all(&mut self.rules.warnings);
        r.all(&mut self.notices);
        self
    }
}

/// What the user should know about their subscriptions (CONTRACT.md
/// §7.6): a server that lists tables while they subscribe to none (an
/// admin without data packages) syncs nothing, as upstream's client does,
/// and says so once rather than in silence.
pub(crate) fn subscription_notices(
    manifest: &Manifest,
    scope: &Scope,
    all_tables: bool,
) -> Vec<String> {
    let (Some(subscribed), Scope::All) = (&manifest.subscriptions, scope) else {
        return Vec::new();
    };
    let mut notices = Vec::new();
    let listed = manifest.ids();
    let absent: Vec<&str> = subscribed
        .iter()
        .filter(|id| !listed.contains(id.as_str()))
        .map(String::as_str)
        .collect();
    if !absent.is_empty() {
        notices.push(format!(
            "subscribed table(s) not in the manifest's table list, so not synced: {}",
            crate::protocol::ids::truncate(&absent.join(", "), 400)
        ));
    }
    let downloadable = manifest
        .tables
        .iter()
        .filter(|t| t.invalid.is_none() && !t.server_only && t.query_mode != QueryMode::Remote)
        .count();
    if !all_tables
        && downloadable > 0
        && !manifest.tables.iter().any(|t| subscribed.contains(&t.id))
    {
        notices.push(format!(
            "you subscribe to no table (the server lists no data package or direct table for you), \
             so this sync takes none of the {downloadable} table(s) it lets you read, as upstream's \
             client does; `da sync --all-tables` or agnes_sync(all_tables := true) takes every table"
        ));
    }
    notices
}

/// What a table that is not synced is for.
pub(crate) fn skip_note(status: Status) -> Option<String> {
    match status {
        Status::ServerOnly => Some(
            "server-only: the server does not distribute it; query it on the server".into(),
        ),
        Status::NotSubscribed => Some(
            "not among your subscriptions (data packages, direct tables); all_tables := true downloads it".into(),
        ),
        _ => None,
    }
}

/// An outcome carrying the manifest's figures for the table.
pub(crate) fn described(t: &PlannedTable, action: Action) -> TableOutcome {
    let mut o = TableOutcome::new(&t.entry.id, action);
    if t.entry.query_mode != QueryMode::Remote {
        o.rows = Some(t.entry.rows);
        o.size_bytes = Some(t.entry.size_bytes);
    }
    o.hash = (!t.entry.hash.is_empty()).then(|| t.entry.hash.clone());
    o
}
