//! `da sync`: runs `agnes_sync()` on the workspace's analytics.duckdb and
//! reads its rows into a `SyncSummary` for `render` to print.

use std::io::IsTerminal;
use std::path::Path;

use agnes_engine::layout::Workspace;
use agnes_engine::Settings;

use crate::args::{Cli, SyncArgs, Target};
use crate::duckdb::{literal, DuckDb, QueryError, Row};
use crate::render::{self, Mode};
use crate::{Failure, Outcome};

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
}

impl SyncSummary {
    fn from_rows(rows: Vec<Row>, dry_run: bool) -> SyncSummary {
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

    /// Tables whose action is `action`.
    pub fn with(&self, action: &str) -> impl Iterator<Item = &TableRow> {
        let action = action.to_string();
        self.tables.iter().filter(move |t| t.action == action)
    }

    pub fn failed(&self) -> Vec<&TableRow> {
        self.with("failed").collect()
    }
}

/// Runs `da sync` (not `--upload-only`).
pub fn run(cli: &Cli, args: &SyncArgs) -> Result<Outcome, Failure> {
    let mode = Mode::of(args.json, args.quiet);
    let summary = quietly(mode, summarize(cli, args, mode))?;
    render::sync(&summary, mode);
    Ok(match summary.failed().is_empty() {
        true => Outcome::Done,
        false => Outcome::Partial,
    })
}

fn summarize(cli: &Cli, args: &SyncArgs, mode: Mode) -> Result<SyncSummary, Failure> {
    let settings = settings(&args.target)?;
    let duckdb = DuckDb::find(cli.duckdb.as_deref())?;
    let progress = mode == Mode::Human && !args.dry_run && std::io::stderr().is_terminal();
    let mut params = vec![
        format!("server := {}", literal(&settings.server)),
        format!(
            "workspace := {}",
            literal(&settings.workspace.to_string_lossy())
        ),
    ];
    if let Some(table) = &args.table {
        params.push(format!("\"table\" := {}", literal(table)));
    }
    for (on, param) in [
        (args.docs_only, "docs_only := true"),
        (args.dry_run, "dry_run := true"),
        (args.all_tables, "all_tables := true"),
        (progress, "progress := true"),
    ] {
        if on {
            params.push(param.to_string());
        }
    }
    let query = format!("SELECT * FROM agnes_sync({})", params.join(", "));

    // A dry run writes nothing, not even the database; the rules alone
    // need no views.
    let database = Workspace::new(&settings.workspace).analytics_db();
    let database = (!args.dry_run && !args.docs_only).then_some(database.as_path());
    if let Some(db) = database {
        create_parent(db)?;
    }
    let (rows, views_pending) = match duckdb.query(database, &query, progress) {
        Ok(rows) => (rows, None),
        // A notebook holds the file: sync in memory, so that the files,
        // the state and the rules are still brought up to date.
        Err(QueryError::Locked { holder }) => {
            let rows = duckdb.query(None, &query, progress).map_err(failure)?;
            let db = database.map(Path::display);
            let pending = format!(
                "{} is open in {holder}; the views will appear at the next agnes_sync() in that session",
                db.map(|d| d.to_string()).unwrap_or_default()
            );
            (rows, Some(pending))
        }
        Err(e) => return Err(failure(e)),
    };
    let mut summary = SyncSummary::from_rows(rows, args.dry_run);
    if views_pending.is_some() {
        // Those views were made in the throw-away in-memory database.
        for t in &mut summary.tables {
            t.view = None;
        }
        summary.views_pending = views_pending;
    }
    Ok(summary)
}

/// Settings from the flags, the environment and the config dir, with a
/// token: without one nothing can be done, so say so before starting DuckDB.
pub fn settings(target: &Target) -> Result<Settings, Failure> {
    let settings = Settings::resolve(&agnes_engine::Overrides {
        server: target.server.clone(),
        token: None,
        workspace: target.workspace.clone(),
    })?;
    settings.require_token()?;
    Ok(settings)
}

fn create_parent(path: &Path) -> Result<(), Failure> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))
}

/// A query error that has no second chance.
pub fn failure(e: QueryError) -> Failure {
    match e {
        QueryError::Failed(f) => f,
        QueryError::Locked { holder } => Failure::new(format!(
            "the database is held by {holder}; close it there, or try again"
        )),
    }
}

/// Marks a failure as one of `--quiet`, whose message stays on one line.
pub fn quietly<T>(mode: Mode, result: Result<T, Failure>) -> Result<T, Failure> {
    result.map_err(|mut f| {
        f.quiet = mode == Mode::Quiet;
        f
    })
}

pub fn text(row: &Row, column: &str) -> Option<String> {
    match row.get(column)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

pub fn int(row: &Row, column: &str) -> Option<u64> {
    row.get(column)?.as_u64()
}
