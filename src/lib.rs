//! The DuckDB face of agnes: table functions that parse parameters, call the
//! sync engine, create views and emit rows. No sync logic lives here.

mod access;
mod catalog;
mod entry;
mod functions;
mod host;
mod interrupt;
mod names;
mod older_views;
mod params;
mod progress;
mod rows;
mod scan_types;
mod sql;

use std::error::Error;
use std::sync::Arc;

use duckdb::{ffi, Connection};

/// Sets agnes up in a database that is loading it (src/entry.rs).
///
/// `database` is only valid during this call; `Host` opens its own
/// connection now, while that is still allowed (DESIGN.md).
fn load(con: &Connection, database: ffi::duckdb_database) -> Result<(), Box<dyn Error>> {
    let attach = !std::env::var("AGNES_ATTACH_ON_LOAD").is_ok_and(|v| v == "0");
    // Without a configuration (no token, say) agnes still loads: the
    // functions say what is missing when they are called.
    let settings = attach
        .then(|| agnes_engine::Settings::resolve(&agnes_engine::Overrides::default()).ok())
        .flatten();
    let names = Arc::new(names::SyncedNames::new(settings.clone()));
    // SAFETY: called from the entry point, with its live database handle.
    let host = unsafe {
        names::register(database, names.clone());
        host::Host::open(database, names)?
    };
    functions::register(con, &host)?;
    if let Some(settings) = settings {
        attach_on_load(&host, &settings);
    }
    Ok(())
}

/// The workspace's synced tables at `LOAD`, without asking the server: in a
/// database file, agnes's views are brought up to date (they persist, and
/// other tools that open the file without agnes read them); in an in-memory
/// session nothing is created, the replacement scan (names.rs) answers each
/// name when a query uses it. Never fails the `LOAD`: no workspace state, a
/// read-only database or a broken file just means fewer views.
/// `AGNES_ATTACH_ON_LOAD=0` turns both off.
fn attach_on_load(host: &host::Host, settings: &agnes_engine::Settings) {
    let in_memory = host.with_connection(|con| {
        con.query(
            "SELECT path IS NULL FROM duckdb_databases() WHERE database_name = current_database()",
        )
    });
    if let Ok(rows) = in_memory {
        if rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .as_deref()
            == Some("true")
        {
            return;
        }
    }
    if access::check(host).is_err() {
        return;
    }
    let _ = agnes_engine::attach_local(settings, &catalog::DuckDbCatalog { host });
}
