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

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::io::{BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::digest::{md5_hex, Md5};
use reqwest::blocking::multipart::{Form, Part};
use reqwest::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::protocol::ids::truncate;
use crate::transfer::exchange::Reply;
use crate::transfer::http::{retrying, Failure, ServerClient, Timeouts};
use crate::upload::transcripts::{self, upload_name};
use crate::workspace::layout::Workspace;
use crate::workspace::lock;
use crate::workspace::state::{read_json, write_atomic};

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
    /// Not read at all (a symlink, a second copy of one transcript); the
    /// note says why.
    Skipped,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Uploaded => "uploaded",
            Action::Unchanged => "unchanged",
            Action::WouldUpload => "would_upload",
            Action::Failed => "failed",
            Action::Skipped => "skipped",
        }
    }
}

/// The gzip extras of a 0.84 server.
const SESSION_GZIP: &str = "session-gzip";

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
    /// Something worth knowing: why it was skipped, the name it was sent
    /// under, secrets removed, gzip.
    pub note: Option<String>,
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
    /// Of the file as it is on disk (what was sent was scrubbed from it).
    pub md5: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<String>,
    /// How it went (scrubbed, gzipped), for the report only.
    #[serde(skip)]
    pub note: Option<String>,
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
    /// Why it is not read at all (a symlink, a second copy).
    skipped: Option<String>,
    modified: Option<SystemTime>,
}

impl Found {
    fn session(name: String, path: PathBuf, size: std::result::Result<u64, String>) -> Found {
        Found {
            kind: Kind::Session,
            name,
            path,
            size,
            skipped: None,
            modified: None,
        }
    }
}

/// Every `*.jsonl` in the sessions folder and in Claude Code's folder for
/// this workspace (each sorted by path), then the notes. Missing folders and
/// files are simply not there; anything that cannot be read is listed with
/// its reason. One transcript reached twice is sent once.
fn scan(workspace: &Workspace) -> Vec<Found> {
    let root = fs::canonicalize(workspace.root()).unwrap_or_else(|_| workspace.root().into());
    let mut found = scan_sessions(&workspace.sessions_dir(), &root);
    for folder in transcripts::claude_folders(workspace.root()) {
        let own = fs::canonicalize(&folder).unwrap_or_else(|_| folder.clone());
        found.extend(scan_sessions(&folder, &own));
    }
    let mut found = once_each(found);
    let local_md = workspace.local_md();
    match fs::symlink_metadata(&local_md) {
        Ok(meta) if meta.file_type().is_symlink() || outside(&local_md, &root).is_some() => found
            .push(Found {
                kind: Kind::LocalMd,
                name: LOCAL_MD_NAME.into(),
                path: local_md.clone(),
                size: Ok(0),
                skipped: Some(match meta.file_type().is_symlink() {
                    true => "a symbolic link: skipped, never followed".into(),
                    false => outside(&local_md, &root).unwrap_or_default(),
                }),
                modified: None,
            }),
        Ok(meta) if meta.is_file() => found.push(Found {
            kind: Kind::LocalMd,
            name: LOCAL_MD_NAME.into(),
            path: local_md,
            size: Ok(meta.len()),
            skipped: None,
            modified: None,
        }),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => found.push(Found {
            kind: Kind::LocalMd,
            name: LOCAL_MD_NAME.into(),
            size: Err(format!("cannot read {}: {e}", local_md.display())),
            path: local_md,
            skipped: None,
            modified: None,
        }),
    }
    found
}

/// Why a file must not be read although it is no link itself: its real
/// place is outside `root` (the workspace, or Claude Code's folder for it),
/// as through a linked folder (`user/sessions -> ~/.ssh`).
fn outside(path: &Path, root: &Path) -> Option<String> {
    match fs::canonicalize(path) {
        Ok(real) if real.starts_with(root) => None,
        _ => Some(format!(
            "its folder is outside {} (a linked folder): skipped, never followed",
            root.display()
        )),
    }
}

/// One row per transcript: a file reached through two folders (one a link
/// to the other) is kept once; two files sent under one name (a copy in
/// `user/sessions/` of one in Claude Code's folder) are one transcript, of
/// which the most recently written is sent and the other skipped.
fn once_each(found: Vec<Found>) -> Vec<Found> {
    let mut seen_paths = std::collections::HashSet::new();
    let mut out: Vec<Found> = Vec::with_capacity(found.len());
    for f in found {
        if f.skipped.is_none() {
            if let Ok(real) = fs::canonicalize(&f.path) {
                if !seen_paths.insert(real) {
                    continue;
                }
            }
        }
        out.push(f);
    }
    let sendable = |f: &Found| f.skipped.is_none() && f.size.is_ok() && !f.name.is_empty();
    for i in 0..out.len() {
        for j in 0..i {
            if !(sendable(&out[i]) && sendable(&out[j]) && out[i].name == out[j].name) {
                continue;
            }
            let (newer, older) = match out[i].modified > out[j].modified {
                true => (i, j),
                false => (j, i),
            };
            let note = format!(
                "the same transcript as {} (sent as {}), which is newer",
                out[newer].path.display(),
                out[newer].name
            );
            out[older].skipped = Some(note);
        }
    }
    out
}

fn scan_sessions(dir: &Path, root: &Path) -> Vec<Found> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            return vec![Found::session(
                String::new(),
                dir.to_path_buf(),
                Err(format!("cannot list {}: {e}", dir.display())),
            )]
        }
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                found.push(Found::session(
                    String::new(),
                    dir.to_path_buf(),
                    Err(format!("cannot list {}: {e}", dir.display())),
                ));
                continue;
            }
        };
        let os_name = entry.file_name();
        if !os_name.as_encoded_bytes().ends_with(b".jsonl") {
            continue;
        }
        let path = entry.path();
        let name = upload_name(&os_name);
        // Regular files only: a symlink could lead anywhere (the user's
        // keys), so it is not followed; folders, pipes and sockets are not
        // transcripts (a pipe would block the read).
        let (size, modified) = match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let mut f = Found::session(name, path, Ok(0));
                f.skipped = Some("a symbolic link: skipped, never followed".into());
                found.push(f);
                continue;
            }
            Ok(meta) if meta.is_file() => {
                if let Some(reason) = outside(&path, root) {
                    let mut f = Found::session(name, path, Ok(0));
                    f.skipped = Some(reason);
                    found.push(f);
                    continue;
                }
                (Ok(meta.len()), meta.modified().ok())
            }
            Ok(_) => continue,
            Err(e) => (Err(format!("cannot read {}: {e}", path.display())), None),
        };
        let mut f = Found::session(name, path, size);
        f.modified = modified;
        found.push(f);
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
            let mut reader = Hashing::new(open_regular(&f.path).map_err(cannot_read)?);
            std::io::copy(&mut reader, &mut std::io::sink()).map_err(cannot_read)?;
            Ok(reader.digest.finish())
        }
        Kind::LocalMd => {
            let bytes = read_notes(&f.path)?;
            Ok((md5_hex(bytes.as_bytes()), bytes.len() as u64))
        }
    }
}

/// Opens `path` only if it is a regular file, and is still the file that
/// was looked at: a symlink swapped in meanwhile is refused, not followed.
fn open_regular(path: &Path) -> std::io::Result<File> {
    let before = fs::symlink_metadata(path)?;
    if !before.is_file() {
        return Err(std::io::Error::other(
            "not a regular file (a symbolic link is never followed)",
        ));
    }
    let file = File::open(path)?;
    let after = file.metadata()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if (before.dev(), before.ino()) != (after.dev(), after.ino()) {
            return Err(std::io::Error::other(
                "the file was replaced while it was opened",
            ));
        }
    }
    if !after.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
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
    // What upstream's `agnes push` sent from this workspace (adopt.rs).
    let pushed = crate::sync::adopt::pushed_sessions(&workspace);

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
                    && crate::sync::adopt::pushed(&pushed, &f.path, size) =>
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
    /// The user's token, removed from transcripts before they are sent.
    token: Option<String>,
    /// Whether the server takes gzipped transcripts; asked once.
    gzip: Option<bool>,
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
        let cancel = self.client.cancel().clone();
        let result = retrying(&cancel, || match f.kind {
            Kind::Session => {
                // Whether gzip is taken is asked once, before the first
                // transcript; a server that cannot be reached fails here,
                // with the reason (a streamed POST can hide it).
                if self.gzip.is_none() {
                    let accepts = self.client.accepts().map_err(|mut failure| {
                        failure.message =
                            format!("{}: {}", self.client.url(SESSIONS_PATH), failure.message);
                        failure
                    })?;
                    self.gzip = Some(accepts.iter().any(|a| a == SESSION_GZIP));
                }
                self.send_session(f)
            }
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

    /// One multipart POST of a transcript: read line by line (hashed on the
    /// way, so that the state records the content that was sent even when
    /// the file grows meanwhile), secrets removed, into a temporary copy,
    /// gzipped when the server takes that.
    fn send_session(&self, f: &Found) -> std::result::Result<Sent, Failure> {
        let cannot_read =
            |e: std::io::Error| Failure::io(&format!("cannot read {}", f.path.display()), &e);
        let file = open_regular(&f.path).map_err(cannot_read)?;
        let size = file.metadata().map_err(cannot_read)?.len();
        if let Some(reason) = over_limit(&f.name, size) {
            return Err(refusal(reason));
        }
        let gzip = self.gzip == Some(true) && f.name.len() + 3 <= transcripts::MAX_NAME;
        let (mut copy, md5, read, removed) =
            scrubbed_copy(file.take(size), self.token.as_deref(), gzip).map_err(|e| {
                Failure::io(
                    &format!("cannot prepare {} for sending", f.path.display()),
                    &e,
                )
            })?;
        let length = copy
            .seek(std::io::SeekFrom::End(0))
            .and_then(|len| copy.rewind().map(|()| len))
            .map_err(cannot_read)?;
        let name = match gzip {
            true => format!("{}.gz", f.name),
            false => f.name.clone(),
        };
        let part = Part::reader_with_length(copy, length).file_name(name.clone());
        let request = self
            .client
            .post(SESSIONS_PATH)
            .timeout(self.time_limit(length))
            .multipart(Form::new().part("file", part));
        confirm(self.client.send(request)?)?;
        let mut notes = Vec::new();
        if removed > 0 {
            notes.push(format!("{removed} secret(s) removed before sending"));
        }
        if gzip {
            notes.push(format!("sent gzipped as {name} ({length} bytes)"));
        }
        Ok(Sent {
            md5,
            size: read,
            uploaded_at: Some(now()),
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        })
    }

    /// One JSON POST of the notes, their text as in the file with secrets
    /// removed, as from transcripts (CONTRACT.md §7.9): notes hold what
    /// the analyst pasted, tokens included.
    fn send_notes(&self, f: &Found) -> std::result::Result<Sent, Failure> {
        let content = read_notes(&f.path).map_err(refusal)?;
        let size = content.len() as u64;
        let md5 = md5_hex(content.as_bytes());
        let mut clean = Vec::with_capacity(content.len());
        let removed =
            crate::secrets::scrub::scrub(content.as_bytes(), self.token.as_deref(), &mut clean);
        // Marks are ASCII put where whole secrets were: still UTF-8.
        let clean = String::from_utf8_lossy(&clean);
        let request = self
            .client
            .post(LOCAL_MD_PATH)
            .timeout(self.time_limit(size))
            .header(CONTENT_TYPE, "application/json")
            .body(serde_json::json!({ "content": clean }).to_string());
        confirm(self.client.send(request)?)?;
        Ok(Sent {
            md5,
            size,
            uploaded_at: Some(now()),
            note: (removed > 0).then(|| format!("{removed} secret(s) removed before sending")),
        })
    }

    fn time_limit(&self, size: u64) -> Duration {
        self.timeouts.read + Duration::from_secs_f64(size as f64 / MIN_UPLOAD_RATE)
    }
}

/// A transcript's copy for sending: line by line, secrets removed, gzipped
/// when asked, in an anonymous temporary file (gone when closed). Returns it
/// with the MD5 and length of what was read, and how many secrets went.
fn scrubbed_copy(
    source: impl Read,
    token: Option<&str>,
    gzip: bool,
) -> std::io::Result<(File, String, u64, usize)> {
    let mut reader = BufReader::new(Hashing::new(source));
    let digest = reader.get_ref().digest.clone();
    let file = tempfile::tempfile()?;
    let (file, removed) = match gzip {
        true => {
            let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::default());
            let removed = copy_lines(&mut reader, token, &mut encoder)?;
            (encoder.finish()?, removed)
        }
        false => {
            let mut writer = std::io::BufWriter::new(file);
            let removed = copy_lines(&mut reader, token, &mut writer)?;
            (writer.into_inner().map_err(|e| e.into_error())?, removed)
        }
    };
    let (md5, read) = digest.finish();
    Ok((file, md5, read, removed))
}

/// Copies `reader` to `out` line by line, secrets removed; how many went.
fn copy_lines(
    reader: &mut impl BufRead,
    token: Option<&str>,
    out: &mut impl Write,
) -> std::io::Result<usize> {
    let (mut line, mut clean, mut removed) = (Vec::new(), Vec::new(), 0);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        clean.clear();
        removed += crate::secrets::scrub::scrub(&line, token, &mut clean);
        out.write_all(&clean)?;
    }
    out.flush()?;
    Ok(removed)
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
    use crate::secrets::token::Token;

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
            note: None,
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
            note: None,
        };
        state.record(Kind::Session, "a.jsonl", sent("1"));
        state.record(Kind::Session, "b.jsonl", sent("2"));
        state.record(Kind::LocalMd, LOCAL_MD_NAME, sent("3"));
        assert_eq!(state.sent(Kind::Session, "b.jsonl").unwrap().md5, "2");
        assert_eq!(state.sent(Kind::LocalMd, LOCAL_MD_NAME).unwrap().md5, "3");
        let found = vec![Found::session(
            "a.jsonl".into(),
            "/ws/user/sessions/a.jsonl".into(),
            Ok(1),
        )];
        assert!(state.keep_only(&found));
        assert_eq!(state.sessions.keys().collect::<Vec<_>>(), ["a.jsonl"]);
        assert_eq!(state.local_md, None);
        assert!(!state.keep_only(&found));
    }

    #[test]
    fn scan_lists_jsonl_files_sorted_then_the_notes_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        assert_eq!(scan(&ws), vec![], "no folders at all: nothing to upload");
        let sessions = ws.sessions_dir();
        write(&sessions.join("b.jsonl"), b"bb");
        write(&sessions.join("a.jsonl"), b"a");
        write(&sessions.join("notes.txt"), b"x");
        fs::create_dir_all(sessions.join("folder.jsonl")).unwrap();
        #[cfg(unix)]
        symlink(sessions.join("missing"), sessions.join("dangling.jsonl"));
        write(&ws.local_md(), b"# notes");
        let found = scan(&ws);
        let names: Vec<(&str, Kind, bool)> = found
            .iter()
            .map(|f| (f.name.as_str(), f.kind, f.skipped.is_none()))
            .collect();
        let mut expected = vec![
            ("a.jsonl", Kind::Session, true),
            ("b.jsonl", Kind::Session, true),
        ];
        // A symlink is listed to be skipped, never followed.
        #[cfg(unix)]
        expected.insert(2, ("dangling.jsonl", Kind::Session, false));
        expected.push((LOCAL_MD_NAME, Kind::LocalMd, true));
        assert_eq!(names, expected);
        assert_eq!(found[1].size, Ok(2));
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
        let sendable = |found: &[Found]| -> Vec<String> {
            found
                .iter()
                .filter(|f| f.skipped.is_none())
                .map(|f| f.name.clone())
                .collect()
        };
        let found = scan(&ws);
        assert_eq!(sendable(&found), ["real.jsonl"]);
        assert_eq!(found.iter().filter(|f| f.skipped.is_some()).count(), 2);
        // A linked sessions folder: its files are outside the workspace.
        let elsewhere = dir.path().join("elsewhere");
        write(&elsewhere.join("y.jsonl"), b"secret");
        fs::remove_dir_all(ws.sessions_dir()).unwrap();
        symlink(&elsewhere, ws.sessions_dir());
        let found = scan(&ws);
        assert_eq!(sendable(&found), Vec::<String>::new());
        let skipped = found.iter().find_map(|f| f.skipped.clone()).unwrap();
        assert!(skipped.contains("outside"), "{skipped}");
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

    #[test]
    fn the_copy_sent_is_scrubbed_and_optionally_gzipped_but_the_digest_is_of_the_file() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtZSJ9.c2lnbmF0dXJlLXgtWQ";
        let text = format!("{{\"a\":\"{jwt}\"}}\n{{\"b\":\"my-secret-token\"}}\nlast");
        for gzip in [false, true] {
            let (mut file, md5, read, removed) =
                scrubbed_copy(text.as_bytes(), Some("my-secret-token"), gzip).unwrap();
            assert_eq!(
                (md5.as_str(), read, removed),
                (md5_hex(text.as_bytes()).as_str(), text.len() as u64, 2)
            );
            let mut raw = Vec::new();
            file.rewind().unwrap();
            file.read_to_end(&mut raw).unwrap();
            let sent = match gzip {
                true => {
                    let mut out = String::new();
                    flate2::read::GzDecoder::new(&raw[..])
                        .read_to_string(&mut out)
                        .unwrap();
                    out
                }
                false => String::from_utf8(raw).unwrap(),
            };
            assert_eq!(
                sent,
                "{\"a\":\"[REDACTED_JWT]\"}\n{\"b\":\"[REDACTED_AGNES_TOKEN]\"}\nlast"
            );
        }
    }

    #[test]
    fn one_transcript_in_two_places_is_sent_once_the_newer_copy() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        write(&a.join("s1.jsonl"), b"old");
        std::thread::sleep(Duration::from_millis(20));
        write(&b.join("s1.jsonl"), b"newer");
        write(&b.join("s2.jsonl"), b"x");
        #[cfg(unix)]
        symlink(&b, dir.path().join("link"));
        let root = fs::canonicalize(dir.path()).unwrap();
        let mut found = scan_sessions(&a, &root);
        found.extend(scan_sessions(&b, &root));
        #[cfg(unix)]
        found.extend(scan_sessions(&dir.path().join("link"), &root));
        let found = once_each(found);
        let rows: Vec<(String, bool)> = found
            .iter()
            .map(|f| {
                (
                    f.path
                        .strip_prefix(dir.path())
                        .unwrap()
                        .display()
                        .to_string(),
                    f.skipped.is_none(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("a/s1.jsonl".to_string(), false),
                ("b/s1.jsonl".to_string(), true),
                ("b/s2.jsonl".to_string(), true),
            ]
        );
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
