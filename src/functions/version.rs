//! `agnes_version()`: the extension's version and the DuckDB it runs in.

use crate::rows::{Call, Cell, Kind, RowFunction};

pub struct Version;

impl RowFunction for Version {
    const NAME: &'static str = "agnes_version";
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("extension_version", Kind::Text),
        ("duckdb_version", Kind::Text),
    ];

    fn run(_: Call) -> Result<Vec<Vec<Cell>>, String> {
        let duckdb_version = crate::sql::library_version();
        Ok(vec![vec![
            agnes_engine::VERSION.into(),
            duckdb_version.into(),
        ]])
    }
}
