//! What the server offers and how each table compares with this workspace
//! (`agnes_manifest()`). Reads only; writes nothing.

use crate::cancel::Cancel;
use crate::config::Settings;
use crate::error::Result;
use crate::protocol::manifest;
use crate::sync::plan::{Scope, Status};
use crate::sync::run::{fetch_manifest, plan_here};
use crate::transfer::http::{ServerClient, Timeouts};
use crate::workspace::layout::Workspace;
use crate::workspace::state::StateFile;

/// One row of `agnes_manifest()`: a server table beside the local copy.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestRow {
    pub entry: manifest::TableEntry,
    pub local_hash: Option<String>,
    pub status: Status,
}

/// What the server offers and how each table compares with this workspace.
/// Reads only; writes nothing.
/// `all_tables` compares every table, subscribed or not.
pub fn inspect(
    settings: &Settings,
    timeouts: Timeouts,
    all_tables: bool,
    cancel: &Cancel,
) -> Result<Vec<ManifestRow>> {
    let r = settings.redactor();
    let mut rows =
        inspect_unredacted(settings, timeouts, all_tables, cancel).map_err(|e| e.redacted(&r))?;
    for row in &mut rows {
        let e = &mut row.entry;
        for text in [&mut e.id, &mut e.hash, &mut e.source_type] {
            *text = r.text(text);
        }
        r.option(&mut e.updated);
        r.option(&mut e.invalid);
        r.option(&mut row.local_hash);
    }
    Ok(rows)
}

fn inspect_unredacted(
    settings: &Settings,
    timeouts: Timeouts,
    all_tables: bool,
    cancel: &Cancel,
) -> Result<Vec<ManifestRow>> {
    let workspace = Workspace::new(&settings.workspace);
    let client = ServerClient::new(settings, timeouts, cancel)?;
    let manifest = fetch_manifest(&client)?;
    let mut state = StateFile::load(&workspace, &settings.server, &settings.config_dir, true)?;
    let mut manifest = manifest;
    let (plan, _, _) = plan_here(
        &mut manifest,
        &mut state.state,
        &workspace,
        &Scope::All,
        all_tables,
    )?;
    Ok(plan
        .tables
        .into_iter()
        .map(|t| ManifestRow {
            local_hash: state.state.tables.get(&t.entry.id).map(|l| l.hash.clone()),
            status: t.status,
            entry: t.entry,
        })
        .collect())
}
