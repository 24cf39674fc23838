//! `da hooks install`: the merge itself is the engine's (`hooks::install`,
//! CONTRACT.md §6); this says what it did.

use agnes_engine::config::workspace_dir;
use agnes_engine::hooks::{self, Change};

use crate::args::HooksArgs;
use crate::render;
use crate::{Failure, Outcome};

pub fn install(args: &HooksArgs) -> Result<Outcome, Failure> {
    let workspace = workspace_dir(args.workspace.as_deref())?;
    let path = workspace.join(".claude").join("settings.json");
    let said = match hooks::install(&path)? {
        Change::Created => "Created",
        Change::Updated => "Installed the hooks in",
        Change::Unchanged => "The hooks are already installed in",
    };
    render::out(&format!(
        "{said} {}\n  SessionStart: {}\n  SessionEnd:   {}\n",
        path.display(),
        hooks::SESSION_START_COMMAND,
        hooks::SESSION_END_COMMAND
    ));
    Ok(Outcome::Done)
}
