//! The Claude Code hooks in `<workspace>/.claude/settings.json` that run
//! `da sync` when a session starts and ends (CONTRACT.md §6).
//!
//! Installing merges into the file the user already has: other keys and
//! other hooks stay as they are (in their order), an earlier entry whose
//! every command contains `da sync` is replaced in place, never duplicated,
//! and a file that is not a JSON object is reported and left byte for byte
//! as it was.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// The hook commands. `|| true` and `2>/dev/null` keep a dead server from
/// blocking or cluttering the editor; `da sync --quiet` already prints
/// nothing on stdout.
pub const SESSION_START_COMMAND: &str = "da sync --quiet 2>/dev/null || true";
pub const SESSION_END_COMMAND: &str = "da sync --upload-only --quiet 2>/dev/null || true";

/// The events and the command each one runs.
pub const HOOKS: [(&str, &str); 2] = [
    ("SessionStart", SESSION_START_COMMAND),
    ("SessionEnd", SESSION_END_COMMAND),
];

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

/// Writes the hooks into `settings` (`<workspace>/.claude/settings.json`),
/// creating the file and its folder when missing. The new file replaces the
/// old one atomically and keeps its permissions.
pub fn install(settings: &Path) -> Result<Change> {
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
    let merged = merge(existing.as_deref()).map_err(|reason| Error::InvalidSettings {
        path: settings.to_path_buf(),
        reason,
    })?;
    let Some(text) = merged else {
        return Ok(Change::Unchanged);
    };
    write_atomically(settings, text.as_bytes())?;
    Ok(match existing {
        None => Change::Created,
        Some(_) => Change::Updated,
    })
}

/// The settings text with the hooks merged in, or `None` when `existing`
/// already has them exactly. `Err` says why `existing` cannot be merged
/// into (not JSON, or `hooks` of the wrong shape).
pub fn merge(existing: Option<&str>) -> std::result::Result<Option<String>, String> {
    let original = match existing {
        None => Value::Object(Map::new()),
        // An empty file is treated like a missing one: there is nothing to lose.
        Some(text) if text.trim().is_empty() => Value::Object(Map::new()),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| format!("line {}, column {}: {e}", e.line(), e.column()))?,
    };
    let mut settings = original.clone();
    let Value::Object(top) = &mut settings else {
        return Err(format!(
            "the top level is {}, not an object",
            kind(&settings)
        ));
    };
    let hooks = top
        .entry("hooks")
        .and_modify(|v| {
            if v.is_null() {
                *v = Value::Object(Map::new())
            }
        })
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(hooks) = hooks else {
        return Err(format!("\"hooks\" is {}, not an object", kind(hooks)));
    };
    for (event, command) in HOOKS {
        let entries = hooks
            .entry(event)
            .and_modify(|v| {
                if v.is_null() {
                    *v = Value::Array(Vec::new())
                }
            })
            .or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(entries) = entries else {
            return Err(format!(
                "\"hooks\".\"{event}\" is {}, not a list",
                kind(entries)
            ));
        };
        place(entries, command);
    }
    if existing.is_some() && settings == original {
        return Ok(None);
    }
    let mut text = serde_json::to_string_pretty(&settings).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(Some(text))
}

/// Puts our entry where the first earlier `da sync` entry was (or at the
/// end), and drops every other one of those.
fn place(entries: &mut Vec<Value>, command: &str) {
    let ours = json!({"hooks": [{"type": "command", "command": command}]});
    let first = entries.iter().position(runs_da_sync);
    entries.retain(|e| !runs_da_sync(e));
    let at = first.unwrap_or(entries.len()).min(entries.len());
    entries.insert(at, ours);
}

/// An entry all of whose commands contain `da sync`: one that an earlier
/// install (or the old Python `da`) wrote, whatever its exact wording.
fn runs_da_sync(entry: &Value) -> bool {
    let Some(hooks) = entry.get("hooks").and_then(Value::as_array) else {
        return false;
    };
    !hooks.is_empty()
        && hooks.iter().all(|h| {
            h.get("command")
                .and_then(Value::as_str)
                .is_some_and(|c| c.contains("da sync"))
        })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
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
    crate::replace::persist(tmp, path).map_err(|e| Error::io("replace", path)(e.error))?;
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

    const FRESH: &str = r#"{
  "hooks": {
    "SessionStart": [
      {
        "hooks": [
          {
            "type": "command",
            "command": "da sync --quiet 2>/dev/null || true"
          }
        ]
      }
    ],
    "SessionEnd": [
      {
        "hooks": [
          {
            "type": "command",
            "command": "da sync --upload-only --quiet 2>/dev/null || true"
          }
        ]
      }
    ]
  }
}
"#;

    fn merged(existing: &str) -> Value {
        serde_json::from_str(&merge(Some(existing)).unwrap().unwrap()).unwrap()
    }

    #[test]
    fn missing_file_gets_exactly_the_two_hooks() {
        assert_eq!(merge(None).unwrap().unwrap(), FRESH);
        assert_eq!(merge(Some("  \n")).unwrap().unwrap(), FRESH);
    }

    #[test]
    fn already_installed_is_left_alone() {
        assert_eq!(merge(Some(FRESH)).unwrap(), None);
        // Same content, other formatting: still nothing to do.
        let compact =
            serde_json::to_string(&serde_json::from_str::<Value>(FRESH).unwrap()).unwrap();
        assert_eq!(merge(Some(&compact)).unwrap(), None);
    }

    #[test]
    fn other_keys_and_hooks_are_kept_in_order() {
        let existing = r#"{"model": "opus", "permissions": {"allow": ["Bash(ls)"]},
            "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "echo pre"}]}],
                      "SessionStart": [{"hooks": [{"type": "command", "command": "echo hello"}]}]},
            "zzz": 1}"#;
        let v = merged(existing);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["model", "permissions", "hooks", "zzz"]);
        assert_eq!(v["permissions"]["allow"][0], "Bash(ls)");
        let hook_keys: Vec<&String> = v["hooks"].as_object().unwrap().keys().collect();
        assert_eq!(hook_keys, ["PreToolUse", "SessionStart", "SessionEnd"]);
        assert_eq!(
            v["hooks"]["PreToolUse"][0]["hooks"][0]["command"],
            "echo pre"
        );
        let start = v["hooks"]["SessionStart"].as_array().unwrap();
        assert_eq!(start.len(), 2);
        assert_eq!(start[0]["hooks"][0]["command"], "echo hello");
        assert_eq!(start[1]["hooks"][0]["command"], SESSION_START_COMMAND);
    }

    #[test]
    fn earlier_da_sync_entries_are_replaced_in_place_not_duplicated() {
        // The old Python `da analyst setup` wrote these; a hand-made mixed
        // entry (one command not ours) is the user's and stays.
        let existing = r#"{"hooks": {
            "SessionStart": [
                {"hooks": [{"type": "command", "command": "echo first"}]},
                {"hooks": [{"type": "command", "command": "da sync --quiet || true"}]},
                {"hooks": [{"type": "command", "command": "da sync --quiet"}]},
                {"hooks": [{"type": "command", "command": "da sync --quiet"}, {"type": "command", "command": "notify"}]}
            ],
            "SessionEnd": [{"hooks": [{"type": "command", "command": "da sync --upload-only --quiet || true"}]}]}}"#;
        let v = merged(existing);
        let start = v["hooks"]["SessionStart"].as_array().unwrap();
        let commands: Vec<Vec<&str>> = start
            .iter()
            .map(|e| {
                e["hooks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["command"].as_str().unwrap())
                    .collect()
            })
            .collect();
        assert_eq!(
            commands,
            [
                vec!["echo first"],
                vec![SESSION_START_COMMAND],
                vec!["da sync --quiet", "notify"],
            ]
        );
        let end = v["hooks"]["SessionEnd"].as_array().unwrap();
        assert_eq!(end.len(), 1);
        assert_eq!(end[0]["hooks"][0]["command"], SESSION_END_COMMAND);
        // A second install changes nothing.
        let again = merge(Some(&serde_json::to_string(&v).unwrap())).unwrap();
        assert_eq!(again, None);
    }

    #[test]
    fn null_hooks_and_events_are_filled() {
        let v = merged(r#"{"hooks": null}"#);
        assert_eq!(v, serde_json::from_str::<Value>(FRESH).unwrap());
        let v = merged(r#"{"hooks": {"SessionEnd": null}}"#);
        assert_eq!(v["hooks"]["SessionEnd"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn what_cannot_be_merged_is_an_error() {
        for (text, says) in [
            ("{\"hooks\": {", "line 1"),
            ("not json", "line 1, column 2"),
            ("[]", "top level is a list"),
            (r#"{"hooks": []}"#, "\"hooks\" is a list"),
            (
                r#"{"hooks": {"SessionStart": {}}}"#,
                "\"SessionStart\" is an object",
            ),
        ] {
            let err = merge(Some(text)).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
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
}
