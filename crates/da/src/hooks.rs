//! `da hooks install`: the merge itself is the engine's (`hooks::install`,
//! CONTRACT.md §6); this says what it did, and what else there is: hooks of
//! the current Agnes CLI sync the same workspace, so both would run on every
//! session (`--replace-agnes-hooks` removes theirs).

use agnes_engine::config::workspace_dir;
use agnes_engine::hooks::install::{install_with, Change};
use agnes_engine::hooks::merge::{SESSION_END_COMMAND, SESSION_START_COMMAND};

use crate::args::HooksArgs;
use crate::outcome::{Failure, Outcome};
use crate::render;

pub fn install(args: &HooksArgs) -> Result<Outcome, Failure> {
    let workspace = workspace_dir(args.workspace.as_deref())?;
    let path = workspace.join(".claude").join("settings.json");
    let installed = install_with(&path, args.replace_agnes_hooks)?;
    let said = match installed.change {
        Change::Created => "Created",
        Change::Updated => "Installed the hooks in",
        Change::Unchanged => "The hooks are already installed in",
    };
    let mut text = format!(
        "{said} {}\n  SessionStart: {}\n  SessionEnd:   {}\n",
        path.display(),
        SESSION_START_COMMAND,
        SESSION_END_COMMAND
    );
    let theirs = &installed.agnes_cli_hooks;
    if !theirs.is_empty() {
        text += match args.replace_agnes_hooks {
            true => "Removed the Agnes CLI's hooks:\n",
            false => "Also there: the Agnes CLI's hooks, which sync this same workspace, so both would sync it:\n",
        };
        for hook in theirs {
            text += &format!("  {}: {}\n", one_line(&hook.event), one_line(&hook.command));
        }
        if !args.replace_agnes_hooks {
            text += "Run `da hooks install --replace-agnes-hooks` to remove them.\n";
        }
    }
    text += "`da status` shows what the hooks did.\n";
    render::out(&text);
    Ok(Outcome::Done)
}

/// A command from the settings file on one line, without control characters.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
