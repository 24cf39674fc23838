//! Installing the hooks into `<workspace>/.claude/settings.json`, and
//! reading what a settings file holds of them (`da status`). The file is
//! replaced atomically, keeps its permissions, and stays a link when it is
//! one; a file that is not a JSON object is reported and left byte for byte
//! as it was.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::hooks::merge::{
    commands, find_agnes_cli_hooks, merge_with, parse, runs_da_sync, AgnesCliHook,
    SESSION_END_COMMAND, SESSION_START_COMMAND,
};

/// What `install` did to the settings file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// There was no file; it now holds the hooks.
    Created,
    /// The hooks were added or our earlier entries replaced.
    Updated,
    /// The hooks were already there exactly; the file was not rewritten.
    Unchanged,
}

/// What `install` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub change: Change,
    /// The Agnes CLI's hooks found: removed with `replace_agnes_hooks`,
    /// else still there.
    pub agnes_cli_hooks: Vec<AgnesCliHook>,
}

/// Writes the hooks into `settings` (`<workspace>/.claude/settings.json`),
/// creating the file and its folder when missing. The new file replaces the
/// old one atomically and keeps its permissions.
pub fn install(settings: &Path) -> Result<Change> {
    install_with(settings, false).map(|i| i.change)
}

/// `install`, also removing the Agnes CLI's hooks when `replace_agnes_hooks`.
pub fn install_with(settings: &Path, replace_agnes_hooks: bool) -> Result<Installed> {
    // A linked settings.json (dotfiles kept elsewhere) stays a link: the
    // file it points to is the one updated.
    let target = through_links(settings);
    let settings = target.as_path();
    let existing = match fs::read_to_string(settings) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        // Not UTF-8 is not JSON either: reported, not touched.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(Error::InvalidSettings {
                path: settings.to_path_buf(),
                reason: "not UTF-8 text".into(),
            })
        }
        Err(e) => return Err(Error::io("read", settings)(e)),
    };
    let invalid = |reason| Error::InvalidSettings {
        path: settings.to_path_buf(),
        reason,
    };
    let agnes_cli_hooks = match &existing {
        Some(text) => find_agnes_cli_hooks(text).map_err(invalid)?,
        None => Vec::new(),
    };
    let merged = merge_with(existing.as_deref(), replace_agnes_hooks).map_err(invalid)?;
    let Some(text) = merged else {
        return Ok(Installed {
            change: Change::Unchanged,
            agnes_cli_hooks,
        });
    };
    write_atomically(settings, text.as_bytes())?;
    let change = match existing {
        None => Change::Created,
        Some(_) => Change::Updated,
    };
    Ok(Installed {
        change,
        agnes_cli_hooks,
    })
}

/// How one of our two hooks stands in a settings file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookState {
    /// Today's command is there.
    Installed,
    /// A `da sync` entry of an earlier install (run synchronously): `da
    /// hooks install` replaces it.
    Outdated,
    Missing,
}

/// What a settings file holds of ours and of the Agnes CLI's (`da status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HooksReport {
    pub session_start: HookState,
    pub session_end: HookState,
    pub agnes_cli_hooks: Vec<AgnesCliHook>,
}

/// Reads `settings` without changing it: `Ok(None)` when there is no file.
pub fn inspect(settings: &Path) -> Result<Option<HooksReport>> {
    let text = match fs::read_to_string(settings) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", settings)(e)),
    };
    let invalid = |reason| Error::InvalidSettings {
        path: settings.to_path_buf(),
        reason,
    };
    let agnes_cli_hooks = find_agnes_cli_hooks(&text).map_err(invalid)?;
    let value = parse(&text).map_err(invalid)?;
    let state = |event: &str, command: &str| {
        let entries = value
            .get("hooks")
            .and_then(|h| h.get(event))
            .and_then(Value::as_array);
        let entries = entries.map(Vec::as_slice).unwrap_or_default();
        let ours = |e: &Value| commands(e).any(|c| c == command);
        match (entries.iter().any(ours), entries.iter().any(runs_da_sync)) {
            (true, _) => HookState::Installed,
            (false, true) => HookState::Outdated,
            (false, false) => HookState::Missing,
        }
    };
    Ok(Some(HooksReport {
        session_start: state("SessionStart", SESSION_START_COMMAND),
        session_end: state("SessionEnd", SESSION_END_COMMAND),
        agnes_cli_hooks,
    }))
}

/// Where `path` leads when it is a symbolic link (followed to the end, a
/// dangling link to the file it would create), else `path`.
fn through_links(path: &Path) -> std::path::PathBuf {
    let mut path = path.to_path_buf();
    // As many hops as Linux follows; a loop then fails at the read.
    for _ in 0..40 {
        match fs::read_link(&path) {
            Ok(target) => path = path.parent().unwrap_or(Path::new(".")).join(target),
            Err(_) => break,
        }
    }
    path
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over
/// `path`: a reader sees the old file or the new one, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(Error::io("create a temporary file in", dir))?;
    tmp.write_all(bytes).map_err(Error::io("write", path))?;
    keep_permissions(path, tmp.as_file())?;
    tmp.as_file().sync_all().map_err(Error::io("sync", path))?;
    crate::workspace::replace::persist(tmp, path)
        .map_err(|e| Error::io("replace", path)(e.error))?;
    Ok(())
}

/// The new file gets the old one's mode (a temporary file is created 0600);
/// a new `settings.json` gets the usual 0644.
#[cfg(unix)]
fn keep_permissions(path: &Path, new: &fs::File) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    new.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(Error::io("set permissions of", path))
}

/// Windows has no modes: the new file takes the folder's access rules, like
/// the old one, and only a read-only flag is carried over.
#[cfg(not(unix))]
fn keep_permissions(path: &Path, new: &fs::File) -> Result<()> {
    match fs::metadata(path) {
        Ok(old) if old.permissions().readonly() => new
            .set_permissions(old.permissions())
            .map_err(Error::io("set permissions of", path)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::merge::tests::FRESH;

    #[cfg(unix)]
    fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
        std::os::unix::fs::symlink(target, link).unwrap();
    }

    #[test]
    fn install_creates_updates_and_leaves_invalid_files_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".claude").join("settings.json");
        assert_eq!(install(&path).unwrap(), Change::Created);
        assert_eq!(fs::read_to_string(&path).unwrap(), FRESH);
        assert_eq!(install(&path).unwrap(), Change::Unchanged);

        fs::write(&path, r#"{"a": 1}"#).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
            assert_eq!(install(&path).unwrap(), Change::Updated);
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o640);
        }
        #[cfg(not(unix))]
        assert_eq!(install(&path).unwrap(), Change::Updated);
        let v: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["a"], 1);
        assert_eq!(
            v["hooks"]["SessionEnd"][0]["hooks"][0]["command"],
            SESSION_END_COMMAND
        );

        let broken = b"{\"hooks\": {\"SessionStart\": [}\n\xff";
        fs::write(&path, broken).unwrap();
        let err = install(&path).unwrap_err();
        assert!(matches!(err, Error::InvalidSettings { .. }), "{err}");
        assert!(err.to_string().contains("left it untouched"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), broken);
        fs::write(&path, b"{\"x\": [1,}").unwrap();
        assert!(install(&path).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"{\"x\": [1,}");
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_linked_settings_file_stays_a_link_and_its_target_is_updated() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("dotfiles").join("claude-settings.json");
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::write(&target, "{\"model\": \"opus\"}").unwrap();
        let path = dir.path().join(".claude").join("settings.json");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        symlink("../dotfiles/claude-settings.json", &path);
        assert_eq!(install(&path).unwrap(), Change::Updated);
        assert!(fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        let v: Value = serde_json::from_str(&fs::read_to_string(&target).unwrap()).unwrap();
        assert_eq!(v["model"], "opus");
        assert_eq!(
            v["hooks"]["SessionStart"][0]["hooks"][0]["command"],
            SESSION_START_COMMAND
        );
        assert_eq!(install(&path).unwrap(), Change::Unchanged);
    }

    #[test]
    fn inspect_tells_installed_outdated_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        assert_eq!(inspect(&path).unwrap(), None);
        fs::write(
            &path,
            r#"{"hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": "da sync --quiet 2>/dev/null || true"}]}],
                          "Stop": [{"hooks": [{"type": "command", "command": "agnes push"}]}]}}"#,
        )
        .unwrap();
        let report = inspect(&path).unwrap().unwrap();
        assert_eq!(report.session_start, HookState::Outdated);
        assert_eq!(report.session_end, HookState::Missing);
        assert_eq!(report.agnes_cli_hooks.len(), 1);
        install(&path).unwrap();
        let report = inspect(&path).unwrap().unwrap();
        assert_eq!(
            (report.session_start, report.session_end),
            (HookState::Installed, HookState::Installed)
        );
        fs::write(&path, "{").unwrap();
        assert!(matches!(inspect(&path), Err(Error::InvalidSettings { .. })));
    }
}
