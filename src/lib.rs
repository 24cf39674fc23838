//! The DuckDB face of agnes: table functions that parse parameters, call the
//! sync engine, create views and emit rows. No sync logic lives here.

mod access;
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
    if access::check(host).is_err() {
        return;
    }
    let Ok(settings) = agnes_engine::Settings::resolve(&agnes_engine::Overrides::default()) else {
        return;
    };
    let _ = agnes_engine::attach_local(&settings, &catalog::DuckDbCatalog { host });
}
