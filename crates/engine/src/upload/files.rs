//! The files an upload considers, as found on disk, and how they are read:
//! every `*.jsonl` in `user/sessions/` and in Claude Code's folder for the
//! workspace, then `.claude/CLAUDE.local.md`. Only regular files are read
//! (a symlink is skipped, never followed, and so is a file whose real
//! place is outside its folder), one transcript reached twice is sent
//! once, and a file over the server's limit is refused before sending.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::digest::{md5_hex, Md5};
use crate::upload::report::Kind;
use crate::upload::transcripts::{self, upload_name};
use crate::workspace::layout::Workspace;

/// The server's limit on one uploaded file. It answers `413` only after the
/// whole body, so bigger files are refused before sending.
pub const MAX_UPLOAD: u64 = 50 * 1024 * 1024;

pub(super) const LOCAL_MD_NAME: &str = "CLAUDE.local.md";

/// `Some(reason)` when a file of `size` bytes is over the server's limit.
pub fn over_limit(name: &str, size: u64) -> Option<String> {
    (size > MAX_UPLOAD).then(|| {
        format!(
            "{name} is {size} bytes, over the server's upload limit of 50 MiB ({MAX_UPLOAD} bytes); not sent"
        )
    })
}

/// A file to consider, as found on disk.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Found {
    pub(super) kind: Kind,
    /// The file name sent to the server (and the state's key).
    pub(super) name: String,
    pub(super) path: PathBuf,
    /// The size, or why the file cannot be uploaded at all.
    pub(super) size: std::result::Result<u64, String>,
    /// Why it is not read at all (a symlink, a second copy).
    pub(super) skipped: Option<String>,
    pub(super) modified: Option<SystemTime>,
}

impl Found {
    pub(super) fn session(
        name: String,
        path: PathBuf,
        size: std::result::Result<u64, String>,
    ) -> Found {
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
pub(super) fn scan(workspace: &Workspace) -> Vec<Found> {
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
pub(super) fn fingerprint(f: &Found) -> std::result::Result<(String, u64), String> {
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
pub(super) fn open_regular(path: &Path) -> std::io::Result<File> {
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
pub(super) fn read_notes(path: &Path) -> std::result::Result<String, String> {
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

/// MD5 and length of what passes through, shared with whoever reads it
/// (reqwest may read the body on its own thread).
#[derive(Clone, Default)]
pub(super) struct Tally(Arc<Mutex<(Md5, u64)>>);

impl Tally {
    pub(super) fn finish(&self) -> (String, u64) {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (hasher, len) = std::mem::take(&mut *guard);
        (hasher.hex(), len)
    }
}

pub(super) struct Hashing<R> {
    inner: R,
    pub(super) digest: Tally,
}

impl<R: Read> Hashing<R> {
    pub(super) fn new(inner: R) -> Hashing<R> {
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
    use std::time::Duration;

    #[cfg(unix)]
    fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
        std::os::unix::fs::symlink(target, link).unwrap();
    }

    fn write(path: &Path, bytes: &[u8]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
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
}
