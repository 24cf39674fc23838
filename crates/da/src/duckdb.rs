//! Finding `duckdb` and the agnes extension, and running one query in a
//! `duckdb` child process with the extension loaded:
//!
//! `duckdb -init /dev/null -unsigned -json <database> -c "LOAD ...; SELECT ..."`
//! (`-init NUL` on Windows)
//!
//! The rows come back as JSON on the child's stdout; DuckDB's error message
//! on its stderr. The token never appears on the command line: the extension
//! reads it from the environment or `token.json`, like any other client.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Map, Value};

use crate::Failure;

/// One result row, column name to value.
pub type Row = Map<String, Value>;

/// The DuckDB CLI's file name, as looked for on `PATH`.
const DUCKDB_PROGRAM: &str = if cfg!(windows) {
    "duckdb.exe"
} else {
    "duckdb"
};

/// An empty start-up file for `duckdb -init`: the user's `~/.duckdbrc` must
/// not change the output mode. `NUL` is Windows' `/dev/null`.
const NO_INIT_FILE: &str = if cfg!(windows) { "NUL" } else { "/dev/null" };

/// The file name DuckDB requires: it gives the entry symbol `agnes_init_c_api`.
const EXTENSION_FILE: &str = "agnes.duckdb_extension";

/// Where the extension comes from.
#[derive(Debug, Clone)]
enum Extension {
    /// `LOAD '<absolute path>'`.
    File(PathBuf),
    /// `LOAD agnes`: installed into DuckDB's extension folder (`make install`).
    Installed,
}

/// A `duckdb` executable and the agnes extension to load into it.
#[derive(Debug)]
pub struct DuckDb {
    executable: PathBuf,
    extension: Extension,
}

/// Why a query did not give rows.
#[derive(Debug)]
pub enum QueryError {
    /// The database file is held by another process (a notebook); DuckDB's
    /// message names it.
    Locked { holder: String },
    /// Anything else, already worded for the user.
    Failed(Failure),
}

impl From<Failure> for QueryError {
    fn from(f: Failure) -> Self {
        QueryError::Failed(f)
    }
}

impl DuckDb {
    /// `--duckdb PATH`, then `$AGNES_DUCKDB`, then `duckdb` on `PATH`; the
    /// extension from `$AGNES_EXTENSION`, then beside `da`, then by name.
    pub fn find(flag: Option<&Path>) -> Result<DuckDb, Failure> {
        Ok(DuckDb {
            executable: find_executable(flag)?,
            extension: find_extension()?,
        })
    }

    /// Runs `query` on `database` (in memory when `None`) after loading the
    /// extension, and returns its rows. With `progress`, the extension's
    /// progress frames on the child's stderr are passed on to ours.
    ///
    /// On a database file the query is followed by a `CHECKPOINT`: with
    /// agnes loaded, the duckdb CLI exits without checkpointing (agnes's own
    /// connection keeps the database open to the end), so the views a sync
    /// made would stay in the write-ahead log and be replayed on every later
    /// open (a 1000-view log: about half a second each time). The checkpoint
    /// is best effort: if it fails, the query's rows still count.
    pub fn query(
        &self,
        database: Option<&Path>,
        query: &str,
        progress: bool,
    ) -> Result<Vec<Row>, QueryError> {
        // `agnes_version()` marks the point where LOAD went through, so a
        // failure after it is the query's, and one before it the extension's.
        let checkpoint = match database {
            Some(_) => "; CHECKPOINT",
            None => "",
        };
        let sql = format!(
            "{}; SELECT extension_version FROM agnes_version(); {query}{checkpoint}",
            self.load_statement()
        );
        let mut command = Command::new(&self.executable);
        command.args(["-init", NO_INIT_FILE, "-unsigned", "-json"]);
        command.arg(match database {
            Some(path) => path.as_os_str().to_owned(),
            None => OsString::from(":memory:"),
        });
        command.arg("-c").arg(&sql);
        // The query that follows makes the views itself: attaching them at
        // LOAD first would be the same work twice on the hook path.
        command.env("AGNES_ATTACH_ON_LOAD", "0");
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| {
            Failure::new(format!(
                "cannot run duckdb at {}: {e}; pass --duckdb PATH or set AGNES_DUCKDB",
                self.executable.display()
            ))
        })?;
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let forwarder = std::thread::spawn(move || {
            let mut filter = ProgressFilter::new(progress);
            let mut buf = [0u8; 8192];
            loop {
                match stderr.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => filter.feed(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            filter.kept
        });
        let mut stdout = Vec::new();
        let read = child
            .stdout
            .take()
            .expect("stdout is piped")
            .read_to_end(&mut stdout);
        let status = child.wait();
        let stderr = forwarder.join().unwrap_or_default();
        let status = status.map_err(|e| Failure::new(format!("waiting for duckdb: {e}")))?;
        read.map_err(|e| Failure::new(format!("reading duckdb's output: {e}")))?;

        let stdout = String::from_utf8_lossy(&stdout);
        let mut documents = serde_json::Deserializer::from_str(&stdout).into_iter::<Value>();
        let loaded = matches!(documents.next(), Some(Ok(_)));
        let rows = documents.next();
        let answered = matches!(rows, Some(Ok(Value::Array(_))));
        // A failed CHECKPOINT after the rows does not undo the sync.
        let succeeded = status.success() || (answered && database.is_some());
        if !succeeded {
            let message = clean(&String::from_utf8_lossy(&stderr));
            if message.contains("Could not set lock on file") {
                return Err(QueryError::Locked {
                    holder: holder(&message),
                });
            }
            return Err(match loaded {
                true => Failure::new(agnes_message(&message)),
                false => self.load_failure(&message),
            }
            .into());
        }
        // Some DuckDB versions print nothing at all for an empty result.
        match rows {
            None => Ok(Vec::new()),
            Some(Ok(Value::Array(rows))) => Ok(rows
                .into_iter()
                .filter_map(|r| match r {
                    Value::Object(row) => Some(row),
                    _ => None,
                })
                .collect()),
            Some(_) => Err(Failure::new(format!(
                "duckdb at {} printed something other than JSON rows; is it the DuckDB CLI?",
                self.executable.display()
            ))
            .into()),
        }
    }

    fn load_statement(&self) -> String {
        match &self.extension {
            Extension::File(path) => format!("LOAD {}", literal(&path.to_string_lossy())),
            Extension::Installed => "LOAD agnes".to_string(),
        }
    }

    /// The extension (or the database) could not be opened: say how to fix it.
    fn load_failure(&self, message: &str) -> Failure {
        let hint = match &self.extension {
            Extension::File(path) => format!(
                "cannot load the agnes extension {} into {}",
                path.display(),
                self.executable.display()
            ),
            Extension::Installed => format!(
                "the agnes extension is not installed in {}: set AGNES_EXTENSION to agnes.duckdb_extension, \
                 put that file beside da, or run `make install`",
                self.executable.display()
            ),
        };
        // DuckDB's further lines (candidate extensions, "start the shell
        // with -unsigned") do not apply here.
        let first = message.lines().next().unwrap_or_default();
        Failure::new(format!("{hint} ({first})"))
    }
}

fn find_executable(flag: Option<&Path>) -> Result<PathBuf, Failure> {
    if let Some(path) = flag {
        return existing(path, "--duckdb");
    }
    if let Some(path) = std::env::var_os("AGNES_DUCKDB").filter(|p| !p.is_empty()) {
        return existing(Path::new(&path), "AGNES_DUCKDB");
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(DUCKDB_PROGRAM))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| {
            Failure::new(
                "duckdb not found on PATH: install the DuckDB CLI (`make configure` puts one in \
                 configure/venv/bin), then pass --duckdb PATH or set AGNES_DUCKDB",
            )
        })
}

fn existing(path: &Path, from: &str) -> Result<PathBuf, Failure> {
    match is_executable(path) {
        true => Ok(path.to_path_buf()),
        false => Err(Failure::new(format!(
            "{from} names {}, which is not an executable file",
            path.display()
        ))),
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Windows has no execute bit: any file will do, and `CreateProcess` says
/// if it is not a program.
#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

fn find_extension() -> Result<Extension, Failure> {
    if let Some(path) = std::env::var_os("AGNES_EXTENSION").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        // LOAD wants an absolute (or ./) path.
        let path = std::path::absolute(&path).unwrap_or(path);
        return match path.is_file() {
            true => Ok(Extension::File(path)),
            false => Err(Failure::new(format!(
                "AGNES_EXTENSION names {}, which is not a file; build it with `make debug` \
                 (build/debug/agnes.duckdb_extension)",
                path.display()
            ))),
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join(EXTENSION_FILE)))
        .filter(|p| p.is_file());
    Ok(beside.map_or(Extension::Installed, Extension::File))
}

/// `text` as a SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// DuckDB's message without colour codes and trailing blank lines.
fn clean(stderr: &str) -> String {
    let mut out = String::with_capacity(stderr.len());
    let mut chars = stderr.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters final-byte
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out.trim().to_string()
}

/// agnes's own message, without DuckDB's "Binder Error: " in front: the
/// extension reports a failed call from its bind.
/// DuckDB's pointer into the SQL (`LINE 1: ...`) is about da's query, not
/// the user's, so it goes too.
fn agnes_message(message: &str) -> String {
    let message = message
        .split_once("\nLINE ")
        .map_or(message, |(before, _)| before)
        .trim();
    message
        .strip_prefix("Binder Error: ")
        .or_else(|| message.strip_prefix("Invalid Input Error: "))
        .unwrap_or(message)
        .to_string()
}

/// "another process (PID 1234)" from DuckDB's lock message.
fn holder(message: &str) -> String {
    let pid = message
        .split_once("(PID ")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(pid, _)| pid.trim());
    match pid {
        Some(pid) => format!("another process (PID {pid})"),
        None => "another process".to_string(),
    }
}

/// Splits the child's stderr into the extension's progress frames, passed
/// on to our stderr when showing progress, and everything else, kept for
/// the error message. A frame is `\r<text>\x1b[K` (src/progress.rs).
struct ProgressFilter {
    forward: bool,
    in_frame: bool,
    /// How much of `\x1b[K` the frame's last bytes matched.
    matched: usize,
    kept: Vec<u8>,
}

impl ProgressFilter {
    fn new(forward: bool) -> Self {
        ProgressFilter {
            forward,
            in_frame: false,
            matched: 0,
            kept: Vec::new(),
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        const END: &[u8] = b"\x1b[K";
        let mut frames = Vec::new();
        for &b in bytes {
            if !self.in_frame && b == b'\r' {
                self.in_frame = true;
                self.matched = 0;
            }
            if !self.in_frame {
                self.kept.push(b);
                continue;
            }
            frames.push(b);
            self.matched = match b == END[self.matched] {
                true => self.matched + 1,
                false => usize::from(b == END[0]),
            };
            if self.matched == END.len() {
                self.in_frame = false;
            }
        }
        if self.forward && !frames.is_empty() {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(&frames);
            let _ = err.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_frames_are_told_from_messages() {
        let mut f = ProgressFilter::new(false);
        f.feed(b"\ragnes: 0 done | orders 1 B\x1b[K\ragnes: 1 d");
        f.feed(b"one\x1b");
        f.feed(b"[K\r\x1b[KBinder Error: no\x1b[1m luck\n");
        assert_eq!(f.kept, b"Binder Error: no\x1b[1m luck\n");
    }

    #[test]
    fn messages() {
        assert_eq!(clean("\x1b[90m-- x\n\x1b[00m\n"), "-- x");
        assert_eq!(agnes_message("Binder Error: no token"), "no token");
        assert_eq!(
            agnes_message("Binder Error: refused\n\nLINE 1: ...x')\n   ^"),
            "refused"
        );
        assert_eq!(
            holder("IO Error: Could not set lock on file \"/a\": Conflicting lock is held in /usr/bin/python3 (PID 28784). See also"),
            "another process (PID 28784)"
        );
        assert_eq!(literal("/it's"), "'/it''s'");
        // Windows paths: DuckDB's plain string literals give backslashes no meaning.
        assert_eq!(
            literal(r"C:\Users\o'neil\analysis"),
            r"'C:\Users\o''neil\analysis'"
        );
    }
}
