//! One module per SQL function, each a thin adapter from parameters to an
//! engine call and from its report to rows.

mod manifest;
mod scan;
mod sync;
mod tables;
mod upload;
mod version;

use std::error::Error;

use duckdb::Connection;

use crate::host::Host;
use crate::rows::{Adapter, RowFunction};

/// Registers every agnes table function in the loading database.
pub fn register(con: &Connection, host: &Host) -> Result<(), Box<dyn Error>> {
    add::<version::Version>(con, host)?;
    add::<manifest::Manifest>(con, host)?;
    add::<sync::Sync>(con, host)?;
    add::<upload::Upload>(con, host)?;
    add::<tables::Tables>(con, host)?;
    // Two names: DuckDB's C API has no overloads of a table function, so
    // a raw query cannot be `agnes_scan(query := ...)` beside a table id.
    con.register_table_function_with_extra_info::<scan::ScanTable, _>(scan::NAME, host)?;
    con.register_table_function_with_extra_info::<scan::ScanQuery, _>(scan::QUERY_NAME, host)?;
    Ok(())
}

fn add<F: RowFunction>(con: &Connection, host: &Host) -> Result<(), Box<dyn Error>> {
    con.register_table_function_with_extra_info::<Adapter<F>, _>(F::NAME, host)?;
    Ok(())
}
