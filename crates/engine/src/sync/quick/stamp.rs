//! The stamp a full sync leaves for the quick no-op, kept as text read in
//! one pass (issue 25): 10,000 tables as JSON, together with the state file
//! it had to be checked against, cost the hook more than its manifest.
//!
//! ```text
//! agnes views stamp 2
//! {"database": ..., "database_file": [size, ns], "wal_file": null, "state_file": [size, ns]}
//! <id> TAB <kinds> TAB <hash> TAB <size> TAB <time>      one line per table, sorted by id
//! ```
//!
//! `kinds` holds `f` for a table synced as one file, `p` for a partitioned
//! one (its size and time folded over its parts), `o` when it was taken
//! outside the subscriptions, `r` for a remote or server-only table the
//! full sync left without a view and `s` for one it gave a view over
//! `agnes_scan()`. `hash` is the state's; size and time are those of the
//! local copy (`-` when absent, or for a table without one). The state
//! file's own stamp is in the header: while it is unchanged, the lines say
//! what the state says, and the state need not be read.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::protocol::ids::check_table_id;
use crate::workspace::layout::Workspace;
use crate::workspace::state::local_copy;
use crate::workspace::state::{read_json, SyncState};

const MAGIC: &str = "agnes views stamp 2";

/// A file's size and modification time (ns since the epoch, to 2554), or
/// `None` when it is absent.
/// For a folder of parts: their total size, and a digest of every part's
/// path, size and time.
pub type FileStamp = Option<(u64, u64)>;

/// What is stamped once, not per table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub database: PathBuf,
    pub database_file: FileStamp,
    pub wal_file: FileStamp,
    pub state_file: FileStamp,
}

impl Header {
    /// The header of `database` and `state_file` as they are now.
    pub fn now(database: &Path, state_file: &Path) -> Header {
        let mut wal = database.as_os_str().to_owned();
        wal.push(".wal");
        Header {
            database: database.to_path_buf(),
            database_file: file_stamp(database),
            wal_file: file_stamp(Path::new(&wal)),
            state_file: file_stamp(state_file),
        }
    }
}

/// The local copy a synced table has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Not synced here (a remote table).
    None,
    File,
    Parts,
}

/// What the full sync did with a remote or server-only table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remote {
    /// Not one.
    No,
    /// Left without a view.
    Skipped,
    /// Given a view over `agnes_scan()`.
    ScanView,
}

/// One table of the stamp, borrowed from the file's text.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'a> {
    pub id: &'a str,
    pub held: Held,
    pub outside_subscriptions: bool,
    pub remote: Remote,
    /// The hash the state records for the local copy.
    pub hash: &'a str,
    pub stamp: FileStamp,
}

/// A stamp as read: the header, and the tables sorted by id.
#[cfg(test)]
#[derive(Debug)]
pub struct Stamp<'a> {
    pub header: Header,
    pub lines: Vec<Line<'a>>,
}

/// Reads a stamp's text; `None` when it is not one of this version, or is
/// damaged in any way (the full path then runs, and writes a new one).
#[cfg(test)]
pub fn parse(text: &str) -> Option<Stamp<'_>> {
    let (header, rest) = parse_header(text)?;
    let lines = parse_lines(rest)?;
    Some(Stamp { header, lines })
}

/// The header of a stamp's text, and the text of its lines.
pub fn parse_header(text: &str) -> Option<(Header, &str)> {
    let rest = text.strip_prefix(MAGIC)?.strip_prefix('\n')?;
    let (header, rest) = rest.split_once('\n')?;
    Some((serde_json::from_str(header).ok()?, rest))
}

/// The lines of a stamp, after its header.
pub fn parse_lines(rest: &str) -> Option<Vec<Line<'_>>> {
    let mut lines = Vec::with_capacity(rest.len() / 64);
    for line in rest.split_terminator('\n') {
        let mut fields = line.split('\t');
        let (id, kinds, hash, size, time) = (
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
        );
        if fields.next().is_some() {
            return None;
        }
        let has = |c: char| kinds.contains(c);
        let stamp = match (size, time) {
            ("-", "-") => None,
            _ => Some((size.parse().ok()?, time.parse().ok()?)),
        };
        lines.push(Line {
            id,
            held: match (has('f'), has('p')) {
                (false, false) => Held::None,
                (true, false) => Held::File,
                (false, true) => Held::Parts,
                (true, true) => return None,
            },
            outside_subscriptions: has('o'),
            remote: match (has('r'), has('s')) {
                (false, false) => Remote::No,
                (true, false) => Remote::Skipped,
                (false, true) => Remote::ScanView,
                (true, true) => return None,
            },
            hash,
            stamp,
        });
    }
    // Written sorted and unique; anything else was not written by agnes.
    if !lines.windows(2).all(|w| w[0].id < w[1].id) {
        return None;
    }
    Some(lines)
}

/// The stamp of everything as it is now, as text; `None` when the state
/// cannot be stamped (changed while it was read, an id or a hash that the
/// format cannot hold): the next sync then takes the full path.
/// `remote` are the remote and server-only tables the full sync reported,
/// `scan_views` those it made a view for.
pub fn render(
    workspace: &Workspace,
    database: &Path,
    state_file: &Path,
    remote: &BTreeSet<String>,
    scan_views: &BTreeSet<String>,
) -> Option<String> {
    let header = Header::now(database, state_file);
    let state = read_json::<SyncState>(state_file).ok()??;
    // A sync from elsewhere (a notebook) that wrote the state meanwhile:
    // what was read may not be what the header stamps.
    if file_stamp(state_file) != header.state_file {
        return None;
    }
    let plain = |s: &str| !s.contains(['\t', '\n', '\r']);
    let ids: BTreeSet<&str> = state
        .tables
        .keys()
        .map(String::as_str)
        .chain(remote.iter().map(String::as_str))
        .collect();
    let mut out = String::with_capacity(128 + ids.len() * 80);
    out.push_str(MAGIC);
    out.push('\n');
    out.push_str(&serde_json::to_string(&header).ok()?);
    out.push('\n');
    for id in ids {
        check_table_id(id).ok()?;
        let mut kinds = String::new();
        let (hash, stamp) = match state.tables.get(id) {
            Some(local) => {
                kinds.push(if local.parts.is_some() { 'p' } else { 'f' });
                if local.outside_subscriptions {
                    kinds.push('o');
                }
                let copy = local_copy(workspace, id, local);
                (local.hash.as_str(), copy_stamp(&copy))
            }
            None => ("", None),
        };
        if remote.contains(id) {
            kinds.push(if scan_views.contains(id) { 's' } else { 'r' });
        }
        if !plain(hash) {
            return None;
        }
        let _ = match stamp {
            Some((size, time)) => writeln!(out, "{id}\t{kinds}\t{hash}\t{size}\t{time}"),
            None => writeln!(out, "{id}\t{kinds}\t{hash}\t-\t-"),
        };
    }
    Some(out)
}

/// Whether every local copy is as stamped: one stat per file (a folder of
/// parts is listed), in the workspace's `parquet_dir`.
pub fn copies_intact(parquet_dir: &Path, lines: &[Line]) -> bool {
    let in_dir = InDir::open(parquet_dir);
    let mut path = parquet_dir.to_path_buf();
    let mut name = String::new();
    lines.iter().all(|line| {
        name.clear();
        name.push_str(line.id);
        let now = match line.held {
            Held::None => return true,
            Held::File => {
                name.push_str(".parquet");
                if let Some(stamp) = in_dir.file_stamp(&name) {
                    return stamp == line.stamp;
                }
                path.push(&name);
                file_stamp(&path)
            }
            Held::Parts => {
                path.push(&name);
                copy_stamp(&path)
            }
        };
        path.pop();
        now == line.stamp
    })
}

/// Stats files by name in one open folder: the kernel walks one name, not
/// the whole path (50,000 stats: 90 instead of 125 ms here).
#[cfg(target_os = "linux")]
struct InDir(Option<fs::File>);

#[cfg(target_os = "linux")]
impl InDir {
    fn open(dir: &Path) -> InDir {
        InDir(fs::File::open(dir).ok())
    }

    /// `Some` when asked (as `file_stamp` of the path would answer), `None`
    /// when this way cannot ask.
    fn file_stamp(&self, name: &str) -> Option<FileStamp> {
        use rustix::fs::{statat, AtFlags};
        let dir = self.0.as_ref()?;
        let Ok(meta) = statat(dir, name, AtFlags::empty()) else {
            return Some(None);
        };
        // As `file_stamp`: no time before the epoch or past u64 nanoseconds.
        let time = u64::try_from(meta.st_mtime)
            .ok()
            .and_then(|s| s.checked_mul(1_000_000_000))
            .and_then(|ns| ns.checked_add(u64::from(meta.st_mtime_nsec as u32)));
        Some(time.map(|t| (meta.st_size as u64, t)))
    }
}

#[cfg(not(target_os = "linux"))]
struct InDir;

#[cfg(not(target_os = "linux"))]
impl InDir {
    fn open(_: &Path) -> InDir {
        InDir
    }

    fn file_stamp(&self, _: &str) -> Option<FileStamp> {
        None
    }
}

/// A file's stamp; for a partitioned table's folder, every part's folded
/// into one: the total size, and a digest of each part's path, size and
/// time (a part touched back to an older time changes it too).
fn copy_stamp(path: &Path) -> FileStamp {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return stamp_of(&meta);
    }
    let (mut size, mut digest) = (0u64, 0u64);
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).ok()?.flatten() {
            let p = entry.path();
            match entry.file_type().ok()?.is_dir() {
                true => stack.push(p),
                false => {
                    let (bytes, time) = file_stamp(&p)?;
                    size += bytes;
                    // Order-free: a sum of one mixed value per part.
                    let rel = p.strip_prefix(path).unwrap_or(&p);
                    digest = digest.wrapping_add(mix(rel, bytes, time));
                }
            }
        }
    }
    Some((size, digest))
}

/// A 64-bit FNV-1a of a part's path, size and time.
fn mix(path: &Path, size: u64, time: u64) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = path.as_os_str().as_encoded_bytes().iter().copied();
    let numbers = size.to_le_bytes().into_iter().chain(time.to_le_bytes());
    for b in bytes.chain([0]).chain(numbers) {
        h = (h ^ u64::from(b)).wrapping_mul(PRIME);
    }
    h
}

pub fn file_stamp(path: &Path) -> FileStamp {
    stamp_of(&fs::metadata(path).ok()?)
}

fn stamp_of(meta: &fs::Metadata) -> FileStamp {
    let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some((meta.len(), u64::try_from(modified.as_nanos()).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_and_anything_odd_is_refused() {
        let text = "agnes views stamp 2\n\
            {\"database\":\"/w/a.duckdb\",\"database_file\":[10,20],\"wal_file\":null,\"state_file\":[3,4]}\n\
            a\tf\th1\t5\t6\n\
            b\tpo\th2\t-\t-\n\
            c\ts\t\t-\t-\n\
            d\tfr\th3\t7\t8\n";
        let stamp = parse(text).unwrap();
        assert_eq!(stamp.header.database_file, Some((10, 20)));
        assert_eq!(stamp.header.wal_file, None);
        let got: Vec<_> = stamp
            .lines
            .iter()
            .map(|l| {
                (
                    l.id,
                    l.held,
                    l.outside_subscriptions,
                    l.remote,
                    l.hash,
                    l.stamp,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a", Held::File, false, Remote::No, "h1", Some((5, 6))),
                ("b", Held::Parts, true, Remote::No, "h2", None),
                ("c", Held::None, false, Remote::ScanView, "", None),
                ("d", Held::File, false, Remote::Skipped, "h3", Some((7, 8))),
            ]
        );
        for bad in [
            text.replace("stamp 2", "stamp 1"),
            text.replace("a\tf", "e\tf"),        // not sorted
            text.replace("b\tpo", "a\tpo"),      // not unique
            text.replace("\t5\t6", "\t5\tsix"),  // not a number
            text.replace("\th1", "\th1\textra"), // a field too many
            text.replace("\tfr\t", "\tfp\t"),    // two kinds of copy
            text.replace("{\"database\"", "[\"database\""),
        ] {
            assert!(parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_file_touched_truncated_or_gone_is_not_intact() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.parquet");
        fs::write(&file, b"PAR1....PAR1").unwrap();
        let line = |stamp| Line {
            id: "a",
            held: Held::File,
            outside_subscriptions: false,
            remote: Remote::No,
            hash: "h",
            stamp,
        };
        let stamped = file_stamp(&file);
        assert!(stamped.is_some());
        assert!(copies_intact(dir.path(), &[line(stamped)]));
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1);
        let f = fs::File::options().write(true).open(&file).unwrap();
        f.set_modified(old).unwrap();
        assert!(!copies_intact(dir.path(), &[line(stamped)]));
        assert!(copies_intact(dir.path(), &[line(file_stamp(&file))]));
        f.set_len(4).unwrap();
        assert!(!copies_intact(dir.path(), &[line(stamped)]));
        fs::remove_file(&file).unwrap();
        assert!(!copies_intact(dir.path(), &[line(stamped)]));
        assert!(copies_intact(dir.path(), &[line(None)]));
    }

    #[test]
    fn a_part_touched_back_in_time_changes_the_folder_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("t");
        fs::create_dir_all(folder.join("m=1")).unwrap();
        fs::write(folder.join("m=1/a.parquet"), b"PAR1..PAR1").unwrap();
        fs::write(folder.join("b.parquet"), b"PAR1....PAR1").unwrap();
        let before = copy_stamp(&folder).unwrap();
        assert_eq!(before.0, 22);
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1);
        fs::File::options()
            .write(true)
            .open(folder.join("m=1/a.parquet"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_ne!(copy_stamp(&folder), Some(before));
    }
}
