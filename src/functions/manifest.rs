//! `agnes_manifest()`: what the server offers and how each table compares
//! with this workspace. Reads only.

use std::error::Error;

use agnes_engine::{inspect, Settings};
use duckdb::core::LogicalTypeHandle;
use duckdb::vtab::BindInfo;

use crate::host::Host;
use crate::params;
use crate::rows::{Cell, Kind, RowFunction};

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
    ];

    fn named_parameters() -> Vec<(String, LogicalTypeHandle)> {
        const OWN: &[params::Parameter] = &[("all_tables", duckdb::core::LogicalTypeId::Boolean)];
        params::named(&[params::CONNECTION, params::TIMEOUT, OWN])
    }

    fn run(bind: &BindInfo, _: &Host) -> Result<Vec<Vec<Cell>>, Box<dyn Error>> {
        let settings = Settings::resolve(&params::overrides(bind))?;
        let rows = inspect(
            &settings,
            params::timeouts(bind)?,
            params::flag(bind, "all_tables"),
        )?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let e = r.entry;
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
                ]
            })
            .collect())
    }
}
