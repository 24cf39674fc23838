//! The DuckDB face of agnes: table functions that parse parameters, call the
//! sync engine, create views and emit rows. No sync logic lives here.

mod catalog;
mod functions;
mod host;
mod params;
mod progress;
mod rows;

use std::error::Error;

use duckdb::{duckdb_entrypoint_c_api, Connection};

/// Entry point DuckDB calls once per database on `LOAD agnes`.
///
/// The connection handed in is only valid during this call; `Host` opens its
/// own connection now, while that is still allowed (DESIGN.md).
#[duckdb_entrypoint_c_api(ext_name = "agnes", min_duckdb_version = "v1.2.0")]
pub unsafe fn extension_entrypoint(con: Connection) -> Result<(), Box<dyn Error>> {
    let host = host::Host::open(&con)?;
    functions::register(&con, &host)?;
    Ok(())
}
