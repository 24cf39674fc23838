//! Uploads: every `user/sessions/*.jsonl` transcript to
//! `/api/upload/sessions`, then `.claude/CLAUDE.local.md` to
//! `/api/upload/local-md` (CONTRACT.md §5).
//!
//! Unlike the old CLI, a file already uploaded with the same content is not
//! sent again (the MD5 and size of what was sent are kept per server beside
//! the sync state), and every failure is reported on its file's row; one
//! failing file never stops the others. Transcripts are streamed from disk,
//! never loaded whole.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::digest::{md5_hex, Md5};
use reqwest::blocking::multipart::{Form, Part};
use reqwest::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::exchange::Reply;
use crate::http::{retrying, Failure, ServerClient, Timeouts};
use crate::ids::truncate;
use crate::layout::Workspace;
use crate::lock;
use crate::state::{read_json, write_atomic};

/// The server's limit on one uploaded file. It answers `413` only after the
/// whole body, so bigger files are refused before sending.
pub const MAX_UPLOAD: u64 = 50 * 1024 * 1024;

const SESSIONS_PATH: &str = "/api/upload/sessions";
const LOCAL_MD_PATH: &str = "/api/upload/local-md";
const LOCAL_MD_NAME: &str = "CLAUDE.local.md";

/// The slowest uplink an upload is given time for, on top of the read
/// timeout: a request's time limit covers sending its whole body, and a
/// 50 MiB transcript must not be cut off at 30 s on a slow line.
const MIN_UPLOAD_RATE: f64 = 128.0 * 1024.0;

const STATE_VERSION: u32 = 1;

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

/// Which kind of file a row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `user/sessions/*.jsonl` transcript.
    Session,
    /// `.claude/CLAUDE.local.md`.
    LocalMd,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::LocalMd => "local_md",
        }
    }
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Uploaded,
    /// Already uploaded to this server with the same content; not sent.
    Unchanged,
    WouldUpload,
    Failed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Uploaded => "uploaded",
            Action::Unchanged => "unchanged",
            Action::WouldUpload => "would_upload",
            Action::Failed => "failed",
        }
    }
}

/// One row of `agnes_upload()`.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadOutcome {
    pub kind: Kind,
    pub path: PathBuf,
    pub action: Action,
    /// The file's size: what was (or would be) sent, or was sent before.
    pub bytes: Option<u64>,
    /// Why the file failed.
    pub error: Option<String>,
}

/// Everything an upload did.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadReport {
    pub server: String,
    pub workspace: PathBuf,
    pub files: Vec<UploadOutcome>,
    /// Workspace-level warnings (a damaged or unwritable upload state).
    pub notices: Vec<String>,
}

/// What was last sent of one file: its MD5 and size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    pub md5: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<String>,
}

/// Which files of a workspace one server has, as uploaded by agnes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UploadState {
    #[serde(default)]
    pub version: u32,
    #[serde(default)]
    pub server: String,
    /// Per transcript file name.
    #[serde(default)]
    pub sessions: BTreeMap<String, Sent>,
    #[serde(default)]
    pub local_md: Option<Sent>,
}

impl UploadState {
    fn new(server: &str) -> UploadState {
        UploadState {
            version: STATE_VERSION,
            server: server.to_string(),
            ..Default::default()
        }
    }

    pub fn sent(&self, kind: Kind, name: &str) -> Option<&Sent> {
        match kind {
            Kind::Session => self.sessions.get(name),
            Kind::LocalMd => self.local_md.as_ref(),
        }
    }

    fn record(&mut self, kind: Kind, name: &str, sent: Sent) {
        match kind {
            Kind::Session => {
                self.sessions.insert(name.to_string(), sent);
            }
            Kind::LocalMd => self.local_md = Some(sent),
        }
    }

    /// Forgets files that are gone from the workspace; true when any were.
    fn keep_only(&mut self, found: &[Found]) -> bool {
        let before = (self.sessions.len(), self.local_md.is_some());
        self.sessions.retain(|name, _| {
            found
                .iter()
                .any(|f| f.kind == Kind::Session && f.name == *name)
        });
        if !found.iter().any(|f| f.kind == Kind::LocalMd) {
            self.local_md = None;
        }
        before != (self.sessions.len(), self.local_md.is_some())
    }
}

/// `Some(reason)` when a file of `size` bytes is over the server's limit.
pub fn over_limit(name: &str, size: u64) -> Option<String> {
    (size > MAX_UPLOAD).then(|| {
        format!(
            "{name} is {size} bytes, over the server's upload limit of 50 MiB ({MAX_UPLOAD} bytes); not sent"
        )
    })
}

/// Whether a file with this content was already sent.
pub fn is_unchanged(sent: Option<&Sent>, md5: &str, size: u64) -> bool {
    sent.is_some_and(|s| s.md5 == md5 && s.size == size)
}

/// A file to consider, as found on disk.
#[derive(Debug, Clone, PartialEq)]
struct Found {
    kind: Kind,
    /// The file name sent to the server (and the state's key).
    name: String,
    path: PathBuf,
    /// The size, or why the file cannot be uploaded at all.
    size: std::result::Result<u64, String>,
}

/// Every `*.jsonl` in the sessions folder (sorted by name), then the notes.
/// Missing folders and files are simply not there; anything that cannot be
/// read is listed with its reason.
fn scan(workspace: &Workspace, notices: &mut Vec<String>) -> Vec<Found> {
    let root = fs::canonicalize(workspace.root()).unwrap_or_else(|_| workspace.root().into());
    let mut found = scan_sessions(&workspace.sessions_dir(), &root, notices);
    let local_md = workspace.local_md();
    match fs::symlink_metadata(&local_md) {
        Ok(_) if !inside(&local_md, &root, notices) => {}
        Ok(meta) if meta.is_file() => found.push(Found {
            kind: Kind::LocalMd,
            name: LOCAL_MD_NAME.into(),
            path: local_md,
            size: Ok(meta.len()),
        }),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => found.push(Found {
            kind: Kind::LocalMd,
            name: LOCAL_MD_NAME.into(),
            size: Err(format!("cannot read {}: {e}", local_md.display())),
            path: local_md,
        }),
    }
    found
}

/// Whether `path` is a regular file (not a link) whose real place is inside
/// the workspace: a link planted there (`x.jsonl -> ~/.ssh/id_rsa`, or a
/// linked folder) would send a private file. Anything else is skipped
/// with a notice saying why.
fn inside(path: &Path, root: &Path, notices: &mut Vec<String>) -> bool {
    let linked = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let real = fs::canonicalize(path);
    let outside = !matches!(&real, Ok(real) if real.starts_with(root));
    if linked || outside {
        notices.push(format!(
            "skipped {}: {}; only regular files inside the workspace are uploaded",
            path.display(),
            match linked {
                true => "it is a symbolic link",
                false => "its folder is outside the workspace (a linked folder)",
            }
        ));
        return false;
    }
    true
}

fn scan_sessions(dir: &Path, root: &Path, notices: &mut Vec<String>) -> Vec<Found> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            return vec![Found {
                kind: Kind::Session,
                name: String::new(),
                path: dir.to_path_buf(),
                size: Err(format!("cannot list {}: {e}", dir.display())),
            }]
        }
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                found.push(Found {
                    kind: Kind::Session,
                    name: String::new(),
                    path: dir.to_path_buf(),
                    size: Err(format!("cannot list {}: {e}", dir.display())),
                });
                continue;
            }
        };
        let os_name = entry.file_name();
        if !os_name.as_encoded_bytes().ends_with(b".jsonl") {
            continue;
        }
        let path = entry.path();
        // Regular files only; folders, pipes and sockets are not
        // transcripts (a pipe would block the read), links are skipped.
        if !inside(&path, root, notices) {
            continue;
        }
        let size = match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(meta.len()),
            Ok(_) => continue,
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        };
        let (name, size) = match os_name.to_str() {
            Some(name) => (name.to_string(), size),
            None => (
                os_name.to_string_lossy().into_owned(),
                Err(format!(
                    "{}: the file name is not valid UTF-8, so it cannot be sent",
                    path.display()
                )),
            ),
        };
        found.push(Found {
            kind: Kind::Session,
            name,
            path,
            size,
        });
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// The content's MD5 and size, or why the file cannot be sent. The notes
/// must be UTF-8 text (they travel as a JSON string).
fn fingerprint(f: &Found) -> std::result::Result<(String, u64), String> {
    let size = f.size.clone()?;
    if let Some(reason) = over_limit(&f.name, size) {
        return Err(reason);
    }
    let cannot_read = |e: std::io::Error| format!("cannot read {}: {e}", f.path.display());
    match f.kind {
        Kind::Session => {
            let mut reader = Hashing::new(File::open(&f.path).map_err(cannot_read)?);
            std::io::copy(&mut reader, &mut std::io::sink()).map_err(cannot_read)?;
            Ok(reader.digest.finish())
        }
        Kind::LocalMd => {
            let bytes = read_notes(&f.path)?;
            Ok((md5_hex(bytes.as_bytes()), bytes.len() as u64))
        }
    }
}

/// The notes as text, exactly as in the file (no newline translation).
fn read_notes(path: &Path) -> std::result::Result<String, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if let Some(reason) = over_limit(LOCAL_MD_NAME, bytes.len() as u64) {
        return Err(reason);
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{} is not UTF-8 text ({e}); the server takes the notes as text",
            path.display()
        )
    })
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
    let found = scan(&workspace, &mut report.notices);
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
    let mut sender = client.map(|client| Sender {
        client,
        timeouts: options.timeouts,
        down: None,
    });
    let mut dirty = state.keep_only(&found);

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
        };
        match fingerprint(f) {
            Err(reason) => outcome.error = Some(reason),
            Ok((md5, size)) if is_unchanged(state.sent(f.kind, &f.name), &md5, size) => {
                outcome.action = Action::Unchanged;
                outcome.bytes = Some(size);
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

/// Writes the state atomically; a failure is a notice (the files were sent;
/// they will merely be sent again). True when written.
fn save(path: &Path, state: &mut UploadState, notices: &mut Vec<String>) -> bool {
    state.version = STATE_VERSION;
    let json = serde_json::to_vec_pretty(&state).expect("state serializes");
    match write_atomic(path, &json) {
        Ok(()) => true,
        Err(e) => {
            let notice = format!("upload state not saved, so these files will be sent again: {e}");
            if !notices.contains(&notice) {
                notices.push(notice);
            }
            false
        }
    }
}

/// Why one file was not sent.
enum Refused {
    Failed(String),
    /// The token was refused: nothing else will go either.
    Unauthorized(Error),
}

/// Sends files one by one, retrying transient failures.
struct Sender {
    client: ServerClient,
    timeouts: Timeouts,
    /// Set once a file failed transiently after every retry: the server is
    /// down or broken, and the later files are not tried, so that a hook
    /// with the server unreachable ends in seconds.
    down: Option<String>,
}

impl Sender {
    fn send(&mut self, f: &Found) -> std::result::Result<Sent, Refused> {
        if let Some(reason) = &self.down {
            return Err(Refused::Failed(format!("not sent: {reason}")));
        }
        let path = match f.kind {
            Kind::Session => SESSIONS_PATH,
            Kind::LocalMd => LOCAL_MD_PATH,
        };
        // A 401 is not transient: it comes back at once, not retried.
        let result = retrying(self.client.cancel(), || match f.kind {
            Kind::Session => self.send_session(f),
            Kind::LocalMd => self.send_notes(f),
        });
        match result {
            Ok(sent) => Ok(sent),
            Err(failure) if failure.status == Some(401) => {
                Err(Refused::Unauthorized(Error::Unauthorized {
                    url: self.client.url(path),
                    detail: failure.message,
                }))
            }
            Err(failure) => {
                if failure.transient {
                    self.down = Some(format!(
                        "the upload of {} failed before: {}",
                        f.name, failure.message
                    ));
                }
                Err(Refused::Failed(failure.message))
            }
        }
    }

    /// One multipart POST of a transcript. The body is built in memory (a
    /// transcript is at most 50 MiB, checked first) from one read of the
    /// file, so the state records exactly what was sent even when the file
    /// grows meanwhile; and a body sent in one piece lets a refused
    /// connection be reported as such (a streamed body races it in reqwest).
    fn send_session(&self, f: &Found) -> std::result::Result<Sent, Failure> {
        let cannot_read =
            |e: std::io::Error| Failure::io(&format!("cannot read {}", f.path.display()), &e);
        let file = File::open(&f.path).map_err(cannot_read)?;
        let size = file.metadata().map_err(cannot_read)?.len();
        if let Some(reason) = over_limit(&f.name, size) {
            return Err(refusal(reason));
        }
        let mut content = Vec::with_capacity(size as usize);
        file.take(size)
            .read_to_end(&mut content)
            .map_err(cannot_read)?;
        let (md5, sent) = (md5_hex(&content), content.len() as u64);
        let form = Form::new().part("file", Part::bytes(content).file_name(f.name.clone()));
        let content_type = format!("multipart/form-data; boundary={}", form.boundary());
        let mut body = Vec::with_capacity(sent as usize + 512);
        form.into_reader()
            .read_to_end(&mut body)
            .map_err(cannot_read)?;
        let request = self
            .client
            .post(SESSIONS_PATH)
            .timeout(self.time_limit(sent))
            .header(CONTENT_TYPE, content_type)
            .body(body);
        confirm(self.client.send(request)?)?;
        Ok(Sent {
            md5,
            size: sent,
            uploaded_at: Some(now()),
        })
    }

    /// One JSON POST of the notes, their text exactly as in the file.
    fn send_notes(&self, f: &Found) -> std::result::Result<Sent, Failure> {
        let content = read_notes(&f.path).map_err(refusal)?;
        let size = content.len() as u64;
        let md5 = md5_hex(content.as_bytes());
        let request = self
            .client
            .post(LOCAL_MD_PATH)
            .timeout(self.time_limit(size))
            .header(CONTENT_TYPE, "application/json")
            .body(serde_json::json!({ "content": content }).to_string());
        confirm(self.client.send(request)?)?;
        Ok(Sent {
            md5,
            size,
            uploaded_at: Some(now()),
        })
    }

    fn time_limit(&self, size: u64) -> Duration {
        self.timeouts.read + Duration::from_secs_f64(size as f64 / MIN_UPLOAD_RATE)
    }
}

/// A reason not to send that no retry changes.
fn refusal(message: String) -> Failure {
    Failure {
        status: None,
        transient: false,
        message,
    }
}

/// A `200` whose body is the upload confirmation `{"status": "ok", ...}`;
/// anything else (a proxy's page, say) is not taken as stored.
fn confirm(mut response: Reply) -> std::result::Result<(), Failure> {
    let status = response.status();
    let mut body = Vec::new();
    let read = (&mut response).take(64 * 1024).read_to_end(&mut body);
    let confirmed = read.is_ok()
        && serde_json::from_slice::<serde_json::Value>(&body)
            .is_ok_and(|v| v.get("status").and_then(|s| s.as_str()) == Some("ok"));
    match (status.as_u16(), confirmed) {
        (200, true) => Ok(()),
        _ => Err(refusal(format!(
            "HTTP {status}, but the reply is not the server's upload confirmation: {:?}",
            truncate(String::from_utf8_lossy(&body).trim(), 120)
        ))),
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// MD5 and length of what passes through, shared with whoever reads it
/// (reqwest may read the body on its own thread).
#[derive(Clone, Default)]
struct Tally(Arc<Mutex<(Md5, u64)>>);

impl Tally {
    fn finish(&self) -> (String, u64) {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (hasher, len) = std::mem::take(&mut *guard);
        (hasher.hex(), len)
    }
}

struct Hashing<R> {
    inner: R,
    digest: Tally,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Hashing<R> {
        Hashing {
            inner,
            digest: Tally::default(),
        }
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut guard = self.digest.0.lock().unwrap_or_else(|e| e.into_inner());
        guard.0.update(&buf[..n]);
        guard.1 += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
        std::os::unix::fs::symlink(target, link).unwrap();
    }
    use crate::config::Token;

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
    fn the_limit_is_50_mib_inclusive_and_the_reason_names_file_and_limit() {
        assert_eq!(over_limit("a.jsonl", 0), None);
        assert_eq!(over_limit("a.jsonl", MAX_UPLOAD), None);
        let reason = over_limit("big.jsonl", MAX_UPLOAD + 1).unwrap();
        assert!(reason.contains("big.jsonl"), "{reason}");
        assert!(reason.contains("50 MiB"), "{reason}");
        assert!(reason.contains("52428801 bytes"), "{reason}");
    }

    #[test]
    fn only_the_same_content_counts_as_unchanged() {
        let sent = Sent {
            md5: "abc".into(),
            size: 3,
            uploaded_at: None,
        };
        assert!(is_unchanged(Some(&sent), "abc", 3));
        assert!(!is_unchanged(Some(&sent), "abd", 3));
        assert!(!is_unchanged(Some(&sent), "abc", 4));
        assert!(!is_unchanged(None, "abc", 3));
    }

    #[test]
    fn state_keys_sessions_by_name_and_forgets_files_that_are_gone() {
        let mut state = UploadState::new("s");
        let sent = |md5: &str| Sent {
            md5: md5.into(),
            size: 1,
            uploaded_at: None,
        };
        state.record(Kind::Session, "a.jsonl", sent("1"));
        state.record(Kind::Session, "b.jsonl", sent("2"));
        state.record(Kind::LocalMd, LOCAL_MD_NAME, sent("3"));
        assert_eq!(state.sent(Kind::Session, "b.jsonl").unwrap().md5, "2");
        assert_eq!(state.sent(Kind::LocalMd, LOCAL_MD_NAME).unwrap().md5, "3");
        let found = vec![Found {
            kind: Kind::Session,
            name: "a.jsonl".into(),
            path: "/ws/user/sessions/a.jsonl".into(),
            size: Ok(1),
        }];
        assert!(state.keep_only(&found));
        assert_eq!(state.sessions.keys().collect::<Vec<_>>(), ["a.jsonl"]);
        assert_eq!(state.local_md, None);
        assert!(!state.keep_only(&found));
    }

    #[test]
    fn scan_lists_jsonl_files_sorted_then_the_notes_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        let mut notices = Vec::new();
        assert_eq!(
            scan(&ws, &mut notices),
            vec![],
            "no folders at all: nothing to upload"
        );
        let sessions = ws.sessions_dir();
        write(&sessions.join("b.jsonl"), b"bb");
        write(&sessions.join("a.jsonl"), b"a");
        write(&sessions.join("notes.txt"), b"x");
        fs::create_dir_all(sessions.join("folder.jsonl")).unwrap();
        #[cfg(unix)]
        symlink(sessions.join("missing"), sessions.join("dangling.jsonl"));
        write(&ws.local_md(), b"# notes");
        let found = scan(&ws, &mut notices);
        let names: Vec<(&str, Kind, bool)> = found
            .iter()
            .map(|f| (f.name.as_str(), f.kind, f.size.is_ok()))
            .collect();
        let mut expected = vec![
            ("a.jsonl", Kind::Session, true),
            ("b.jsonl", Kind::Session, true),
        ];
        expected.push((LOCAL_MD_NAME, Kind::LocalMd, true));
        assert_eq!(names, expected);
        assert_eq!(found[1].size, Ok(2));
        // A link is never followed, dangling or not: skipped with a notice.
        assert!(
            notices.len() == 1 && notices[0].contains("dangling.jsonl: it is a symbolic link"),
            "{notices:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn links_to_private_files_are_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("id_rsa");
        write(&private, b"PRIVATE KEY");
        let ws = Workspace::new(dir.path().join("ws"));
        write(&ws.sessions_dir().join("real.jsonl"), b"{}\n");
        symlink(&private, ws.sessions_dir().join("x.jsonl"));
        fs::create_dir_all(ws.local_md().parent().unwrap()).unwrap();
        symlink(&private, ws.local_md());
        let mut notices = Vec::new();
        let found = scan(&ws, &mut notices);
        assert_eq!(
            found.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            ["real.jsonl"]
        );
        assert_eq!(notices.len(), 2, "{notices:?}");
        // A linked sessions folder: its files are outside the workspace.
        let elsewhere = dir.path().join("elsewhere");
        write(&elsewhere.join("y.jsonl"), b"secret");
        fs::remove_dir_all(ws.sessions_dir()).unwrap();
        symlink(&elsewhere, ws.sessions_dir());
        let mut notices = Vec::new();
        assert!(scan(&ws, &mut notices).is_empty());
        assert!(notices[0].contains("outside the workspace"), "{notices:?}");
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

    #[test]
    fn hashing_reader_sees_every_byte() {
        let mut reader = Hashing::new(&b"hello world"[..]);
        std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
        assert_eq!(
            reader.digest.finish(),
            ("5eb63bbbe01eeed093cb22bb8f5acdc3".to_string(), 11)
        );
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
