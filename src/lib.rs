//! The DuckDB face of agnes: table functions that parse parameters, call the
//! sync engine, create views and emit rows. No sync logic lives here.

mod catalog;
mod entry;
mod functions;
mod host;
mod interrupt;
mod params;
mod progress;
mod rows;
mod sql;

use std::error::Error;

use duckdb::{ffi, Connection};

/// Sets agnes up in a database that is loading it (src/entry.rs).
///
/// `database` is only valid during this call; `Host` opens its own
/// connection now, while that is still allowed (DESIGN.md).
fn load(con: &Connection, database: ffi::duckdb_database) -> Result<(), Box<dyn Error>> {
    // SAFETY: called from the entry point, with its live database handle.
    let host = unsafe { host::Host::open(database)? };
    functions::register(con, &host)?;
    attach_on_load(&host);
    Ok(())
}

/// Offline views at `LOAD`: a fresh session (a notebook) gets the tables its
/// workspace already synced, without asking the server anything. Never fails
/// the `LOAD`: no workspace state, a read-only database or a broken file just
/// means fewer views. `AGNES_ATTACH_ON_LOAD=0` turns it off.
fn attach_on_load(host: &host::Host) {
    if std::env::var("AGNES_ATTACH_ON_LOAD").is_ok_and(|v| v == "0") {
        return;
    }
    let Ok(settings) = agnes_engine::Settings::resolve(&agnes_engine::Overrides::default()) else {
        return;
    };
    let _ = agnes_engine::attach_local(&settings, &catalog::DuckDbCatalog { host });
}
