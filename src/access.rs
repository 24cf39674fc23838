//! `SET enable_external_access = false` stops DuckDB from reaching files and
//! the network; it stops agnes too. Asked at each call, from the database
//! itself, so that a setting made after `LOAD agnes` counts.

use crate::host::Host;

const ASK: &str = "SELECT current_setting('enable_external_access')::BOOLEAN";

/// `Err` with the reason when the database forbids external access (or
/// cannot say whether it does: then nothing is risked either).
pub fn check(host: &Host) -> Result<(), String> {
    answer(host.with_connection(|con| con.query(ASK)))
}

/// `check` at bind: when agnes's own connection is busy, it is agnes
/// creating a view over `agnes_scan()` during a sync, which checked
/// already (asking would wait for itself). Execution checks again.
pub fn check_at_bind(host: &Host) -> Result<(), String> {
    match host.try_with_connection(|con| con.query(ASK)) {
        None => Ok(()),
        Some(rows) => answer(rows),
    }
}

fn answer(rows: Result<Vec<Vec<Option<String>>>, String>) -> Result<(), String> {
    let rows = rows.map_err(|e| format!("cannot read enable_external_access: {e}"))?;
    match rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .as_deref()
    {
        Some("true") => Ok(()),
        _ => Err(
            "enable_external_access is false in this database: agnes reaches neither the \
             server nor the workspace's files"
                .into(),
        ),
    }
}
