//! Where a workspace's session transcripts are, and the name each is sent
//! under (CONTRACT.md §5, §7).
//!
//! Claude Code writes transcripts to `<projects root>/<encoded workspace>/
//! <session id>.jsonl` and nothing copies them into `user/sessions/`, so
//! both places are read. The projects root is `$CLAUDE_CONFIG_DIR/projects`,
//! else `~/.claude/projects`; the encoded workspace is the workspace's
//! absolute path with one trailing separator removed and every character
//! outside `[A-Za-z0-9]` replaced by `-` (runs are not collapsed).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::digest::md5_hex;

/// The longest name a 0.84 server takes (`[A-Za-z0-9._-]{1,200}`).
pub const MAX_NAME: usize = 200;

/// Claude Code's projects root, from the environment as given.
pub fn projects_root(claude_config_dir: Option<&OsStr>, home: Option<&OsStr>) -> Option<PathBuf> {
    match claude_config_dir.filter(|d| !d.is_empty()) {
        Some(dir) => Some(Path::new(dir).join("projects")),
        None => home
            .filter(|h| !h.is_empty())
            .map(|h| Path::new(h).join(".claude").join("projects")),
    }
}

/// The folder name Claude Code gives a workspace at `absolute`.
pub fn encode_workspace(absolute: &Path) -> String {
    let text = absolute.to_string_lossy();
    let sep = std::path::MAIN_SEPARATOR;
    let text = match text.strip_suffix(sep) {
        Some(stripped) if !stripped.is_empty() => stripped,
        _ => &text,
    };
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// The folders where Claude Code keeps this workspace's transcripts: for its
/// absolute path as given and, when that differs, as resolved (Claude Code
/// names the folder after the directory it ran in, which a symlinked path
/// may reach either way).
pub fn claude_folders(workspace: &Path) -> Vec<PathBuf> {
    let root = projects_root(
        std::env::var_os("CLAUDE_CONFIG_DIR").as_deref(),
        std::env::var_os("HOME").as_deref(),
    );
    let Some(root) = root else {
        return Vec::new();
    };
    let absolute = match workspace.is_absolute() {
        true => workspace.to_path_buf(),
        false => match std::env::current_dir() {
            Ok(cwd) => cwd.join(workspace),
            Err(_) => return Vec::new(),
        },
    };
    let mut folders = vec![root.join(encode_workspace(&absolute))];
    if let Ok(real) = std::fs::canonicalize(&absolute) {
        let other = root.join(encode_workspace(&real));
        if !folders.contains(&other) {
            folders.push(other);
        }
    }
    folders
}

/// Whether a 0.84 server takes `name` as it is: `[A-Za-z0-9._-]{1,200}`.
pub fn is_accepted_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The name a transcript is sent under: its own when the server takes it,
/// else a safe one derived from it, stable from run to run: other
/// characters become `_`, the stem is shortened, and 8 hex characters of the
/// original name's MD5 keep two odd names apart.
pub fn upload_name(file_name: &OsStr) -> String {
    if let Some(name) = file_name.to_str().filter(|n| is_accepted_name(n)) {
        return name.to_string();
    }
    let lossy = file_name.to_string_lossy();
    let stem = lossy.strip_suffix(".jsonl").unwrap_or(&lossy);
    let safe: String = stem
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                true => c,
                false => '_',
            },
        )
        .take(150)
        .collect();
    let digest = md5_hex(file_name.as_encoded_bytes());
    format!("{safe}-{}.jsonl", &digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_projects_root_prefers_claude_config_dir() {
        let os = |s: &str| Some(OsStr::new(s).to_owned());
        assert_eq!(
            projects_root(os("/cfg").as_deref(), os("/home/me").as_deref()),
            Some(PathBuf::from("/cfg/projects"))
        );
        assert_eq!(
            projects_root(os("").as_deref(), os("/home/me").as_deref()),
            Some(PathBuf::from("/home/me/.claude/projects"))
        );
        assert_eq!(projects_root(None, None), None);
    }

    #[test]
    fn workspace_paths_are_encoded_char_by_char() {
        let enc = |p: &str| encode_workspace(Path::new(p));
        assert_eq!(enc("/home/me/my.ws"), "-home-me-my-ws");
        assert_eq!(enc("/home/me/my.ws/"), "-home-me-my-ws");
        assert_eq!(enc("/tmp/a b--c..d"), "-tmp-a-b--c--d");
        assert_eq!(enc("/tmp/é"), "-tmp--");
        assert_eq!(enc("/"), "-");
    }

    #[test]
    fn odd_names_get_a_safe_stable_name() {
        let name = |s: &str| upload_name(OsStr::new(s));
        assert_eq!(name("0a1b-c2.jsonl"), "0a1b-c2.jsonl");
        let odd = name("my session (1).jsonl");
        assert!(
            odd.starts_with("my_session__1_-") && odd.ends_with(".jsonl"),
            "{odd}"
        );
        assert!(is_accepted_name(&odd), "{odd}");
        assert_eq!(odd, name("my session (1).jsonl"), "stable");
        assert_ne!(odd, name("my session [1].jsonl"), "distinct");
        let long = name(&format!("{}.jsonl", "é".repeat(300)));
        assert!(is_accepted_name(&long) && long.len() <= 170, "{long}");
        assert!(!is_accepted_name(&"a".repeat(201)));
    }
}
