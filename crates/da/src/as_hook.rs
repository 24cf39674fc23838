//! `da sync` started by Claude Code as a hook, from a line `da hooks install`
//! did not write. Workspaces set up by the old `da` have
//! `da sync --quiet 2>/dev/null || true` as their SessionStart hook (and
//! `da sync --upload-only --quiet ...` at SessionEnd) until someone installs
//! the hooks again; run as written, such a line holds the session start for
//! as long as the server takes (30 s and more against one that never
//! answers). Claude Code hands every hook its input as one JSON object on
//! stdin, with `hook_event_name`; a `da sync` that receives one runs as the
//! installed hook of that event does: detached, waiting at most `--wait`
//! (5 s) at SessionStart, not at all at SessionEnd. Run by hand (stdin a
//! terminal, empty, or without that object) it keeps its meaning.
//!
//! `.claude/settings.json` is not touched: the user's other hooks and
//! settings stay byte-for-byte as they are.

use std::io::IsTerminal;
use std::sync::mpsc;
use std::time::Duration;

use crate::args::SyncArgs;

/// How long to wait for the hook input. Claude Code writes it as it starts
/// the hook; a script whose stdin stays open and silent loses this much.
const INPUT_WAIT: Duration = Duration::from_millis(500);

/// The hook input is a small object; a larger stdin is not one.
const INPUT_LIMIT: u64 = 1 << 20;

/// The sync arguments this run should use when Claude Code started it as a
/// hook (the old hook lines), or `None` to run as asked.
pub fn hooked(args: &SyncArgs) -> Option<SyncArgs> {
    if args.detach || args.detached_run.is_some() || args.dry_run {
        return None;
    }
    let event = hook_event()?;
    Some(as_installed(args, &event))
}

/// What the installed hook of `event` would run instead of `args`.
fn as_installed(args: &SyncArgs, event: &str) -> SyncArgs {
    let mut hooked = args.clone();
    hooked.detach = true;
    match event {
        // Headless Claude Code ends a SessionEnd hook about a second after
        // starting it (CONTRACT.md §7.10).
        "SessionEnd" => hooked.wait = Some(0.0),
        // SessionEnd does not fire when a terminal is closed: what it
        // missed goes first, as with the installed SessionStart hook.
        "SessionStart" if !args.upload_only && !args.docs_only && args.table.is_none() => {
            hooked.upload_first = true
        }
        _ => {}
    }
    hooked
}

/// `hook_event_name` of the JSON object on stdin, if one arrives in time.
fn hook_event() -> Option<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return None;
    }
    let (sent, received) = mpsc::channel();
    // A thread, so that a stdin that stays open and silent costs only the
    // wait; reading stops at the end of the first JSON value.
    std::thread::Builder::new()
        .name("da-hook-input".into())
        .spawn(move || {
            use std::io::Read;
            let input = std::io::stdin().lock().take(INPUT_LIMIT);
            let first = serde_json::Deserializer::from_reader(input)
                .into_iter::<serde_json::Value>()
                .next();
            let _ = sent.send(first.and_then(Result::ok));
        })
        .ok()?;
    let value = received.recv_timeout(INPUT_WAIT).ok()??;
    value
        .get("hook_event_name")?
        .as_str()
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn sync_args(line: &str) -> SyncArgs {
        let cli = Cli::try_parse_from(line.split_whitespace()).unwrap();
        match cli.command {
            Some(Command::Sync(args)) => args,
            other => panic!("not a sync: {other:?}"),
        }
    }

    #[test]
    fn the_old_lines_run_as_the_installed_hooks() {
        let start = as_installed(&sync_args("da sync --quiet"), "SessionStart");
        assert!(start.detach && start.upload_first && start.quiet);
        assert_eq!(
            start.wait, None,
            "the installed bound: --wait, else AGNES_HOOK_WAIT, else 5 s"
        );

        let end = as_installed(&sync_args("da sync --upload-only --quiet"), "SessionEnd");
        assert!(end.detach && end.upload_only && !end.upload_first);
        assert_eq!(end.wait, Some(0.0));

        let table = as_installed(&sync_args("da sync --table orders --quiet"), "SessionStart");
        assert!(table.detach && !table.upload_first);
        assert_eq!(table.table.as_deref(), Some("orders"));
    }

    #[test]
    fn runs_already_detached_or_dry_are_left_as_asked() {
        for line in [
            "da sync --detach --quiet",
            "da sync --dry-run",
            "da sync --detached-run 1-2-3",
        ] {
            assert!(hooked(&sync_args(line)).is_none(), "{line}");
        }
    }
}
