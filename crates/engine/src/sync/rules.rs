//! Corporate memory as Claude Code rules (CONTRACT.md §1), the sync's last
//! step: the memory bundle fetched, rendered (`protocol/bundle.rs`) and
//! written into `.claude/rules/`, and every other `km_*.md` removed, since
//! the `km_` namespace belongs to sync. A failure here is a warning in the
//! report, never the sync's.

use std::fs;
use std::path::Path;

use crate::protocol::bundle::{self, RenderedRules};
use crate::sync::report::RulesOutcome;
use crate::transfer::http::ServerClient;
use crate::workspace::layout::Workspace;
use crate::workspace::state::write_atomic;

/// Fetches the memory bundle and writes the rules; a failure is a warning.
pub(crate) fn write_rules(client: &ServerClient, workspace: &Workspace) -> RulesOutcome {
    write_fetched_rules(fetch_bundle(client), workspace)
}

/// The memory bundle's body, or why it could not be fetched.
pub(crate) fn fetch_bundle(client: &ServerClient) -> std::result::Result<Vec<u8>, String> {
    client
        .get_json("/api/memory/bundle", "memory bundle fetch")
        .map_err(|e| e.to_string())
}

/// Writes the rules of a bundle fetched already (the quick no-op fetches
/// it beside the manifest); a failure is a warning.
pub(crate) fn write_fetched_rules(
    fetched: std::result::Result<Vec<u8>, String>,
    workspace: &Workspace,
) -> RulesOutcome {
    let rendered = fetched.and_then(|body| bundle::render(&body));
    match rendered.and_then(|r| write(&workspace.rules_dir(), &r).map(|_| r)) {
        Ok(r) => RulesOutcome {
            action: "written",
            files: r.files.len(),
            warnings: r.warnings,
        },
        Err(e) => RulesOutcome {
            action: "failed",
            files: 0,
            warnings: vec![format!("corporate memory not updated: {e}")],
        },
    }
}

pub(super) fn preview_rules(client: &ServerClient) -> RulesOutcome {
    match client
        .get_json("/api/memory/bundle", "memory bundle fetch")
        .map_err(|e| e.to_string())
        .and_then(|b| bundle::render(&b))
    {
        Ok(r) => RulesOutcome {
            action: "would_write",
            files: r.files.len(),
            warnings: r.warnings,
        },
        Err(e) => RulesOutcome {
            action: "failed",
            files: 0,
            warnings: vec![format!("corporate memory unavailable: {e}")],
        },
    }
}

/// Writes the rendered files into `dir` and deletes every other `km_*.md`.
/// Returns the number of files written (unchanged ones are not rewritten).
pub fn write(dir: &Path, rules: &RenderedRules) -> Result<usize, String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = 0;
    for (name, content) in &rules.files {
        let path = dir.join(name);
        if fs::read(&path).ok().as_deref() != Some(content.as_bytes()) {
            write_atomic(&path, content.as_bytes()).map_err(|e| e.to_string())?;
            written += 1;
        }
    }
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("km_") && name.ends_with(".md") && !rules.files.contains_key(&name) {
            fs::remove_file(entry.path())
                .map_err(|e| format!("cannot remove stale {name}: {e}"))?;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::bundle::render;

    #[test]
    fn write_replaces_the_km_namespace_and_leaves_other_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("km_old.md"), "stale").unwrap();
        fs::write(dir.path().join("km_approved.md"), "stale").unwrap();
        fs::write(dir.path().join("my-own-rule.md"), "mine").unwrap();
        let rules = render(
            br#"{"mandatory": [{"id": "x", "title": "X", "content": "c"}], "approved": []}"#,
        )
        .unwrap();
        assert_eq!(write(dir.path(), &rules).unwrap(), 1);
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["km_x.md", "my-own-rule.md"]);
        assert_eq!(
            write(dir.path(), &rules).unwrap(),
            0,
            "an unchanged file is not rewritten"
        );
    }
}
