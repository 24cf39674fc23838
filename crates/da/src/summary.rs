//! What one `agnes_sync()` or `agnes_upload()` call reported, as plain
//! rows: read from the extension's rows (or from the engine's report, for
//! the quick no-op), then printed by `render` and recorded by `record`.

use agnes_engine::SyncReport;

use crate::duckdb::{int, text, Row};

/// One table's row of `agnes_sync()`.
#[derive(Debug, Clone)]
pub struct TableRow {
    pub table: String,
    pub action: String,
    pub rows: Option<u64>,
    pub size_bytes: Option<u64>,
    pub hash: Option<String>,
    pub view: Option<String>,
    pub error: Option<String>,
    pub note: Option<String>,
}

/// The rules step's row.
#[derive(Debug, Clone, Default)]
pub struct RulesRow {
    pub action: String,
    pub files: u64,
    pub error: Option<String>,
}

/// Everything one `agnes_sync()` call reported.
#[derive(Debug, Clone, Default)]
pub struct SyncSummary {
    pub dry_run: bool,
    pub tables: Vec<TableRow>,
    pub rules: RulesRow,
    pub rules_warnings: Vec<String>,
    pub notices: Vec<String>,
    /// Set when the database was held by another process and the views
    /// could not be made in it: says where they will appear instead.
    pub views_pending: Option<String>,
    /// Worth the one line `--quiet` allows even when nothing failed: a
    /// database this `duckdb` cannot open will not get views by waiting.
    pub quiet_warning: Option<String>,
}

impl SyncSummary {
    pub fn from_rows(rows: Vec<Row>, dry_run: bool) -> SyncSummary {
        let mut summary = SyncSummary {
            dry_run,
            ..Default::default()
        };
        for row in rows {
            let action = text(&row, "action").unwrap_or_default();
            match text(&row, "kind").as_deref() {
                Some("table") => summary.tables.push(TableRow {
                    table: text(&row, "table_id").unwrap_or_default(),
                    action,
                    rows: int(&row, "rows"),
                    size_bytes: int(&row, "size_bytes"),
                    hash: text(&row, "hash"),
                    view: text(&row, "view_name"),
                    error: text(&row, "error"),
                    note: text(&row, "note"),
                }),
                Some("rules") if action == "warning" => {
                    summary.rules_warnings.extend(text(&row, "note"))
                }
                Some("rules") => {
                    summary.rules = RulesRow {
                        action,
                        files: int(&row, "rows").unwrap_or(0),
                        error: text(&row, "error"),
                    }
                }
                Some("notice") => summary.notices.extend(text(&row, "note")),
                _ => {}
            }
        }
        summary
    }

    /// The summary of a sync the engine did itself (the quick no-op).
    pub fn from_report(report: SyncReport) -> SyncSummary {
        let tables = report
            .tables
            .into_iter()
            .map(|t| TableRow {
                action: t.action.as_str().to_string(),
                table: t.table_id,
                rows: t.rows,
                size_bytes: t.size_bytes,
                hash: t.hash,
                view: t.view,
                error: t.error,
                note: t.note,
            })
            .collect();
        let failed = report.rules.action == "failed";
        SyncSummary {
            tables,
            rules: RulesRow {
                action: report.rules.action.to_string(),
                files: report.rules.files as u64,
                error: failed.then(|| report.rules.warnings.join("; ")),
            },
            rules_warnings: match failed {
                true => Vec::new(),
                false => report.rules.warnings,
            },
            notices: report.notices,
            ..Default::default()
        }
    }

    /// Tables whose action is `action`.
    pub fn with(&self, action: &str) -> impl Iterator<Item = &TableRow> {
        let action = action.to_string();
        self.tables.iter().filter(move |t| {
            // A remote table is not downloaded, whether or not agnes made a
            // view over agnes_scan() for it: the old CLI's `skipped_remote`.
            t.action == action || (action == "skipped_remote" && t.action == "scan_view")
        })
    }

    pub fn failed(&self) -> Vec<&TableRow> {
        self.with("failed").collect()
    }
}

/// One file's row of `agnes_upload()`.
#[derive(Debug, Clone)]
pub struct FileRow {
    /// `session` or `local_md`.
    pub kind: String,
    pub path: String,
    pub action: String,
    pub bytes: Option<u64>,
    pub error: Option<String>,
    /// Why it was skipped, the name it went under, secrets removed, gzip.
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct UploadSummary {
    pub dry_run: bool,
    pub files: Vec<FileRow>,
    /// Workspace-level notices (`kind = 'notice'` rows, text in `error`).
    pub notices: Vec<String>,
}

impl UploadSummary {
    pub fn with(&self, action: &str) -> Vec<&FileRow> {
        self.files.iter().filter(|f| f.action == action).collect()
    }

    pub fn sessions(&self, action: &str) -> Vec<&FileRow> {
        self.files
            .iter()
            .filter(|f| f.kind == "session" && f.action == action)
            .collect()
    }

    pub fn local_md(&self, action: &str) -> Option<&FileRow> {
        self.files
            .iter()
            .find(|f| f.kind == "local_md" && f.action == action)
    }
}
