//! `agnes_sync()`: verified downloads, views in this database, rules; one row
//! per table considered, then the rules step and any notices.

use agnes_engine::{
    attach_local, sync, NoProgress, Progress, Scope, SyncOptions, SyncReport, TableOutcome,
};
use duckdb::core::LogicalTypeId;

use crate::catalog::DuckDbCatalog;
use crate::params::{self, Parameter};
use crate::progress::StderrProgress;
use crate::rows::{Call, Cell, Kind, RowFunction};
use crate::sql::identifier;

const OWN: &[Parameter] = &[
    // `table` is a reserved word: `"table" := 'x'`, or the alias.
    ("table", LogicalTypeId::Varchar),
    ("table_id", LogicalTypeId::Varchar),
    ("docs_only", LogicalTypeId::Boolean),
    ("dry_run", LogicalTypeId::Boolean),
    // Every readable table, not only the subscribed ones (0.84).
    ("all_tables", LogicalTypeId::Boolean),
    ("offline", LogicalTypeId::Boolean),
    ("threads", LogicalTypeId::Bigint),
    ("lock_timeout", LogicalTypeId::Double),
    // Per-table byte progress on stderr (`da` on a terminal).
    ("progress", LogicalTypeId::Boolean),
    // Rows a view over a remote table scans whole before it asks for
    // agnes_scan(..., "where" := ...) instead.
    ("scan_max_rows", LogicalTypeId::Bigint),
    // Views over agnes_scan() made per sync (each costs a schema request).
    ("scan_views", LogicalTypeId::Bigint),
];

pub struct Sync;

impl RowFunction for Sync {
    const NAME: &'static str = "agnes_sync";
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("kind", Kind::Text),
        ("table_id", Kind::Text),
        ("action", Kind::Text),
        ("rows", Kind::BigInt),
        ("size_bytes", Kind::BigInt),
        ("hash", Kind::Text),
        ("view_name", Kind::Text),
        ("error", Kind::Text),
        ("note", Kind::Text),
    ];

    const PARAMETERS: &'static [&'static [Parameter]] =
        &[params::CONNECTION, params::TIMEOUTS, OWN];

    fn run(call: Call) -> Result<Vec<Vec<Cell>>, String> {
        let settings = call.settings()?;
        let p = &call.params;
        let catalog = DuckDbCatalog { host: &call.host };
        if p.flag("offline") {
            let mut outcomes = attach_local(&settings, &catalog).map_err(|e| e.to_string())?;
            qualify_views(&catalog, &mut outcomes);
            return Ok(outcomes.iter().map(table_row).collect());
        }
        let mut options = SyncOptions {
            dry_run: p.flag("dry_run"),
            all_tables: p.flag("all_tables"),
            timeouts: p.timeouts()?,
            cancel: call.cancel.clone(),
            ..Default::default()
        };
        let table = p.text("table").or_else(|| p.text("table_id"));
        options.scope = match (table, p.flag("docs_only")) {
            (_, true) => Scope::DocsOnly,
            (Some(table), false) => Scope::Table(table),
            (None, false) => Scope::All,
        };
        if let Some(threads) = p.count("threads")? {
            options.threads = threads;
        }
        if let Some(wait) = p.seconds("lock_timeout")? {
            options.lock_wait = wait;
        }
        match p.whole("scan_max_rows") {
            None => {}
            Some(n) if n >= 0 => options.scan_max_rows = n as u64,
            Some(n) => return Err(format!("scan_max_rows must be 0 or more, got {n}")),
        }
        match p.whole("scan_views") {
            None => {}
            Some(n) if n >= 0 => options.scan_views = n as usize,
            Some(n) => return Err(format!("scan_views must be 0 or more, got {n}")),
        }
        let progress: Box<dyn Progress> = match p.flag("progress") {
            true => Box::new(StderrProgress::new()),
            false => Box::new(NoProgress),
        };
        let mut report =
            sync(&settings, &options, &catalog, progress.as_ref()).map_err(|e| e.to_string())?;
        qualify_views(&catalog, &mut report.tables);
        Ok(report_rows(report))
    }
}

/// Gives each view its full name where the plain one may not find it
/// (`DuckDbCatalog::view_prefix`).
fn qualify_views(catalog: &DuckDbCatalog, outcomes: &mut [TableOutcome]) {
    if outcomes.iter().all(|o| o.view.is_none()) {
        return;
    }
    let Some(prefix) = catalog.view_prefix() else {
        return;
    };
    for view in outcomes.iter_mut().filter_map(|o| o.view.as_mut()) {
        *view = format!("{prefix}{}", identifier(view));
    }
}

fn table_row(o: &TableOutcome) -> Vec<Cell> {
    vec![
        "table".into(),
        o.table_id.as_str().into(),
        o.action.as_str().into(),
        o.rows.into(),
        o.size_bytes.into(),
        o.hash.clone().into(),
        o.view.clone().into(),
        o.error.clone().into(),
        o.note.clone().into(),
    ]
}

fn report_rows(mut report: SyncReport) -> Vec<Vec<Cell>> {
    // Each outcome is freed as its row is made, and their list shrinks as it
    // goes: with millions of tables the report and its rows are not held
    // whole at once (issue 13, case 15).
    let mut tables = std::mem::take(&mut report.tables);
    let mut rows: Vec<Vec<Cell>> = Vec::with_capacity(tables.len() + 1);
    while let Some(o) = tables.pop() {
        rows.push(table_row(&o));
        if tables.len().is_multiple_of(65536) {
            tables.shrink_to_fit();
        }
    }
    rows.reverse();
    let rules = &report.rules;
    let rules_dir = report.workspace.join(".claude").join("rules");
    rows.push(vec![
        "rules".into(),
        Cell::Null,
        rules.action.into(),
        (rules.files as u64).into(),
        Cell::Null,
        Cell::Null,
        Cell::Null,
        (rules.action == "failed")
            .then(|| rules.warnings.join("; "))
            .into(),
        rules_dir.to_string_lossy().to_string().into(),
    ]);
    if rules.action != "failed" {
        rows.extend(
            rules
                .warnings
                .iter()
                .map(|w| other_row("rules", "warning", w)),
        );
    }
    rows.extend(
        report
            .notices
            .iter()
            .map(|n| other_row("notice", "info", n)),
    );
    rows
}

fn other_row(kind: &str, action: &str, note: &str) -> Vec<Cell> {
    let mut row = vec![Cell::Null; 9];
    (row[0], row[2], row[8]) = (kind.into(), action.into(), note.into());
    row
}
