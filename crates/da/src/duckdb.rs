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

use crate::outcome::Failure;
use crate::signals;

/// One result row, column name to value.
pub type Row = Map<String, Value>;

pub fn text(row: &Row, column: &str) -> Option<String> {
    match row.get(column)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

pub fn int(row: &Row, column: &str) -> Option<u64> {
    row.get(column)?.as_u64()
}

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
    /// Variables set for the child: where the call goes.
    env: Vec<(&'static str, OsString)>,
}

/// Why a query did not give rows.
#[derive(Debug)]
pub enum QueryError {
    /// The database file is held by another process (a notebook); DuckDB's
    /// message names it.
    Locked { holder: String },
    /// The database file was written by a newer DuckDB than this `duckdb`
    /// can read; `detail` is DuckDB's first line, with the storage versions.
    NewerDatabase { detail: String },
    /// Anything else, already worded for the user.
    Failed(Failure),
}

/// The rows of the query `probe` ran after `agnes_version()`, or its error.
pub type Probed = Result<Vec<Row>, String>;

/// What one `duckdb` run gave back.
struct Ran {
    /// The JSON documents on stdout, one per statement that printed rows.
    documents: Vec<Value>,
    /// Stdout went on with something that is not JSON.
    unparsed: bool,
    /// What was left on stderr after the progress frames, cleaned.
    message: String,
    status: std::process::ExitStatus,
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
            env: Vec::new(),
        })
    }

    /// Points the extension at the server and workspace `da` resolved, as
    /// their configuration (`AGNES_SERVER`, `AGNES_LOCAL_DIR`) rather than
    /// as `server :=` and `workspace :=`: the extension sends a stored token
    /// only to the configured server, and writes only into the configured
    /// workspace or one agnes has used. `da`'s flags are the user's own
    /// choice, so they configure.
    pub fn for_target(mut self, settings: &agnes_engine::Settings) -> DuckDb {
        self.env = vec![
            ("AGNES_SERVER", settings.server.clone().into()),
            (
                "AGNES_LOCAL_DIR",
                settings.workspace.clone().into_os_string(),
            ),
        ];
        self
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
        // One DuckDB thread: this session only runs agnes's functions, whose
        // work is on agnes's own threads. With DuckDB's worker threads the
        // CLI's main thread polls the running call in a busy loop (57% of a
        // 10,000-table cold sync's CPU samples), a core taken from the
        // downloads and the views (PERFORMANCE.md, issue 25).
        let sql = format!(
            "SET threads = 1; {}; SELECT extension_version FROM agnes_version(); {query}{checkpoint}",
            self.load_statement()
        );
        let ran = self.run(database, &sql, progress)?;
        let mut documents = ran.documents.into_iter();
        let loaded = documents.next().is_some();
        let rows = documents.next();
        let answered = matches!(rows, Some(Value::Array(_)));
        // A failed CHECKPOINT after the rows does not undo the sync.
        let succeeded = ran.status.success() || (answered && database.is_some());
        if !succeeded {
            let message = ran.message;
            if let Some(signal) = died_of(ran.status) {
                return Err(self.killed(signal, &message).into());
            }
            if message.contains("Could not set lock on file") {
                return Err(QueryError::Locked {
                    holder: holder(&message),
                });
            }
            if is_newer_database(&message) {
                return Err(QueryError::NewerDatabase {
                    detail: storage_versions(&message),
                });
            }
            if let Some(read_only) = read_only(&message, database) {
                return Err(read_only.into());
            }
            return Err(match loaded {
                true => Failure::new(agnes_message(&message)),
                false => self.load_failure(&message),
            }
            .into());
        }
        // Some DuckDB versions print nothing at all for an empty result.
        match rows {
            None if !ran.unparsed => Ok(Vec::new()),
            Some(Value::Array(rows)) => Ok(rows
                .into_iter()
                .filter_map(|r| match r {
                    Value::Object(row) => Some(row),
                    _ => None,
                })
                .collect()),
            _ => Err(Failure::new(format!(
                "duckdb at {} printed something other than JSON rows; is it the DuckDB CLI?",
                self.executable.display()
            ))
            .into()),
        }
    }

    /// Runs `sql` in a `duckdb` child on `database` (in memory when
    /// `None`). The child dies with `da` (signals.rs).
    fn run(&self, database: Option<&Path>, sql: &str, progress: bool) -> Result<Ran, Failure> {
        let mut command = Command::new(&self.executable);
        command.args(["-init", NO_INIT_FILE, "-unsigned", "-json"]);
        command.arg(match database {
            Some(path) => path.as_os_str().to_owned(),
            None => OsString::from(":memory:"),
        });
        command.arg("-c").arg(sql);
        // The query that follows makes the views itself: attaching them at
        // LOAD first would be the same work twice on the hook path.
        command.env("AGNES_ATTACH_ON_LOAD", "0");
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        signals::own_group(&mut command);
        signals::die_with_parent(&mut command);
        let mut child = command.spawn().map_err(|e| {
            Failure::new(format!(
                "cannot run duckdb at {}: {e}; pass --duckdb PATH or set AGNES_DUCKDB",
                self.executable.display()
            ))
        })?;
        let tracked = signals::Tracked::new(child.id());
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
        // Reaped: its pid (and group id) may now be anyone's.
        drop(tracked);
        let stderr = forwarder.join().unwrap_or_default();
        let status = status.map_err(|e| Failure::new(format!("waiting for duckdb: {e}")))?;
        read.map_err(|e| Failure::new(format!("reading duckdb's output: {e}")))?;
        let stdout = String::from_utf8_lossy(&stdout);
        let mut documents = Vec::new();
        let mut unparsed = false;
        for document in serde_json::Deserializer::from_str(&stdout).into_iter::<Value>() {
            match document {
                Ok(value) => documents.push(value),
                Err(_) => {
                    unparsed = true;
                    break;
                }
            }
        }
        Ok(Ran {
            documents,
            unparsed,
            message: clean(&String::from_utf8_lossy(&stderr)),
            status,
        })
    }

    /// `duckdb` died of a signal: a crash, or killed from outside.
    fn killed(&self, signal: i32, message: &str) -> Failure {
        let how = match signals::is_crash(signal) {
            true => "crashed with",
            false => "was killed by",
        };
        let mut text = format!(
            "duckdb at {} {how} {}",
            self.executable.display(),
            signals::describe(signal)
        );
        if let Some(first) = message.lines().find(|l| !l.trim().is_empty()) {
            text += &format!(" (it said: {})", first.trim());
        }
        Failure::new(text)
    }

    /// The executable's own version line, e.g. `v1.5.6 (Variegata) 069cc9f9b5`.
    pub fn cli_version(&self) -> Result<String, String> {
        let mut command = Command::new(&self.executable);
        command
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null());
        signals::die_with_parent(&mut command);
        let output = command
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.executable.display()))?;
        let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
        match output.status.success() && !text.is_empty() {
            true => Ok(text),
            false => Err(format!(
                "{} --version did not answer",
                self.executable.display()
            )),
        }
    }

    pub fn executable(&self) -> &Path {
        &self.executable
    }

    /// Where the extension is loaded from, for people.
    pub fn extension_source(&self) -> String {
        match &self.extension {
            Extension::File(path) => path.display().to_string(),
            Extension::Installed => "LOAD agnes (installed in duckdb)".to_string(),
        }
    }

    /// Loads the extension in memory and runs `agnes_version()`, then
    /// `then` (a query whose rows are wanted, or none). Gives the version
    /// row, then `then`'s rows or its error.
    pub fn probe(&self, then: Option<&str>) -> Result<(Row, Option<Probed>), String> {
        let mut sql = format!("{}; SELECT * FROM agnes_version()", self.load_statement());
        if let Some(query) = then {
            sql = format!("{sql}; {query}");
        }
        let ran = self.run(None, &sql, false).map_err(|f| f.message)?;
        let mut documents = ran.documents.into_iter().map(|d| match d {
            Value::Array(rows) => rows
                .into_iter()
                .filter_map(|r| match r {
                    Value::Object(row) => Some(row),
                    _ => None,
                })
                .collect::<Vec<Row>>(),
            _ => Vec::new(),
        });
        let version = documents.next().and_then(|rows| rows.into_iter().next());
        let Some(version) = version else {
            if let Some(signal) = died_of(ran.status) {
                return Err(self.killed(signal, &ran.message).message);
            }
            return Err(self.load_failure(&ran.message).message);
        };
        let then = then.map(|_| match (documents.next(), ran.status.success()) {
            (Some(rows), true) => Ok(rows),
            // An empty result prints nothing in some DuckDB versions.
            (None, true) => Ok(Vec::new()),
            (_, false) => Err(match died_of(ran.status) {
                Some(signal) => self.killed(signal, &ran.message).message,
                None => agnes_message(&ran.message),
            }),
        });
        Ok((version, then))
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

/// The signal `duckdb` died of. DuckDB itself exits 0 or 1; a launcher in
/// between (pip's `duckdb` is a Python script running the real binary)
/// reports its child's death by a signal as an exit status instead: 128+N
/// (shells) or 256-N (Python's `sys.exit(-N)`).
fn died_of(status: std::process::ExitStatus) -> Option<i32> {
    if let Some(signal) = signals::signal_of(&status) {
        return Some(signal);
    }
    match status.code()? {
        code @ 129..=159 => Some(code - 128),
        code @ 225..=255 => Some(256 - code),
        _ => None,
    }
}

/// DuckDB's "Trying to read a database file with version number 69, but we
/// can only read versions between 64 and 68. The database file was created
/// with a newer version of DuckDB."
fn is_newer_database(message: &str) -> bool {
    message.contains("created with a newer version of DuckDB")
        || (message.contains("Trying to read a database file with version number")
            && message.contains("but we can only read"))
}

/// "its storage version is 69, this duckdb reads 64 to 68" from DuckDB's
/// message, or its first line without the "IO Error: " in front.
fn storage_versions(message: &str) -> String {
    let number_after = |marker: &str| {
        let rest = message.split_once(marker)?.1;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        (!digits.is_empty()).then_some(digits)
    };
    let found = (
        number_after("version number "),
        number_after("versions between "),
        number_after(" and "),
    );
    match found {
        (Some(file), Some(low), Some(high)) => {
            format!("its storage version is {file}, this duckdb reads {low} to {high}")
        }
        _ => {
            let first = message.lines().next().unwrap_or_default();
            first
                .strip_prefix("IO Error: ")
                .unwrap_or(first)
                .to_string()
        }
    }
}

/// A database that cannot be written because its folder or file system is
/// read-only, worded as such.
fn read_only(message: &str, database: Option<&Path>) -> Option<Failure> {
    let database = database?;
    let first = message.lines().next().unwrap_or_default();
    let read_only = first.contains("Read-only file system")
        || (first.contains("Permission denied") && first.contains("open"));
    read_only.then(|| {
        Failure::new(format!(
            "{} cannot be written: the workspace is read-only ({}); make it writable, or pass \
             --workspace DIR for one that is",
            database.display(),
            first.trim()
        ))
    })
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

/// A query error that has no second chance.
pub fn failure(e: QueryError) -> Failure {
    match e {
        QueryError::Failed(f) => f,
        QueryError::Locked { holder } => Failure::new(format!(
            "the database is held by {holder}; close it there, or try again"
        )),
        QueryError::NewerDatabase { detail } => Failure::new(format!(
            "the database was written by a newer DuckDB ({detail}); run da with that \
             newer duckdb: --duckdb PATH or AGNES_DUCKDB=PATH"
        )),
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

    #[cfg(unix)]
    #[test]
    fn deaths_by_signal_are_told_directly_or_through_a_launcher() {
        use std::os::unix::process::ExitStatusExt;
        use std::process::ExitStatus;
        assert_eq!(died_of(ExitStatus::from_raw(11)), Some(11));
        assert_eq!(died_of(ExitStatus::from_raw(245 << 8)), Some(11)); // Python: exit(-11)
        assert_eq!(died_of(ExitStatus::from_raw(143 << 8)), Some(15)); // shell: 128 + 15
        assert_eq!(died_of(ExitStatus::from_raw(1 << 8)), None);
        assert_eq!(died_of(ExitStatus::from_raw(0)), None);
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
        let newer = "IO Error: Trying to read a database file with version number 69, but we can only read \
                     versions between 64 and 68.\nThe database file was created with a newer version of DuckDB.";
        assert!(is_newer_database(newer));
        assert_eq!(
            storage_versions(newer),
            "its storage version is 69, this duckdb reads 64 to 68"
        );
        assert!(!is_newer_database("IO Error: Could not set lock on file"));
        // Windows paths: DuckDB's plain string literals give backslashes no meaning.
        assert_eq!(
            literal(r"C:\Users\o'neil\analysis"),
            r"'C:\Users\o''neil\analysis'"
        );
    }
}
