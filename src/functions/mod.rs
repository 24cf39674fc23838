//! One module per SQL function, each a thin adapter from parameters to an
//! engine call and from its report to rows.

mod version;

use std::error::Error;

use duckdb::Connection;

use crate::host::Host;

/// Registers every agnes table function in the loading database.
pub fn register(con: &Connection, host: &Host) -> Result<(), Box<dyn Error>> {
    con.register_table_function_with_extra_info::<version::Version, _>("agnes_version", host)?;
    Ok(())
}
