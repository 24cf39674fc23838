//! `da manifest`: runs `agnes_manifest()` (what the server offers, and what
//! is stale here) in an in-memory DuckDB; it writes nothing.

use crate::args::{Cli, ManifestArgs};
use crate::duckdb::{literal, DuckDb};
use crate::render::{self, Mode};
use crate::sync::{failure, settings};
use crate::{Failure, Outcome};

pub fn run(cli: &Cli, args: &ManifestArgs) -> Result<Outcome, Failure> {
    let settings = settings(&args.target)?;
    let duckdb = DuckDb::find(cli.duckdb.as_deref())?;
    let query = format!(
        "SELECT * FROM agnes_manifest(server := {}, workspace := {}, all_tables := {})",
        literal(&settings.server),
        literal(&settings.workspace.to_string_lossy()),
        args.all_tables
    );
    let rows = duckdb.query(None, &query, false).map_err(failure)?;
    render::manifest(&settings.server, &rows, Mode::of(args.json, false));
    Ok(Outcome::Done)
}
