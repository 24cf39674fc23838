//! The data folder: which parquet files are tables, and the facts the
//! manifest needs about each (MD5, row count), cached until a file changes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use md5::{Digest, Md5};

use crate::isotime::epoch_nanos;
use crate::parquet_footer;

/// Whether `id` is a table id the server accepts:
/// `^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$` and not made of dots only.
pub fn is_valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    let Some((&first, rest)) = bytes.split_first() else {
        return false;
    };
    let plain = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    plain(first)
        && rest.len() <= 127
        && rest.iter().all(|&b| plain(b) || b == b'.' || b == b'-')
        && !id.bytes().all(|b| b == b'.')
}

/// A parquet file of the data folder, as found by a scan or an open.
#[derive(Debug, Clone)]
pub struct TableFile {
    pub id: String,
    pub path: PathBuf,
    pub size: u64,
    pub modified: SystemTime,
    /// Part of the cache key: a file replaced by rename is another file
    /// even when mtime and size happen to match.
    pub inode: u64,
    /// A partitioned table (a folder, 0.84): its parts by relative path.
    pub parts: Option<Vec<PartFile>>,
}

/// One part of a partitioned table.
#[derive(Debug, Clone)]
pub struct PartFile {
    /// Relative to the table's folder, `/`-separated.
    pub path: String,
    pub file: TableFile,
}

/// The folders that are never tables: where uploads go by default.
const NOT_TABLES: &[&str] = &["_uploads"];

/// The folder of partitioned table `id` in `dir`, if there is one: a
/// folder itself (a link to one is no table, as in `scan`), of a valid id,
/// and not one of the server's own (the uploads, whose files a download
/// must never serve).
pub fn table_folder(dir: &Path, id: &str) -> Option<PathBuf> {
    if !is_valid_id(id) || NOT_TABLES.contains(&id) {
        return None;
    }
    let folder = dir.join(id);
    let meta = std::fs::symlink_metadata(&folder).ok()?;
    meta.is_dir().then_some(folder)
}

/// Every `*.parquet` under `dir` (not hidden, regular files), sorted by
/// relative path: the parts of a partitioned table.
pub fn scan_parts(dir: &Path, id: &str) -> io::Result<Vec<PartFile>> {
    let mut out = Vec::new();
    let mut todo = vec![(dir.to_path_buf(), String::new())];
    while let Some((folder, prefix)) = todo.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(String::from) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let rel = format!("{prefix}{name}");
            let Ok(meta) = std::fs::metadata(entry.path()) else {
                continue;
            };
            if meta.is_dir() {
                todo.push((entry.path(), format!("{rel}/")));
            } else if meta.is_file() && name.ends_with(".parquet") {
                out.push(PartFile {
                    path: rel,
                    file: TableFile {
                        id: id.to_string(),
                        path: entry.path(),
                        size: meta.len(),
                        modified: meta.modified()?,
                        inode: file_identity(&meta),
                        parts: None,
                    },
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The partitioned table in folder `path`, if it holds any part.
fn partitioned(id: &str, path: PathBuf) -> io::Result<Option<TableFile>> {
    let parts = scan_parts(&path, id)?;
    if parts.is_empty() {
        return Ok(None);
    }
    let modified = parts
        .iter()
        .map(|p| p.file.modified)
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    Ok(Some(TableFile {
        id: id.to_string(),
        size: parts.iter().map(|p| p.file.size).sum(),
        modified,
        inode: 0,
        path,
        parts: Some(parts),
    }))
}

impl TableFile {
    pub fn mtime_ns(&self) -> u128 {
        epoch_nanos(self.modified)
    }
}

/// Every regular `*.parquet` at the top of `dir`, by id. Ids outside the
/// contract's pattern are listed too (tests use them to check that clients
/// refuse them); they just cannot be downloaded. With `folders` (a 0.84
/// server), every folder holding `*.parquet` files is a partitioned table
/// named after the folder.
pub fn scan(dir: &Path, folders: bool) -> io::Result<Vec<TableFile>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if folders && entry.file_type().is_ok_and(|t| t.is_dir()) {
            if let Some(id) = name
                .to_str()
                .filter(|n| is_valid_id(n) && !NOT_TABLES.contains(n))
            {
                if let Some(table) = partitioned(id, entry.path())? {
                    out.push(table);
                }
            }
            continue;
        }
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".parquet")) else {
            continue;
        };
        if id.is_empty() {
            continue;
        }
        if let Some(table) = single(id, entry.path())? {
            out.push(table);
        }
    }
    // A folder and a file of one id: the file wins, as on a 0.29 server.
    out.sort_by(|a, b| (&a.id, a.parts.is_some()).cmp(&(&b.id, b.parts.is_some())));
    out.dedup_by(|later, earlier| later.id == earlier.id);
    Ok(out)
}

/// The table `id` as `scan` would list it, without listing the others:
/// `<id>.parquet`, else (with `folders`) the partitioned table in folder
/// `<id>`. `id` must be a valid id (it becomes a path).
pub fn find(dir: &Path, id: &str, folders: bool) -> io::Result<Option<TableFile>> {
    if let Some(table) = single(id, dir.join(format!("{id}.parquet")))? {
        return Ok(Some(table));
    }
    match table_folder(dir, id).filter(|_| folders) {
        Some(folder) => partitioned(id, folder),
        None => Ok(None),
    }
}

/// The single-file table at `path`, if a regular file is there. Follows
/// symlinks; a file that vanished since it was listed is no table.
fn single(id: &str, path: PathBuf) -> io::Result<Option<TableFile>> {
    let Ok(meta) = std::fs::metadata(&path) else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Ok(None);
    }
    Ok(Some(TableFile {
        id: id.to_string(),
        path,
        size: meta.len(),
        modified: meta.modified()?,
        inode: file_identity(&meta),
        parts: None,
    }))
}

/// Which file this is, beyond its name: the inode on Unix. Elsewhere the
/// creation time stands in for it (a file renamed over another keeps its
/// own); std has no stable file index on Windows.
#[cfg(unix)]
fn file_identity(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino()
}

#[cfg(not(unix))]
fn file_identity(meta: &std::fs::Metadata) -> u64 {
    meta.created().map_or(0, |t| epoch_nanos(t) as u64)
}

/// The top-level hash of a partitioned table: the MD5 of its sorted
/// `path:hash` lines, a change token for the whole set.
pub fn rollup(parts: &[(String, String)]) -> String {
    let mut lines: Vec<String> = parts.iter().map(|(p, h)| format!("{p}:{h}")).collect();
    lines.sort();
    hex(&Md5::digest(lines.join("\n").as_bytes()))
}

/// The 12-hex version token of the real server's pipeline tables: derived
/// from modification time and size, not from the content.
pub fn version_token(file: &TableFile) -> String {
    let digest = Md5::digest(format!("{}:{}", file.mtime_ns(), file.size).as_bytes());
    hex(&digest)[..12].to_string()
}

/// MD5 of the whole file, lowercase hex, read in 1 MiB pieces.
pub fn md5_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Which version of a file a cached fact belongs to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Version {
    mtime_ns: u128,
    size: u64,
    inode: u64,
}

#[derive(Default, Clone)]
struct Facts {
    md5: Option<String>,
    rows: Option<Option<u64>>,
}

/// MD5s and row counts per file path, valid while mtime, size and inode match.
#[derive(Default)]
pub struct FactCache {
    facts: Mutex<HashMap<PathBuf, (Version, Facts)>>,
}

impl FactCache {
    fn cached(&self, file: &TableFile) -> Facts {
        let version = Version {
            mtime_ns: file.mtime_ns(),
            size: file.size,
            inode: file.inode,
        };
        let map = self.facts.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&file.path) {
            Some((v, facts)) if *v == version => facts.clone(),
            _ => Facts::default(),
        }
    }

    fn store(&self, file: &TableFile, update: impl FnOnce(&mut Facts)) {
        let version = Version {
            mtime_ns: file.mtime_ns(),
            size: file.size,
            inode: file.inode,
        };
        let mut map = self.facts.lock().unwrap_or_else(|p| p.into_inner());
        let slot = map.entry(file.path.clone()).or_default();
        if slot.0 != version {
            *slot = (version, Facts::default());
        }
        update(&mut slot.1);
    }

    /// MD5 of the file, computed once per version of it. Blocking: call it
    /// from a blocking thread.
    pub fn md5(&self, file: &TableFile) -> io::Result<String> {
        if let Some(md5) = self.cached(file).md5 {
            return Ok(md5);
        }
        let md5 = md5_file(&file.path)?;
        self.store(file, |f| f.md5 = Some(md5.clone()));
        Ok(md5)
    }

    /// Rows from the parquet footer; 0 for a file that is not parquet.
    pub fn rows(&self, file: &TableFile) -> u64 {
        if let Some(rows) = self.cached(file).rows {
            return rows.unwrap_or(0);
        }
        let rows = parquet_footer::row_count(&file.path);
        self.store(file, |f| f.rows = Some(rows));
        rows.unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_pattern() {
        for ok in ["orders", "in.c-crm.people", "_x", "A9", "a..b", "x-"] {
            assert!(is_valid_id(ok), "{ok}");
        }
        let long = "a".repeat(129);
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "-x",
            "a/b",
            "a b",
            "a\\b",
            "é",
            long.as_str(),
        ] {
            assert!(!is_valid_id(bad), "{bad}");
        }
        assert!(is_valid_id(&"a".repeat(128)));
    }

    #[test]
    fn folders_are_partitioned_tables_only_when_asked_and_a_file_wins() {
        let dir = std::env::temp_dir().join(format!("agnes-folders-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("events/y=1")).unwrap();
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        std::fs::create_dir_all(dir.join("_uploads")).unwrap();
        std::fs::create_dir_all(dir.join("orders")).unwrap();
        std::fs::write(dir.join("events/y=1/b.parquet"), b"b").unwrap();
        std::fs::write(dir.join("events/a.parquet"), b"a").unwrap();
        std::fs::write(dir.join("events/.hidden.parquet"), b"h").unwrap();
        std::fs::write(dir.join("_uploads/x.parquet"), b"u").unwrap();
        std::fs::write(dir.join("orders/p.parquet"), b"p").unwrap();
        std::fs::write(dir.join("orders.parquet"), b"o").unwrap();
        let ids = |folders| -> Vec<(String, Option<Vec<String>>)> {
            scan(&dir, folders)
                .unwrap()
                .into_iter()
                .map(|t| {
                    (
                        t.id,
                        t.parts.map(|p| p.into_iter().map(|p| p.path).collect()),
                    )
                })
                .collect()
        };
        assert_eq!(ids(false), [("orders".to_string(), None)]);
        assert_eq!(
            ids(true),
            [
                (
                    "events".to_string(),
                    Some(vec!["a.parquet".to_string(), "y=1/b.parquet".to_string()])
                ),
                ("orders".to_string(), None),
            ]
        );
        // One table found as the scan lists it.
        let found = |id, folders| {
            find(&dir, id, folders)
                .unwrap()
                .map(|t| (t.path, t.parts.map(|p| p.len())))
        };
        assert_eq!(found("events", true), Some((dir.join("events"), Some(2))));
        assert_eq!(found("events", false), None);
        assert_eq!(
            found("orders", true),
            Some((dir.join("orders.parquet"), None))
        );
        for absent in ["empty", "_uploads", "nothing"] {
            assert_eq!(found(absent, true), None, "{absent}");
        }
        let a = rollup(&[("a".into(), "1".into()), ("b".into(), "2".into())]);
        assert_eq!(
            a,
            rollup(&[("b".into(), "2".into()), ("a".into(), "1".into())])
        );
        assert_eq!(a, hex(&Md5::digest(b"a:1\nb:2")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn scans_md5s_and_notices_rewrites() {
        let dir = std::env::temp_dir().join(format!("agnes-tables-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub.parquet")).unwrap();
        std::fs::write(dir.join("in.c-crm.people.parquet"), b"hello").unwrap();
        std::fs::write(dir.join("notes.txt"), b"x").unwrap();
        std::fs::write(dir.join(".parquet"), b"x").unwrap();
        let files = scan(&dir, false).unwrap();
        let ids: Vec<_> = files.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["in.c-crm.people"]);
        let cache = FactCache::default();
        assert_eq!(
            cache.md5(&files[0]).unwrap(),
            "5d41402abc4b2a76b9719d911017c592"
        );
        assert_eq!(cache.rows(&files[0]), 0);
        let token = version_token(&files[0]);
        assert_eq!(token.len(), 12);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));

        std::fs::write(dir.join("in.c-crm.people.parquet"), b"hello!").unwrap();
        let files = scan(&dir, false).unwrap();
        assert_eq!(cache.md5(&files[0]).unwrap(), hex(&Md5::digest(b"hello!")));
        assert_ne!(version_token(&files[0]), token);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
