//! Fetching one table: streamed to a temporary file beside the target with
//! the MD5 computed on the way, verified, then renamed into place. Until the
//! rename the previous good file is untouched (CONTRACT.md §4.3).
//!
//! A partitioned table (CONTRACT.md §7) is fetched part by part into a
//! staging folder beside its live folder, unchanged parts linked over from
//! the live one; only when every part verified is the staging folder swapped
//! in, so a failure leaves the view reading the complete old set.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use reqwest::header::{CONTENT_LENGTH, ETAG};
use reqwest::StatusCode;

use crate::catalog::Catalog;
use crate::digest::Md5;
use crate::progress::Progress;
use crate::protocol::manifest::{hash_kind, HashKind, PartEntry, TableEntry};
use crate::transfer::exchange::{Reply, Stop};
use crate::transfer::http::{retrying, Failure, ServerClient};
use crate::transfer::signed;
use crate::workspace::layout::Workspace;
use crate::workspace::state::{PartState, TableState};

/// Temporary downloads are `.agnes-<random>.part` beside their target: hidden,
/// never matched by `*.parquet`, and swept at the start of the next sync.
pub const TEMP_PREFIX: &str = ".agnes-";
pub const TEMP_SUFFIX: &str = ".part";

/// A partitioned table's new parts are gathered in `.agnes-new-<id>/`; while
/// it is swapped in, the old folder is `.agnes-old-<id>/`.
const STAGE_PREFIX: &str = ".agnes-new-";
const OLD_PREFIX: &str = ".agnes-old-";

/// The header with the MD5 of the bytes sent (0.84, parts up to 8 MiB).
const CONTENT_MD5: &str = "x-agnes-content-md5";

/// Parts of one table fetched at once (tables themselves go `threads` at a
/// time, so a sync holds at most `threads * PART_THREADS` connections).
const PART_THREADS: usize = 4;

/// The result of fetching one table.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// A new verified file is in place.
    Downloaded {
        bytes: u64,
        etag: Option<String>,
        footer_rows: Option<u64>,
        /// How it came (a signed URL, or why one was not used).
        note: Option<String>,
    },
    /// A partitioned table's complete new set of parts is in place.
    Parts {
        bytes: u64,
        parts: BTreeMap<String, PartState>,
        /// Parts downloaded; the others were kept from the old set.
        fetched: usize,
        /// Rows by the parts' footers, when every part's footer was read.
        footer_rows: Option<u64>,
    },
    /// The server answered 304: the local file is current.
    NotModified,
}

/// A part fetched: its bytes and footer rows, or why not.
type PartResult = Result<(u64, Option<u64>), String>;

/// One body to fetch and what it must be.
struct Source<'a> {
    /// The table the bytes belong to (progress, messages).
    table: &'a str,
    /// The manifest hash: an MD5 to check when 32 hex, else a change token.
    hash: &'a str,
    /// The manifest's size, for progress before any header came.
    size_bytes: u64,
    /// A part does not restart its table's progress.
    starts_progress: bool,
}

/// Fetches `entry` into `target`, retrying transient failures. An unexpired
/// signed URL is tried first, once; whatever goes wrong with it, the API
/// download follows and the outcome's note says why.
pub fn fetch(
    client: &ServerClient,
    entry: &TableEntry,
    if_none_match: Option<&str>,
    target: &Path,
    catalog: &dyn Catalog,
    progress: &dyn Progress,
) -> Result<Fetched, String> {
    let source = Source {
        table: &entry.id,
        hash: &entry.hash,
        size_bytes: entry.size_bytes,
        starts_progress: true,
    };
    let mut note = None;
    if let Some(url) = &entry.signed_url {
        let tried = signed::usable(entry).and_then(|()| {
            let send = || signed::get(url, client);
            fetch_once(client, &source, &send, target, catalog, progress).map_err(|f| {
                f.message
                    .trim_end_matches("; kept the previous file")
                    .to_string()
            })
        });
        match tried {
            Ok(Fetched::Downloaded {
                bytes,
                etag,
                footer_rows,
                ..
            }) => {
                return Ok(Fetched::Downloaded {
                    bytes,
                    etag,
                    footer_rows,
                    note: Some("fetched from the signed URL".into()),
                })
            }
            Ok(_) => note = Some("signed URL not used: unexpected reply".to_string()),
            Err(reason) => note = Some(format!("signed URL not used: {reason}")),
        }
        note = note.map(|n| format!("{n}; downloaded through the API instead"));
    }
    let send = || client.download(&entry.id, if_none_match);
    let fetched = retrying(client.cancel(), || {
        fetch_once(client, &source, &send, target, catalog, progress)
    });
    let fetched = match (fetched, &entry.registry_id) {
        (Err(f), Some(id)) if f.status == Some(403) => {
            let fetched = by_registry_id(client, &source, id, target, catalog, progress, f);
            if fetched.is_ok() {
                note = Some(format!(
                    "downloaded by its registry id '{id}': the server refused its name"
                ));
            }
            fetched
        }
        (fetched, _) => fetched,
    };
    match fetched {
        Ok(Fetched::Downloaded {
            bytes,
            etag,
            footer_rows,
            ..
        }) => Ok(Fetched::Downloaded {
            bytes,
            etag,
            footer_rows,
            note,
        }),
        Ok(other) => Ok(other),
        Err(f) => Err(match note {
            Some(note) => format!("{} ({note})", f.message),
            None => f.message,
        }),
    }
}

/// A table whose registry id differs from its name (CONTRACT.md §7.2):
/// the server checks access by the id but keeps the file under the name,
/// so its download by name was refused (`by_name`). Asked once by the id,
/// which a server that keeps files by id answers; otherwise the failure
/// names the server-side cause, and nothing is retried.
fn by_registry_id(
    client: &ServerClient,
    source: &Source,
    id: &str,
    target: &Path,
    catalog: &dyn Catalog,
    progress: &dyn Progress,
    by_name: Failure,
) -> Result<Fetched, Failure> {
    let send = || client.download(id, None);
    fetch_once(client, source, &send, target, catalog, progress).map_err(|by_id| {
        let status = |f: &Failure| f.status.map_or_else(|| "no answer".to_string(), |s| s.to_string());
        Failure {
            status: by_name.status,
            transient: false,
            message: format!(
                "the server refuses to distribute this table: its registry id '{id}' differs from its \
                 name '{name}', and the server checks access by the id but serves the file by the name \
                 (by name: {}; by id: {}). A server-side problem, not retried: ask an Agnes admin to \
                 give the table the same id and name",
                status(&by_name),
                status(&by_id),
                name = source.table,
            ),
        }
    })
}

/// Fetches a partitioned table's parts (CONTRACT.md §7): the parts whose
/// hash changed, or that are new, through `?part=`; the others linked from
/// the live folder. All or nothing: the live folder is replaced only once
/// every part is verified, and a part gone from the manifest goes with it.
pub fn fetch_parts(
    client: &ServerClient,
    entry: &TableEntry,
    parts: &[PartEntry],
    local: Option<&TableState>,
    workspace: &Workspace,
    catalog: &dyn Catalog,
    progress: &dyn Progress,
) -> Result<Fetched, String> {
    let live = workspace.table_dir(&entry.id);
    let stage = workspace
        .parquet_dir()
        .join(format!("{STAGE_PREFIX}{}", entry.id));
    let local_parts = local.and_then(|l| l.parts.as_ref());
    let reusable = |part: &PartEntry| {
        part.hash_kind() != HashKind::Empty
            && local_parts
                .and_then(|m| m.get(&part.path))
                .is_some_and(|s| s.hash == part.hash)
            && fs::symlink_metadata(live.join(&part.path)).is_ok_and(|m| m.is_file())
    };
    let to_fetch: u64 = parts
        .iter()
        .filter(|p| !reusable(p))
        .map(|p| p.size_bytes)
        .sum();
    progress.start(&entry.id, Some(to_fetch));

    let result = (|| -> Result<(u64, usize, Option<u64>), String> {
        remove_dir_if_there(&stage)
            .and_then(|()| fs::create_dir_all(&stage))
            .map_err(|e| {
                format!(
                    "cannot prepare {}: {e}; kept the previous parts",
                    stage.display()
                )
            })?;
        let (mut bytes, mut rows) = (0u64, Some(0u64));
        let mut todo: Vec<&PartEntry> = Vec::new();
        for part in parts {
            let dest = stage.join(&part.path);
            if let Some(dir) = dest.parent() {
                fs::create_dir_all(dir).map_err(|e| {
                    format!(
                        "cannot create {}: {e}; kept the previous parts",
                        dir.display()
                    )
                })?;
            }
            if !reusable(part) {
                todo.push(part);
                continue;
            }
            let old = live.join(&part.path);
            link_or_copy(&old, &dest).map_err(|e| {
                format!(
                    "cannot keep unchanged part {} ({e}); kept the previous parts",
                    part.path
                )
            })?;
            bytes += local_parts
                .and_then(|m| m.get(&part.path))
                .map_or(0, |s| s.size_bytes);
            // Footers of kept parts are not read again: the manifest's rows.
            rows = None;
        }
        let fetch_part = |part: &PartEntry| -> PartResult {
            let source = Source {
                table: &entry.id,
                hash: &part.hash,
                size_bytes: part.size_bytes,
                starts_progress: false,
            };
            let send = || client.download_part(&entry.id, &part.path);
            let dest = stage.join(&part.path);
            match retrying(client.cancel(), || {
                fetch_once(client, &source, &send, &dest, catalog, progress)
            }) {
                Ok(Fetched::Downloaded {
                    bytes, footer_rows, ..
                }) => Ok((bytes, footer_rows)),
                Ok(_) => Err(format!(
                    "part {}: the server answered 304 to a request without If-None-Match; kept the previous parts",
                    part.path
                )),
                Err(f) => Err(format!(
                    "part {}: {}; kept the previous parts",
                    part.path,
                    f.message.trim_end_matches("; kept the previous file")
                )),
            }
        };
        // A few parts at once; the first failure stops new ones (the whole
        // set is refused anyway) and the earliest failing part is reported.
        let results: Mutex<Vec<(usize, PartResult)>> = Mutex::new(Vec::new());
        let (next, failed) = (AtomicUsize::new(0), AtomicBool::new(false));
        std::thread::scope(|scope| {
            for _ in 0..PART_THREADS.min(todo.len()) {
                scope.spawn(|| {
                    while !failed.load(Ordering::Relaxed) && !client.cancel().is_cancelled() {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(part) = todo.get(i) else { break };
                        let result = fetch_part(part);
                        failed.fetch_or(result.is_err(), Ordering::Relaxed);
                        results
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((i, result));
                    }
                });
            }
        });
        let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
        results.sort_by_key(|(i, _)| *i);
        let mut fetched = 0;
        for (_, result) in results {
            let (n, footer_rows) = result?;
            bytes += n;
            fetched += 1;
            rows = rows.zip(footer_rows).map(|(a, b)| a + b);
        }
        swap_in(&live, &stage, &workspace.parquet_dir(), &entry.id).map_err(|e| {
            format!(
                "cannot put the new parts in place at {}: {e}; kept the previous parts",
                live.display()
            )
        })?;
        Ok((bytes, fetched, rows))
    })();
    match result {
        Ok((bytes, fetched, footer_rows)) => Ok(Fetched::Parts {
            bytes,
            parts: parts
                .iter()
                .map(|p| {
                    let size = fs::metadata(live.join(&p.path)).map_or(p.size_bytes, |m| m.len());
                    let state = PartState {
                        hash: p.hash.clone(),
                        size_bytes: size,
                    };
                    (p.path.clone(), state)
                })
                .collect(),
            fetched,
            footer_rows,
        }),
        Err(e) => {
            let _ = remove_dir_if_there(&stage);
            Err(e)
        }
    }
}

/// A hard link (no copy of a big part), else a copy. Parts are never
/// written in place, so old and new folders may share a file.
fn link_or_copy(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::hard_link(from, to).or_else(|_| fs::copy(from, to).map(|_| ()))
}

fn remove_dir_if_there(dir: &Path) -> std::io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Replaces `live` by `stage` with two renames; the old folder is put back
/// when the second fails. The sweep at the next sync finishes a swap that a
/// killed sync left half done.
fn swap_in(live: &Path, stage: &Path, parquet_dir: &Path, id: &str) -> std::io::Result<()> {
    let old = parquet_dir.join(format!("{OLD_PREFIX}{id}"));
    remove_dir_if_there(&old)?;
    let had_old = match fs::rename(live, &old) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    if let Err(e) = fs::rename(stage, live) {
        if had_old {
            let _ = fs::rename(&old, live);
        }
        return Err(e);
    }
    let _ = remove_dir_if_there(&old);
    Ok(())
}

fn fetch_once(
    client: &ServerClient,
    source: &Source,
    send: &dyn Fn() -> Result<Reply, Failure>,
    target: &Path,
    catalog: &dyn Catalog,
    progress: &dyn Progress,
) -> Result<Fetched, Failure> {
    let mut response = send()?;
    if response.status() == StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified);
    }
    let etag = response
        .headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .filter(|v| client.keeps_etag(v))
        .map(String::from);
    let content_md5 = response.headers().get(CONTENT_MD5).map(|v| {
        String::from_utf8_lossy(v.as_bytes())
            .trim()
            .to_ascii_lowercase()
    });
    let expected_len = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if source.starts_progress {
        progress.start(
            source.table,
            expected_len.or((source.size_bytes > 0).then_some(source.size_bytes)),
        );
    }

    let dir = target.parent().expect("a table's file has a folder");
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .map_err(|e| {
            local_failure(
                format!(
                    "cannot create a temporary file in {} for {}",
                    dir.display(),
                    file_name(target)
                ),
                &e,
            )
        })?;
    let tmp_path = tmp.path().to_path_buf();
    let write_failed = |e: std::io::Error| {
        local_failure(
            format!(
                "cannot write {} (downloading into {})",
                file_name(target),
                tmp_path.display()
            ),
            &e,
        )
    };

    // Hashed only when there is an MD5 to compare with (the manifest's or
    // the server's header): for a change token it would be a CPU core's
    // worth of work per 800 MB for nothing (the parquet check follows).
    let mut hasher =
        (hash_kind(source.hash) == HashKind::Md5 || content_md5.is_some()).then(Md5::new);
    let mut bytes = 0u64;
    loop {
        let chunk = match response.next_chunk() {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            // Interrupted: not retried. A cut connection, a stall or a
            // trickle: worth another try.
            Err(e) => {
                return Err(match Stop::of(&e) {
                    Some(Stop::Cancelled) => Failure::interrupted(),
                    _ => Failure {
                        status: None,
                        transient: true,
                        message: format!(
                            "download interrupted after {bytes} bytes: {}",
                            crate::transfer::exchange::describe(&e)
                        ),
                    },
                })
            }
        };
        if let Some(hasher) = hasher.as_mut() {
            hasher.update(&chunk);
        }
        // Through the `File`: the temporary's own `Write` appends its path
        // to errors, which the message already gives.
        tmp.as_file_mut().write_all(&chunk).map_err(write_failed)?;
        bytes += chunk.len() as u64;
        progress.advance(source.table, chunk.len() as u64);
        response.recycle(chunk);
    }
    if let Some(len) = expected_len.filter(|len| *len != bytes) {
        return Err(Failure {
            status: None,
            transient: true,
            message: format!("body cut short: got {bytes} of {len} bytes"),
        });
    }
    tmp.as_file_mut().flush().map_err(write_failed)?;
    // On disk before the state records it (durable.rs).
    crate::workspace::durable::before_rename(tmp.as_file()).map_err(write_failed)?;

    let md5 = hasher.map(Md5::hex);
    // The server's own word on what it sent: a body changed on the way
    // (a proxy, a bad disk) fails here even without a manifest MD5.
    let received = md5.as_deref().unwrap_or_default();
    // What the server says it sent, and it arrived intact: a part being
    // rewritten while the manifest was read legitimately differs from the
    // manifest's hash (CONTRACT.md §7.4), and is accepted as upstream does.
    let vouched = content_md5.as_deref() == Some(received);
    if let Some(sent) = content_md5.filter(|sent| sent != received) {
        return Err(Failure {
            status: None,
            transient: true,
            message: format!(
                "the {bytes} bytes received hash to {received}, but the server's X-Agnes-Content-MD5 says {}",
                truncate_header(&sent)
            ),
        });
    }
    let footer_rows = verify(
        if vouched { received } else { source.hash },
        received,
        tmp.as_file_mut(),
        &tmp_path,
        bytes,
        catalog,
    )?;
    crate::workspace::replace::persist(tmp, target).map_err(|e| {
        local_failure(
            format!("cannot move the download to {}", target.display()),
            &e.error,
        )
    })?;
    Ok(Fetched::Downloaded {
        bytes,
        etag,
        footer_rows,
        note: None,
    })
}

fn truncate_header(text: &str) -> String {
    crate::protocol::ids::truncate(text, 64)
}

/// A failure of the local disk: not retried (a full disk stays full, a
/// read-only folder read-only), and the message says the old file is kept.
fn local_failure(action: String, e: &std::io::Error) -> Failure {
    use std::io::ErrorKind;
    let hint = match e.kind() {
        ErrorKind::ReadOnlyFilesystem | ErrorKind::PermissionDenied => {
            ", the folder is not writable"
        }
        _ => "",
    };
    // `tempfile` appends ` at path "<temporary>"`; the action names it already.
    let text = e.to_string();
    let text = text.split(" at path \"").next().unwrap_or(&text);
    Failure {
        status: None,
        transient: false,
        message: format!("{action}: {text}{hint}; kept the previous file"),
    }
}

/// `orders.parquet`, for messages.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| path.display().to_string())
}

/// Checks a finished download: its MD5 (`md5`, computed when the manifest
/// gives one) against the manifest's, its parquet structure otherwise.
/// Returns the footer's row count when read.
fn verify(
    hash: &str,
    md5: &str,
    file: &mut File,
    path: &Path,
    bytes: u64,
    catalog: &dyn Catalog,
) -> Result<Option<u64>, Failure> {
    let refuse = |message: String| Failure {
        status: None,
        transient: false,
        message,
    };
    if hash_kind(hash) == HashKind::Md5 {
        return match md5 == hash {
            true => Ok(None),
            false => Err(refuse(format!(
                "hash mismatch: the manifest says {hash} but the {bytes} bytes received hash to {md5}; kept the previous file"
            ))),
        };
    }
    if !has_parquet_magic(file).map_err(|e| Failure::io("cannot read back the download", &e))? {
        return Err(refuse(format!(
            "not a parquet file (no PAR1 at both ends of {bytes} bytes){}; kept the previous file",
            excerpt(file)
        )));
    }
    let rows = catalog.parquet_rows(path).map_err(|e| {
        refuse(format!(
            "parquet footer unreadable: {e}; kept the previous file"
        ))
    })?;
    Ok(Some(rows))
}

/// Parquet files start and end with the 4 bytes `PAR1`.
pub fn has_parquet_magic(file: &mut File) -> std::io::Result<bool> {
    let len = file.seek(SeekFrom::End(0))?;
    if len < 12 {
        return Ok(false);
    }
    let mut head = [0u8; 4];
    let mut tail = [0u8; 4];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut head)?;
    file.seek(SeekFrom::End(-4))?;
    file.read_exact(&mut tail)?;
    Ok(&head == b"PAR1" && &tail == b"PAR1")
}

/// The start of a body that is text (an HTML error page, say), for the message.
fn excerpt(file: &mut File) -> String {
    let mut head = [0u8; 80];
    let n = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.read(&mut head))
        .unwrap_or(0);
    match std::str::from_utf8(&head[..n]) {
        Ok(text) if !text.trim().is_empty() => format!(", it starts with {:?}", text.trim()),
        _ => String::new(),
    }
}

/// Deletes temporary downloads left by a sync that was killed, and
/// finishes a partitioned table's swap it left half done (the old folder
/// goes back when the new one never arrived). Called with the workspace
/// lock held, so none of them belongs to a running sync.
pub fn sweep_temporaries(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut swept = 0;
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let done = if name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX) && !is_dir {
            fs::remove_file(&path).is_ok()
        } else if name.starts_with(STAGE_PREFIX) && is_dir {
            fs::remove_dir_all(&path).is_ok()
        } else if let Some(id) = name.strip_prefix(OLD_PREFIX).filter(|_| is_dir) {
            let live: PathBuf = dir.join(id);
            match live.exists() || crate::protocol::ids::check_table_id(id).is_err() {
                true => fs::remove_dir_all(&path).is_ok(),
                false => fs::rename(&path, &live).is_ok(),
            }
        } else {
            false
        };
        swept += usize::from(done);
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parquet_magic_needs_both_ends() {
        let dir = tempfile::tempdir().unwrap();
        let check = |bytes: &[u8]| {
            let path = dir.path().join("f");
            fs::write(&path, bytes).unwrap();
            has_parquet_magic(&mut File::open(&path).unwrap()).unwrap()
        };
        assert!(check(b"PAR1\0\0\0\0\0\0\0\0PAR1"));
        assert!(!check(b"PAR1\0\0\0\0\0\0\0\0PAR2"));
        assert!(!check(b"<html>error</html>"));
        assert!(!check(b"PAR1PAR1"));
    }

    #[test]
    fn sweep_removes_only_our_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            ".agnes-abc.part",
            ".agnes-def.part",
            "orders.parquet",
            ".other.part",
        ] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(sweep_temporaries(dir.path()), 2);
        let mut left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [".other.part", "orders.parquet"]);
    }

    #[test]
    fn sweep_finishes_a_half_done_swap_of_parts() {
        let dir = tempfile::tempdir().unwrap();
        let mk = |rel: &str| {
            let path = dir.path().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, b"x").unwrap();
        };
        // Killed between the two renames: the old set goes back.
        mk(".agnes-old-events/a.parquet");
        mk(".agnes-new-events/a.parquet");
        // Killed after them: the old set is just removed.
        mk(".agnes-old-sales/a.parquet");
        mk("sales/b.parquet");
        assert_eq!(sweep_temporaries(dir.path()), 3);
        let mut left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["events", "sales"]);
        assert!(dir.path().join("events/a.parquet").is_file());
        assert!(dir.path().join("sales/b.parquet").is_file());
    }

    #[test]
    fn a_swap_replaces_the_live_folder_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (live, stage) = (dir.path().join("t"), dir.path().join(".agnes-new-t"));
        fs::create_dir_all(&live).unwrap();
        fs::write(live.join("old.parquet"), b"old").unwrap();
        fs::create_dir_all(&stage).unwrap();
        fs::write(stage.join("new.parquet"), b"new").unwrap();
        swap_in(&live, &stage, dir.path(), "t").unwrap();
        let names: Vec<_> = fs::read_dir(&live)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["new.parquet"]);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no stage, no old folder left"
        );
    }
}
