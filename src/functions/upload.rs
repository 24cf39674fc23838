//! `agnes_upload()`: session transcripts and personal notes back to the
//! server, each once; one row per file, then any notices.

use agnes_engine::{upload, UploadOptions, UploadOutcome, UploadReport};
use duckdb::core::LogicalTypeId;

use crate::params::{self, Parameter};
use crate::rows::{Call, Cell, Kind, RowFunction};

const OWN: &[Parameter] = &[
    ("dry_run", LogicalTypeId::Boolean),
    ("lock_timeout", LogicalTypeId::Double),
];

pub struct Upload;

impl RowFunction for Upload {
    const NAME: &'static str = "agnes_upload";
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("kind", Kind::Text),
        ("path", Kind::Text),
        ("action", Kind::Text),
        ("bytes", Kind::BigInt),
        ("error", Kind::Text),
        ("note", Kind::Text),
    ];

    const PARAMETERS: &'static [&'static [Parameter]] =
        &[params::CONNECTION, params::TIMEOUTS, OWN];

    fn run(call: Call) -> Result<Vec<Vec<Cell>>, String> {
        let settings = call.settings()?;
        let p = &call.params;
        let mut options = UploadOptions {
            dry_run: p.flag("dry_run"),
            timeouts: p.timeouts()?,
            cancel: call.cancel.clone(),
            ..Default::default()
        };
        // `da`'s detached runs wait longer: nobody is waiting for them.
        if let Some(wait) = p.seconds("lock_timeout")? {
            options.lock_wait = wait;
        }
        let report = upload(&settings, &options).map_err(|e| e.to_string())?;
        Ok(report_rows(&report))
    }
}

fn file_row(o: &UploadOutcome) -> Vec<Cell> {
    vec![
        o.kind.as_str().into(),
        o.path.to_string_lossy().into_owned().into(),
        o.action.as_str().into(),
        o.bytes.into(),
        o.error.clone().into(),
        o.note.clone().into(),
    ]
}

/// The files, then a `notice` row (action `warning`) per workspace-level
/// notice, its text in `error`.
fn report_rows(report: &UploadReport) -> Vec<Vec<Cell>> {
    let mut rows: Vec<Vec<Cell>> = report.files.iter().map(file_row).collect();
    rows.extend(report.notices.iter().map(|n| {
        vec![
            "notice".into(),
            Cell::Null,
            "warning".into(),
            Cell::Null,
            n.as_str().into(),
            Cell::Null,
        ]
    }));
    rows
}
