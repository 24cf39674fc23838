//! `agnes_sync()`: verified downloads, views in this database, rules; one row
//! per table considered, then the rules step and any notices.

use agnes_engine::{
    attach_local, sync, NoProgress, Progress, Scope, Settings, SyncOptions, SyncReport,
    TableOutcome,
};
use duckdb::core::LogicalTypeId;

use crate::catalog::DuckDbCatalog;
use crate::params::{self, Parameter};
use crate::progress::StderrProgress;
use crate::rows::{Call, Cell, Kind, RowFunction};

const OWN: &[Parameter] = &[
    // `table` is a reserved word: `"table" := 'x'`, or the alias.
    ("table", LogicalTypeId::Varchar),
    ("table_id", LogicalTypeId::Varchar),
    ("docs_only", LogicalTypeId::Boolean),
    ("dry_run", LogicalTypeId::Boolean),
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
        crate::access::check(&call.host)?;
        let p = &call.params;
        let settings = Settings::resolve(&p.overrides()).map_err(|e| e.to_string())?;
        let catalog = DuckDbCatalog { host: &call.host };
        if p.flag("offline") {
            let outcomes = attach_local(&settings, &catalog).map_err(|e| e.to_string())?;
            return Ok(outcomes.iter().map(table_row).collect());
        }
        let mut options = SyncOptions {
            dry_run: p.flag("dry_run"),
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
        let report =
            sync(&settings, &options, &catalog, progress.as_ref()).map_err(|e| e.to_string())?;
        Ok(report_rows(&report))
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

fn report_rows(report: &SyncReport) -> Vec<Vec<Cell>> {
    let mut rows: Vec<Vec<Cell>> = report.tables.iter().map(table_row).collect();
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
