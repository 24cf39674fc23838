//! `agnes_manifest()`: what the server offers and how each table compares
//! with this workspace. Reads only.

use agnes_engine::{inspect, Status};

use crate::params::{self, Parameter};
use crate::rows::{Call, Cell, Kind, RowFunction};

/// Every readable table, not only the subscribed ones (0.84).
const OWN: &[Parameter] = &[("all_tables", duckdb::core::LogicalTypeId::Boolean)];

pub struct Manifest;

impl RowFunction for Manifest {
    const NAME: &'static str = "agnes_manifest";
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("table_id", Kind::Text),
        ("query_mode", Kind::Text),
        ("source_type", Kind::Text),
        ("rows", Kind::BigInt),
        ("size_bytes", Kind::BigInt),
        ("hash", Kind::Text),
        ("updated", Kind::Text),
        ("local_hash", Kind::Text),
        ("status", Kind::Text),
        ("error", Kind::Text),
        // downloaded, scannable, or both (every table the server lists can
        // be queried there with agnes_scan()).
        ("available", Kind::Text),
    ];

    const PARAMETERS: &'static [&'static [Parameter]] =
        &[params::CONNECTION, params::TIMEOUTS, OWN];

    fn run(call: Call) -> Result<Vec<Vec<Cell>>, String> {
        let settings = call.settings()?;
        let p = &call.params;
        let rows = inspect(&settings, p.timeouts()?, p.flag("all_tables"), &call.cancel)
            .map_err(|e| e.to_string())?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let e = r.entry;
                let downloaded = matches!(
                    r.status,
                    Status::Unchanged | Status::Changed | Status::Unknown
                );
                let available = match (downloaded, e.invalid.is_none()) {
                    (true, true) => Some("both"),
                    (true, false) => Some("downloaded"),
                    (false, true) => Some("scannable"),
                    (false, false) => None,
                };
                vec![
                    e.id.into(),
                    e.query_mode.as_str().into(),
                    e.source_type.into(),
                    e.rows.into(),
                    e.size_bytes.into(),
                    e.hash.into(),
                    e.updated.into(),
                    r.local_hash.into(),
                    r.status.as_str().into(),
                    e.invalid.into(),
                    available.into(),
                ]
            })
            .collect())
    }
}
