//! Fetching one table: streamed to a temporary file beside the target with
//! the MD5 computed on the way, verified, then renamed into place. Until the
//! rename the previous good file is untouched (CONTRACT.md §4.3).

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use reqwest::header::{CONTENT_LENGTH, ETAG};
use reqwest::StatusCode;

use crate::catalog::Catalog;
use crate::digest::Md5;
use crate::exchange::Stop;
use crate::http::{retrying, Failure, ServerClient};
use crate::manifest::{HashKind, TableEntry};
use crate::progress::Progress;

/// Temporary downloads are `.agnes-<random>.part` beside their target: hidden,
/// never matched by `*.parquet`, and swept at the start of the next sync.
pub const TEMP_PREFIX: &str = ".agnes-";
pub const TEMP_SUFFIX: &str = ".part";

/// The result of fetching one table.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// A new verified file is in place.
    Downloaded {
        bytes: u64,
        etag: Option<String>,
        footer_rows: Option<u64>,
    },
    /// The server answered 304: the local file is current.
    NotModified,
}

/// Fetches `entry` into `target`, retrying transient failures.
pub fn fetch(
    client: &ServerClient,
    entry: &TableEntry,
    if_none_match: Option<&str>,
    target: &Path,
    catalog: &dyn Catalog,
    progress: &dyn Progress,
) -> Result<Fetched, String> {
    retrying(client.cancel(), || {
        fetch_once(client, entry, if_none_match, target, catalog, progress)
    })
    .map_err(|f| f.message)
}

fn fetch_once(
    client: &ServerClient,
    entry: &TableEntry,
    if_none_match: Option<&str>,
    target: &Path,
    catalog: &dyn Catalog,
    progress: &dyn Progress,
) -> Result<Fetched, Failure> {
    let mut response = client.download(&entry.id, if_none_match)?;
    if response.status() == StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified);
    }
    let etag = response
        .headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .filter(|v| client.keeps_etag(v))
        .map(String::from);
    let expected_len = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    progress.start(
        &entry.id,
        expected_len.or((entry.size_bytes > 0).then_some(entry.size_bytes)),
    );

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

    let mut hasher = Md5::new();
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
                            crate::http::describe(&e)
                        ),
                    },
                })
            }
        };
        hasher.update(&chunk);
        // Through the `File`: the temporary's own `Write` appends its path
        // to errors, which the message already gives.
        tmp.as_file_mut().write_all(&chunk).map_err(write_failed)?;
        bytes += chunk.len() as u64;
        progress.advance(&entry.id, chunk.len() as u64);
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
    // On disk before the rename puts it in place: after a power cut the
    // name never points at a file whose data was not written.
    tmp.as_file().sync_all().map_err(write_failed)?;

    let footer_rows = verify(
        entry,
        &hasher.hex(),
        tmp.as_file_mut(),
        &tmp_path,
        bytes,
        catalog,
    )?;
    tmp.persist(target).map_err(|e| {
        local_failure(
            format!("cannot move the download to {}", target.display()),
            &e.error,
        )
    })?;
    Ok(Fetched::Downloaded {
        bytes,
        etag,
        footer_rows,
    })
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

/// Checks a finished download: its MD5 when the manifest gives one, its
/// parquet structure otherwise. Returns the footer's row count when read.
fn verify(
    entry: &TableEntry,
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
    if entry.hash_kind() == HashKind::Md5 {
        return match md5 == entry.hash {
            true => Ok(None),
            false => Err(refuse(format!(
                "hash mismatch: the manifest says {} but the {bytes} bytes received hash to {md5}; kept the previous file",
                entry.hash
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

/// Deletes temporary downloads left by a sync that was killed. Called with
/// the workspace lock held, so none of them belongs to a running sync.
pub fn sweep_temporaries(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
        })
        .filter(|e| fs::remove_file(e.path()).is_ok())
        .count()
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
}
