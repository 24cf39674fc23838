//! `agnes_version()`: the extension's version and the DuckDB it runs in.

use std::error::Error;

use duckdb::vtab::BindInfo;

use crate::host::Host;
use crate::rows::{Cell, Kind, RowFunction};

pub struct Version;

impl RowFunction for Version {
    const NAME: &'static str = "agnes_version";
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("extension_version", Kind::Text),
        ("duckdb_version", Kind::Text),
    ];

    fn run(_: &BindInfo, host: &Host) -> Result<Vec<Vec<Cell>>, Box<dyn Error>> {
        let duckdb_version =
            host.with_connection(|con| con.version().map_err(|e| e.to_string()))?;
        Ok(vec![vec![
            agnes_engine::VERSION.into(),
            duckdb_version.into(),
        ]])
    }
}
