//! Uploads: every session transcript, from `user/sessions/*.jsonl` and from
//! the folder where Claude Code writes this workspace's transcripts, to
//! `/api/upload/sessions`, then `.claude/CLAUDE.local.md` to
//! `/api/upload/local-md` (CONTRACT.md §5, §7).
//!
//! Only regular files are read (a symlink is skipped, never followed), each
//! is sent under a name the server takes, JWT-shaped strings and the user's
//! token are removed from it first, and it goes gzipped when the server
//! says it takes that (`X-Agnes-Accepts: session-gzip`).
//!
//! Unlike the old CLI, a file already uploaded with the same content is not
//! sent again (the MD5 and size of what was sent are kept per server beside
//! the sync state), and every failure is reported on its file's row; one
//! failing file never stops the others. Transcripts are read line by line
//! into a scrubbed temporary copy, never loaded whole.

use std::time::Duration;

use crate::cancel::Cancel;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::transfer::http::{ServerClient, Timeouts};
use crate::upload::files::{fingerprint, scan};
use crate::upload::ledger::{is_unchanged, save, Sent, UploadState};
use crate::upload::report::{Action, Kind, UploadOutcome, UploadReport};
use crate::upload::send::{Refused, Sender};
use crate::workspace::layout::Workspace;
use crate::workspace::lock;
use crate::workspace::state::read_json;

/// How an upload runs, beyond where to (`Settings`).
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// List what would be sent; send nothing, write nothing.
    pub dry_run: bool,
    pub timeouts: Timeouts,
    /// How long to wait for a sync or upload on the same workspace.
    pub lock_wait: Duration,
    /// Stops the call between files and inside a transfer.
    pub cancel: Cancel,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            dry_run: false,
            timeouts: Timeouts::default(),
            lock_wait: Duration::from_secs(30),
            cancel: Cancel::new(),
        }
    }
}

/// Sends the workspace's transcripts and notes that the server does not have
/// yet. A `401` stops the call (`Error::Unauthorized`); every other failure
/// is its file's row.
pub fn upload(settings: &Settings, options: &UploadOptions) -> Result<UploadReport> {
    let r = settings.redactor();
    let mut report = upload_unredacted(settings, options).map_err(|e| e.redacted(&r))?;
    for f in &mut report.files {
        r.option(&mut f.error);
    }
    r.all(&mut report.notices);
    Ok(report)
}

fn upload_unredacted(settings: &Settings, options: &UploadOptions) -> Result<UploadReport> {
    let workspace = Workspace::new(&settings.workspace);
    // A dry run talks to no server, so it needs no token.
    let client = match options.dry_run {
        true => None,
        false => Some(ServerClient::new(
            settings,
            options.timeouts,
            &options.cancel,
        )?),
    };
    let mut report = UploadReport {
        server: settings.server.clone(),
        workspace: settings.workspace.clone(),
        files: Vec::new(),
        notices: Vec::new(),
    };
    let found = scan(&workspace);
    if found.is_empty() {
        return Ok(report);
    }
    // A dry run writes nothing, not even the lock file.
    let _lock = match options.dry_run {
        true => None,
        false => Some(lock::lock(&workspace, options.lock_wait, &options.cancel)?),
    };
    let state_path = workspace.upload_state_file(&settings.server);
    let mut state = match read_json::<UploadState>(&state_path) {
        Ok(Some(state)) => state,
        Ok(None) => UploadState::new(&settings.server),
        Err(reason) => {
            report.notices.push(format!(
                "upload state {} is damaged ({reason}); every file counts as not uploaded yet",
                state_path.display()
            ));
            UploadState::new(&settings.server)
        }
    };
    let token = settings.token.as_ref().map(|t| t.expose().to_string());
    let mut sender = client.map(|client| Sender {
        client,
        timeouts: options.timeouts,
        down: None,
        token,
        gzip: None,
    });
    let mut dirty = state.keep_only(&found);
    // What upstream's `agnes push` sent from this workspace (pushed.rs).
    let pushed = crate::upload::pushed::pushed_sessions(&workspace);

    for f in &found {
        // What was sent is recorded file by file, so stopping here loses nothing.
        if options.cancel.is_cancelled() {
            return Err(Error::Interrupted);
        }
        let mut outcome = UploadOutcome {
            kind: f.kind,
            path: f.path.clone(),
            action: Action::Failed,
            bytes: f.size.as_ref().ok().copied(),
            error: None,
            note: None,
        };
        if let Some(reason) = &f.skipped {
            outcome.action = Action::Skipped;
            outcome.bytes = None;
            outcome.note = Some(reason.clone());
            report.files.push(outcome);
            continue;
        }
        let file_name = f.path.file_name().map(|n| n.to_string_lossy());
        if f.kind == Kind::Session && file_name.as_deref() != Some(f.name.as_str()) {
            outcome.note = Some(format!(
                "sent as {}: the server takes only A-Z a-z 0-9 . _ - in names",
                f.name
            ));
        }
        match fingerprint(f) {
            Err(reason) => outcome.error = Some(reason),
            Ok((md5, size)) if is_unchanged(state.sent(f.kind, &f.name), &md5, size) => {
                outcome.action = Action::Unchanged;
                outcome.bytes = Some(size);
            }
            Ok((md5, size))
                if f.kind == Kind::Session
                    && state.sent(f.kind, &f.name).is_none()
                    && crate::upload::pushed::pushed(&pushed, &f.path, size) =>
            {
                outcome.action = Action::Unchanged;
                outcome.bytes = Some(size);
                outcome.note = Some(
                    "uploaded before by agnes push (.claude/agnes-sessions-uploaded.txt); not sent again"
                        .into(),
                );
                state.record(
                    f.kind,
                    &f.name,
                    Sent {
                        md5,
                        size,
                        uploaded_at: None,
                        note: None,
                    },
                );
                dirty = true;
            }
            Ok((_, size)) => match sender.as_mut() {
                None => {
                    outcome.action = Action::WouldUpload;
                    outcome.bytes = Some(size);
                }
                Some(sender) => match sender.send(f) {
                    Ok(sent) => {
                        outcome.action = Action::Uploaded;
                        outcome.bytes = Some(sent.size);
                        outcome.note = match (outcome.note.take(), sent.note.clone()) {
                            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                            (a, b) => a.or(b),
                        };
                        state.record(f.kind, &f.name, sent);
                        // Saved file by file: a hook killed half way does
                        // not send everything again next time.
                        dirty = !save(&state_path, &mut state, &mut report.notices);
                    }
                    Err(Refused::Failed(_)) if options.cancel.is_cancelled() => {
                        return Err(Error::Interrupted)
                    }
                    Err(Refused::Failed(reason)) => outcome.error = Some(reason),
                    Err(Refused::Unauthorized(e)) => return Err(e),
                },
            },
        }
        report.files.push(outcome);
    }
    if dirty && !options.dry_run {
        save(&state_path, &mut state, &mut report.notices);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::md5_hex;
    use crate::secrets::token::Token;
    use crate::upload::files::{LOCAL_MD_NAME, MAX_UPLOAD};
    use std::fs::{self, File};
    use std::path::{Path, PathBuf};

    fn settings(root: &Path) -> Settings {
        Settings {
            // Nothing listens there: a test that sent anything would fail.
            server: "http://127.0.0.1:9".into(),
            token: Token::new("t"),
            config_dir: root.join("config"),
            workspace: root.join("ws"),
            configured_server: "http://127.0.0.1:9".into(),
            token_explicit: true,
        }
    }

    fn write(path: &Path, bytes: &[u8]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    fn dry_run() -> UploadOptions {
        UploadOptions {
            dry_run: true,
            ..Default::default()
        }
    }

    fn summary(report: &UploadReport) -> Vec<(String, &'static str, &'static str, Option<u64>)> {
        report
            .files
            .iter()
            .map(|o| {
                let name = o.path.file_name().unwrap().to_string_lossy().into_owned();
                (name, o.kind.as_str(), o.action.as_str(), o.bytes)
            })
            .collect()
    }

    #[test]
    fn dry_run_lists_what_would_be_sent_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(dir.path());
        let ws = Workspace::new(&settings.workspace);
        write(&ws.sessions_dir().join("s1.jsonl"), b"{\"a\":1}\n");
        write(&ws.local_md(), "poznámky\n".as_bytes());
        let before = walk(dir.path());
        let report = upload(&settings, &dry_run()).unwrap();
        assert_eq!(
            summary(&report),
            vec![
                ("s1.jsonl".into(), "session", "would_upload", Some(8)),
                (LOCAL_MD_NAME.into(), "local_md", "would_upload", Some(10)),
            ]
        );
        assert_eq!(walk(dir.path()), before, "not even the lock file");
    }

    #[test]
    fn what_was_sent_before_is_unchanged_and_a_changed_file_would_go_again() {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(dir.path());
        let ws = Workspace::new(&settings.workspace);
        write(&ws.sessions_dir().join("s1.jsonl"), b"one\n");
        write(&ws.sessions_dir().join("s2.jsonl"), b"two\n");
        let mut state = UploadState::new(&settings.server);
        for (name, body) in [("s1.jsonl", "one\n"), ("s2.jsonl", "old\n")] {
            let md5 = md5_hex(body.as_bytes());
            state.record(
                Kind::Session,
                name,
                Sent {
                    md5,
                    size: 4,
                    uploaded_at: None,
                    note: None,
                },
            );
        }
        let path = ws.upload_state_file(&settings.server);
        write(&path, &serde_json::to_vec(&state).unwrap());
        let report = upload(&settings, &dry_run()).unwrap();
        assert_eq!(
            summary(&report),
            vec![
                ("s1.jsonl".into(), "session", "unchanged", Some(4)),
                ("s2.jsonl".into(), "session", "would_upload", Some(4)),
            ]
        );
        // Another server has its own state: everything would go there.
        let other = Settings {
            server: "http://127.0.0.1:10".into(),
            ..settings.clone()
        };
        let report = upload(&other, &dry_run()).unwrap();
        assert!(report.files.iter().all(|o| o.action == Action::WouldUpload));
    }

    #[test]
    fn a_file_over_the_limit_or_unreadable_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(dir.path());
        let ws = Workspace::new(&settings.workspace);
        let big = File::create({
            fs::create_dir_all(ws.sessions_dir()).unwrap();
            ws.sessions_dir().join("big.jsonl")
        })
        .unwrap();
        big.set_len(MAX_UPLOAD + 1).unwrap(); // sparse: costs no disk
        write(&ws.sessions_dir().join("ok.jsonl"), b"{}\n");
        write(&ws.local_md(), &[0xff, 0xfe, b'x']);
        let report = upload(&settings, &dry_run()).unwrap();
        assert_eq!(
            summary(&report),
            vec![
                (
                    "big.jsonl".into(),
                    "session",
                    "failed",
                    Some(MAX_UPLOAD + 1)
                ),
                ("ok.jsonl".into(), "session", "would_upload", Some(3)),
                (LOCAL_MD_NAME.into(), "local_md", "failed", Some(3)),
            ]
        );
        let errors: Vec<&str> = report
            .files
            .iter()
            .filter_map(|o| o.error.as_deref())
            .collect();
        assert!(
            errors[0].contains("big.jsonl") && errors[0].contains("50 MiB"),
            "{errors:?}"
        );
        assert!(errors[1].contains("not UTF-8"), "{errors:?}");
    }

    #[test]
    fn a_damaged_state_is_a_notice_and_counts_as_nothing_sent() {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(dir.path());
        let ws = Workspace::new(&settings.workspace);
        write(&ws.sessions_dir().join("s1.jsonl"), b"one\n");
        write(&ws.upload_state_file(&settings.server), b"{not json");
        let report = upload(&settings, &dry_run()).unwrap();
        assert_eq!(report.files[0].action, Action::WouldUpload);
        assert!(
            report.notices[0].contains("damaged"),
            "{:?}",
            report.notices
        );
    }

    #[test]
    fn a_real_run_needs_a_token_but_a_dry_run_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            token: None,
            ..settings(dir.path())
        };
        let err = upload(&settings, &UploadOptions::default()).unwrap_err();
        assert!(matches!(err, Error::NoToken(_)), "{err}");
        upload(&settings, &dry_run()).unwrap();
    }

    /// Every path under `root`, to check that nothing was written.
    fn walk(root: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut todo = vec![root.to_path_buf()];
        while let Some(dir) = todo.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    todo.push(path.clone());
                }
                out.push(path);
            }
        }
        out.sort();
        out
    }
}
