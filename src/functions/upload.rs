//! `agnes_upload()`: session transcripts and personal notes back to the
//! server, each once; one row per file, then any notices.

use std::error::Error;

use agnes_engine::{upload, Settings, UploadOptions, UploadOutcome, UploadReport};
use duckdb::core::{LogicalTypeHandle, LogicalTypeId};
use duckdb::vtab::BindInfo;

use crate::host::Host;
use crate::params;
use crate::rows::{Cell, Kind, RowFunction};

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

    fn named_parameters() -> Vec<(String, LogicalTypeHandle)> {
        const OWN: &[params::Parameter] = &[("dry_run", LogicalTypeId::Boolean)];
        params::named(&[params::CONNECTION, params::TIMEOUT, OWN])
    }

    fn run(bind: &BindInfo, _: &Host) -> Result<Vec<Vec<Cell>>, Box<dyn Error>> {
        let settings = Settings::resolve(&params::overrides(bind))?;
        let options = UploadOptions {
            dry_run: params::flag(bind, "dry_run"),
            timeouts: params::timeouts(bind)?,
            ..Default::default()
        };
        Ok(report_rows(&upload(&settings, &options)?))
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
