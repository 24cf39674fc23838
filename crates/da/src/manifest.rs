//! `da manifest`: runs `agnes_manifest()` (what the server offers, and what
//! is stale here) in an in-memory DuckDB; it writes nothing.

use crate::args::{settings, Cli, ManifestArgs};
use crate::duckdb::{failure, DuckDb};
use crate::outcome::{Failure, Outcome};
use crate::render::{self, Mode};

pub fn run(cli: &Cli, args: &ManifestArgs) -> Result<Outcome, Failure> {
    let settings = settings(&args.target)?;
    let duckdb = DuckDb::find(cli.duckdb.as_deref())?.for_target(&settings);
    let query = format!(
        "SELECT * FROM agnes_manifest(all_tables := {})",
        args.all_tables
    );
    let rows = duckdb.query(None, &query, false).map_err(failure)?;
    render::manifest(&settings.server, &rows, Mode::of(args.json, false));
    Ok(Outcome::Done)
}
