//! The hook entries of a settings text and the merge of ours into it: our
//! two commands, an earlier install's `da sync` entries (replaced in place,
//! never duplicated) and the Agnes CLI's (kept, or removed when asked).
//! Everything of the user's that the merge does not replace is written back
//! as the very text it was.

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

/// The hook commands. `|| true` and `2>/dev/null` keep a dead server from
/// blocking or cluttering the editor; `--quiet` prints nothing on stdout.
///
/// Both detach their work (CONTRACT.md §7: headless Claude Code ends a
/// SessionEnd hook about a second after starting it). SessionStart first
/// uploads what an earlier SessionEnd missed (SessionEnd does not fire when
/// a terminal is closed), then syncs, waiting for that a few seconds at most
/// (`--wait`, `AGNES_HOOK_WAIT`) and leaving a longer sync to go on in the
/// background. SessionEnd returns at once and uploads in the background.
pub const SESSION_START_COMMAND: &str =
    "da sync --upload-first --detach --quiet 2>/dev/null || true";
pub const SESSION_END_COMMAND: &str =
    "da sync --upload-only --detach --wait 0 --quiet 2>/dev/null || true";

/// The events and the command each one runs.
pub const HOOKS: [(&str, &str); 2] = [
    ("SessionStart", SESSION_START_COMMAND),
    ("SessionEnd", SESSION_END_COMMAND),
];

/// A hook of the current Agnes CLI (`agnes pull`, `agnes push`, `agnes
/// update`): it syncs the same workspace as ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgnesCliHook {
    pub event: String,
    pub command: String,
}

pub(super) fn parse(text: &str) -> std::result::Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_str(text).map_err(|e| format!("line {}, column {}: {e}", e.line(), e.column()))
}

/// The Agnes CLI's hook commands in a settings text, in file order.
pub(super) fn find_agnes_cli_hooks(text: &str) -> std::result::Result<Vec<AgnesCliHook>, String> {
    let value = parse(text)?;
    let mut found = Vec::new();
    if let Some(hooks) = value.get("hooks").and_then(Value::as_object) {
        for (event, entries) in hooks {
            for entry in entries.as_array().into_iter().flatten() {
                for command in commands(entry).filter(|c| is_agnes_cli_command(c)) {
                    found.push(AgnesCliHook {
                        event: event.clone(),
                        command: command.to_string(),
                    });
                }
            }
        }
    }
    Ok(found)
}

/// The command strings of one hook entry.
pub(super) fn commands(entry: &Value) -> impl Iterator<Item = &str> {
    entry
        .get("hooks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|h| h.get("command").and_then(Value::as_str))
}

/// A shell command that runs the Agnes CLI's `pull`, `push` or `update`
/// (`agnes pull`, `/opt/bin/agnes push --quiet || true`, `cd x && agnes update`).
pub fn is_agnes_cli_command(command: &str) -> bool {
    let words: Vec<&str> = command
        .split(|c: char| c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')' | '`'))
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(2).any(|pair| {
        let program = pair[0].rsplit('/').next().unwrap_or(pair[0]);
        let program = program.trim_matches(|c| c == '"' || c == '\'');
        program == "agnes" && matches!(pair[1], "pull" | "push" | "update")
    })
}

/// The settings text with the hooks merged in, or `None` when `existing`
/// already has them exactly. `Err` says why `existing` cannot be merged
/// into (not JSON, or `hooks` of the wrong shape).
///
/// Everything of the user's that the merge does not replace is written
/// back as the very text it was (a `RawValue`), not re-encoded: numbers
/// keep every digit (`12345678901234567890`, `0.10000000000000000001`).
pub fn merge(existing: Option<&str>) -> std::result::Result<Option<String>, String> {
    let text = match existing {
        // An empty file is treated like a missing one: there is nothing to lose.
        Some(text) if !text.trim().is_empty() => text,
        _ => {
            let fresh = Node::Object(vec![("hooks".into(), fresh_hooks())]);
            return Ok(Some(pretty(&fresh)?));
        }
    };
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("line {}, column {}: {e}", e.line(), e.column()))?;
    if !value.is_object() {
        return Err(format!("the top level is {}, not an object", kind(&value)));
    }
    let mut changed = false;
    let mut top: Vec<(String, Node)> = raw_object(text)?;
    match top.iter().rposition(|(k, _)| k == "hooks") {
        Some(i) => {
            let Node::Raw(raw) = &top[i].1 else {
                unreachable!("raw_object gives raw values")
            };
            let hooks = merge_hooks(raw.get(), &mut changed)?;
            top[i].1 = hooks;
        }
        None => {
            changed = true;
            top.push(("hooks".into(), fresh_hooks()));
        }
    }
    match changed {
        false => Ok(None),
        true => pretty(&Node::Object(top)).map(Some),
    }
}

/// `merge`, also removing the Agnes CLI's hook commands (from every event)
/// when `replace_agnes_hooks`: an entry left without commands goes, and so
/// does an event left without entries. Only then is the file re-encoded as a
/// whole (the user asked for their hooks to change); otherwise `merge`
/// keeps every byte it does not replace.
pub fn merge_with(
    existing: Option<&str>,
    replace_agnes_hooks: bool,
) -> std::result::Result<Option<String>, String> {
    let Some(text) = existing.filter(|t| replace_agnes_hooks && !t.trim().is_empty()) else {
        return merge(existing);
    };
    let mut value = parse(text)?;
    let Some(Value::Object(hooks)) = value.get_mut("hooks") else {
        return merge(existing);
    };
    let before = hooks.clone();
    remove_agnes_cli_hooks(hooks);
    if *hooks == before {
        return merge(existing);
    }
    let mut stripped = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
    stripped.push('\n');
    Ok(Some(merge(Some(&stripped))?.unwrap_or(stripped)))
}

fn remove_agnes_cli_hooks(hooks: &mut Map<String, Value>) {
    let is_theirs = |h: &Value| {
        h.get("command")
            .and_then(Value::as_str)
            .is_some_and(is_agnes_cli_command)
    };
    let mut emptied = Vec::new();
    for (event, entries) in hooks.iter_mut() {
        let Value::Array(entries) = entries else {
            continue;
        };
        let before = entries.len();
        entries.retain_mut(|entry| match entry.get_mut("hooks") {
            Some(Value::Array(list)) if list.iter().any(is_theirs) => {
                list.retain(|h| !is_theirs(h));
                !list.is_empty()
            }
            _ => true,
        });
        let ours = HOOKS.iter().any(|(e, _)| e == event);
        if entries.is_empty() && before > 0 && !ours {
            emptied.push(event.clone());
        }
    }
    for event in emptied {
        hooks.shift_remove(&event);
    }
}

/// The `hooks` object with our entries placed in it.
fn merge_hooks(raw: &str, changed: &mut bool) -> std::result::Result<Node, String> {
    let value: Value = serde_json::from_str(raw).map_err(|e| e.to_string())?;
    match value {
        Value::Null => {
            *changed = true;
            return Ok(fresh_hooks());
        }
        Value::Object(_) => {}
        other => return Err(format!("\"hooks\" is {}, not an object", kind(&other))),
    }
    let mut hooks = raw_object(raw)?;
    for (event, command) in HOOKS {
        let Some(i) = hooks.iter().rposition(|(k, _)| k == event) else {
            *changed = true;
            hooks.push((event.into(), Node::List(vec![Node::New(ours(command))])));
            continue;
        };
        let Node::Raw(raw) = &hooks[i].1 else {
            unreachable!("raw_object gives raw values")
        };
        let entries: Value = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
        let entries = match entries {
            Value::Null => Vec::new(),
            Value::Array(_) => {
                serde_json::from_str::<Vec<Box<RawValue>>>(raw.get()).map_err(|e| e.to_string())?
            }
            other => {
                return Err(format!(
                    "\"hooks\".\"{event}\" is {}, not a list",
                    kind(&other)
                ))
            }
        };
        if let Some(list) = place(entries, command, changed) {
            hooks[i].1 = list;
        }
    }
    Ok(Node::Object(hooks))
}

/// Puts our entry where the first earlier `da sync` entry was (or at the
/// end), and drops every other one of those. `None`: already so.
fn place(entries: Vec<Box<RawValue>>, command: &str, changed: &mut bool) -> Option<Node> {
    let parsed: Vec<Value> = entries
        .iter()
        .map(|e| serde_json::from_str(e.get()).unwrap_or(Value::Null))
        .collect();
    let theirs: Vec<usize> = (0..parsed.len())
        .filter(|i| runs_da_sync(&parsed[*i]))
        .collect();
    if theirs.len() == 1 && parsed[theirs[0]] == ours(command) {
        return None;
    }
    *changed = true;
    let at = theirs.first().copied().unwrap_or(entries.len());
    let mut list: Vec<Node> = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        if i == at {
            list.push(Node::New(ours(command)));
        }
        if !theirs.contains(&i) {
            list.push(Node::Raw(entry));
        }
    }
    if at >= parsed.len() {
        list.push(Node::New(ours(command)));
    }
    Some(Node::List(list))
}

fn ours(command: &str) -> Value {
    json!({"hooks": [{"type": "command", "command": command}]})
}

/// The hooks of a settings file that had none.
fn fresh_hooks() -> Node {
    Node::Object(
        HOOKS
            .iter()
            .map(|(event, command)| {
                (
                    event.to_string(),
                    Node::List(vec![Node::New(ours(command))]),
                )
            })
            .collect(),
    )
}

/// A settings value: the user's text as it was, or what the merge made.
enum Node {
    Raw(Box<RawValue>),
    Object(Vec<(String, Node)>),
    List(Vec<Node>),
    New(Value),
}

impl serde::Serialize for Node {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Node::Raw(raw) => raw.serialize(s),
            Node::New(value) => value.serialize(s),
            Node::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Object(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// An object's members in their order, each value as its raw text.
fn raw_object(text: &str) -> std::result::Result<Vec<(String, Node)>, String> {
    struct Members(Vec<(String, Node)>);
    impl<'de> serde::Deserialize<'de> for Members {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Members;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> std::result::Result<Members, A::Error> {
                    let mut out = Vec::new();
                    while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                        out.push((k, Node::Raw(v)));
                    }
                    Ok(Members(out))
                }
            }
            d.deserialize_map(Visit)
        }
    }
    serde_json::from_str::<Members>(text)
        .map(|m| m.0)
        .map_err(|e| e.to_string())
}

fn pretty(node: &Node) -> std::result::Result<String, String> {
    let mut text = serde_json::to_string_pretty(node).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(text)
}

/// An entry all of whose commands contain `da sync`: one that an earlier
/// install (or the old Python `da`) wrote, whatever its exact wording.
pub(super) fn runs_da_sync(entry: &Value) -> bool {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::hooks) const FRESH: &str = r#"{
  "hooks": {
    "SessionStart": [
      {
        "hooks": [
          {
            "type": "command",
            "command": "da sync --upload-first --detach --quiet 2>/dev/null || true"
          }
        ]
      }
    ],
    "SessionEnd": [
      {
        "hooks": [
          {
            "type": "command",
            "command": "da sync --upload-only --detach --wait 0 --quiet 2>/dev/null || true"
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
    fn numbers_are_kept_exactly_as_written() {
        let existing = "{\n  \"big\": 12345678901234567890123,\n  \"precise\": 0.10000000000000000000001,\n  \"exp\": 1.50E+3,\n  \"nested\": {\"n\": [1.0, -0.0, 18446744073709551616]},\n  \"hooks\": {\"SessionStart\": [{\"timeout\": 1.000000000000000000001, \"hooks\": [{\"type\": \"command\", \"command\": \"echo 1\"}]}]}\n}\n";
        let text = merge(Some(existing)).unwrap().unwrap();
        for written in [
            "12345678901234567890123",
            "0.10000000000000000000001",
            "1.50E+3",
            "[1.0, -0.0, 18446744073709551616]",
            "1.000000000000000000001",
        ] {
            assert!(text.contains(written), "{written} lost in:\n{text}");
        }
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["hooks"]["SessionStart"].as_array().unwrap().len(), 2);
        assert_eq!(merge(Some(&text)).unwrap(), None);
    }

    const WITH_AGNES_CLI: &str = r#"{"hooks": {
        "SessionStart": [
            {"hooks": [{"type": "command", "command": "agnes pull --quiet || true"}]},
            {"hooks": [{"type": "command", "command": "echo hi"}, {"type": "command", "command": "/opt/bin/agnes update"}]}
        ],
        "Stop": [{"hooks": [{"type": "command", "command": "cd ~/ws && agnes push"}]}],
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "echo agnes pulls"}]}]}}"#;

    #[test]
    fn agnes_cli_commands_are_recognised() {
        for yes in [
            "agnes pull",
            "agnes push --quiet 2>/dev/null || true",
            "/usr/local/bin/agnes update",
            "cd /ws && agnes pull",
            "(agnes push)",
        ] {
            assert!(is_agnes_cli_command(yes), "{yes}");
        }
        for no in [
            "da sync --quiet",
            "echo agnes pulls",
            "agnes login",
            "magnes pull",
            "agnes",
            SESSION_START_COMMAND,
        ] {
            assert!(!is_agnes_cli_command(no), "{no}");
        }
    }

    #[test]
    fn agnes_cli_hooks_are_reported_and_kept_unless_replaced() {
        let found = find_agnes_cli_hooks(WITH_AGNES_CLI).unwrap();
        let found: Vec<(&str, &str)> = found
            .iter()
            .map(|h| (h.event.as_str(), h.command.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("SessionStart", "agnes pull --quiet || true"),
                ("SessionStart", "/opt/bin/agnes update"),
                ("Stop", "cd ~/ws && agnes push"),
            ]
        );
        // Not replaced: theirs stay, ours are added.
        let kept = merged(WITH_AGNES_CLI);
        assert_eq!(kept["hooks"]["SessionStart"].as_array().unwrap().len(), 3);
        assert_eq!(
            kept["hooks"]["Stop"][0]["hooks"][0]["command"],
            "cd ~/ws && agnes push"
        );

        // Replaced: only their commands go; a mixed entry keeps the rest,
        // an event left empty goes, other hooks stay.
        let text = merge_with(Some(WITH_AGNES_CLI), true).unwrap().unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&String> = v["hooks"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["SessionStart", "PreToolUse", "SessionEnd"]);
        let start: Vec<Vec<&str>> = v["hooks"]["SessionStart"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| commands(e).collect())
            .collect();
        assert_eq!(start, [vec!["echo hi"], vec![SESSION_START_COMMAND]]);
        assert!(find_agnes_cli_hooks(&text).unwrap().is_empty());
        assert_eq!(merge_with(Some(&text), true).unwrap(), None);
    }
}
