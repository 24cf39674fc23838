//! `catalog.json`: the optional file beside the parquet files that says what
//! the folder alone cannot (query modes, hash modes, users, memory, faults).
//!
//! It is one JSON object (DuckDB's `COPY ... (FORMAT json)` of one row writes
//! exactly that), every key optional, `null` the same as missing, unknown keys
//! ignored. Tests rewrite it while the server runs, so every request sees the
//! file as it is now.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::Value;

use crate::faults::Fault;

/// What the catalog says about one table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableMeta {
    /// `local`, `materialized`, `remote` or anything else, passed through.
    pub query_mode: Option<String>,
    pub source_type: Option<String>,
    pub hash: HashMode,
    /// Overrides the row count from the parquet footer.
    pub rows: Option<u64>,
    /// Listed, never distributed (0.84): its download answers 403.
    pub server_only: bool,
    /// A presigned URL on the object store (0.84): `valid`, `expired`,
    /// `redirect`, `wrong_bytes`, or a literal URL sent as it is.
    pub signed_url: Option<String>,
    /// Sent as `signed_url_expires_at` instead of the one `signed_url` implies.
    pub signed_url_expires_at: Option<String>,
    /// Part objects appended to a partitioned table's `parts` as they are
    /// (tests announce hostile part paths with them).
    pub extra_parts: Vec<Value>,
    /// `bigquery` makes /api/v2 name types as BigQuery does; else DuckDB's.
    pub sql_flavor: Option<String>,
}

impl TableMeta {
    pub fn is_remote(&self) -> bool {
        self.query_mode.as_deref() == Some("remote")
    }

    pub fn is_bigquery(&self) -> bool {
        self.sql_flavor.as_deref() == Some("bigquery")
    }
}

/// How the manifest's `hash` of a table is made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum HashMode {
    /// MD5 hex of the whole file (what the contract calls a content hash).
    #[default]
    Md5,
    /// 12 hex characters from mtime and size, like the real server's
    /// pipeline tables (a change token, not a content hash).
    Version,
    /// `""`: nothing computed.
    Empty,
    /// Sent as is (tests use it to announce a wrong hash).
    Literal(String),
}

impl HashMode {
    fn parse(text: Option<String>) -> Self {
        match text.as_deref() {
            None | Some("md5") => HashMode::Md5,
            Some("version") => HashMode::Version,
            Some("empty") => HashMode::Empty,
            Some(other) => HashMode::Literal(other.to_string()),
        }
    }
}

/// Which tables a user may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    All,
    Only(BTreeSet<String>),
}

impl Grant {
    pub fn allows(&self, table: &str) -> bool {
        match self {
            Grant::All => true,
            Grant::Only(tables) => tables.contains(table),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub name: String,
    pub grant: Grant,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Memory {
    pub mandatory: Vec<Value>,
    pub approved: Vec<Value>,
    pub token_budget: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tables: BTreeMap<String, TableMeta>,
    /// `None`: no user list, any non-empty bearer token is user `dev`.
    pub users: Option<BTreeMap<String, UserEntry>>,
    pub memory: Memory,
    pub faults: Vec<Fault>,
    /// Passed through as the manifest's `assets` when given.
    pub assets: Option<Value>,
    /// The manifest's `data_packages` and `direct_tables` (0.84), passed
    /// through when given.
    pub data_packages: Option<Value>,
    pub direct_tables: Option<Value>,
    /// `X-Agnes-Accepts` (0.84); `None` means `["session-gzip"]`.
    pub accepts: Option<Vec<String>>,
    /// Limits of `/api/v2/scan` (quotas, the result cap).
    pub scan: ScanLimits,
}

/// The catalog's `scan` key: the real server's per-user limits, made small
/// enough for tests to reach.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ScanLimits {
    /// A result stream is cut silently past this many bytes [2 GiB].
    pub max_result_bytes: Option<u64>,
    /// Scans one user may run at once [5].
    pub max_concurrent: Option<u64>,
    /// Result bytes one user may fetch per UTC day [50 GiB].
    pub daily_result_bytes: Option<u64>,
    /// `false`: answer `from_query` as a 0.29 server does (it does not know it).
    pub from_query: Option<bool>,
}

impl Catalog {
    pub fn table(&self, id: &str) -> Option<&TableMeta> {
        self.tables.get(id)
    }

    /// Parses the catalog text; the error says which part is wrong.
    pub fn parse(text: &str) -> Result<Catalog, String> {
        let raw: RawCatalog = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let tables = raw
            .tables
            .unwrap_or_default()
            .into_iter()
            .map(|(id, t)| {
                let t = t.unwrap_or_default();
                let meta = TableMeta {
                    query_mode: t.query_mode,
                    source_type: t.source_type,
                    hash: HashMode::parse(t.hash),
                    rows: t.rows,
                    server_only: t.server_only.unwrap_or(false),
                    signed_url: t.signed_url,
                    signed_url_expires_at: t.signed_url_expires_at,
                    extra_parts: t.extra_parts.unwrap_or_default(),
                    sql_flavor: t.sql_flavor,
                };
                (id, meta)
            })
            .collect();
        let users = match raw.users {
            None => None,
            Some(users) => {
                let mut out = BTreeMap::new();
                for (token, user) in users {
                    let user = user.unwrap_or_default();
                    let grant = parse_grant(user.tables)
                        .map_err(|e| format!("users: the grant of user {:?}: {e}", user.name))?;
                    let name = user.name.unwrap_or_else(|| "user".to_string());
                    out.insert(token, UserEntry { name, grant });
                }
                Some(out)
            }
        };
        let memory = raw.memory.unwrap_or_default();
        let faults = match raw.faults {
            None | Some(Value::Null) => Vec::new(),
            Some(list) => Fault::parse_list(&list).map_err(|e| format!("faults: {e}"))?,
        };
        Ok(Catalog {
            tables,
            users,
            memory: Memory {
                mandatory: memory.mandatory.unwrap_or_default(),
                approved: memory.approved.unwrap_or_default(),
                token_budget: memory.token_budget,
            },
            faults,
            assets: raw.assets.filter(|v| !v.is_null()),
            data_packages: raw.data_packages.filter(|v| !v.is_null()),
            direct_tables: raw.direct_tables.filter(|v| !v.is_null()),
            accepts: raw.accepts,
            scan: raw.scan.unwrap_or_default(),
        })
    }
}

/// `"*"`, missing or null: all tables; a list: those.
fn parse_grant(tables: Option<Value>) -> Result<Grant, String> {
    match tables {
        None | Some(Value::Null) => Ok(Grant::All),
        Some(Value::String(s)) if s == "*" => Ok(Grant::All),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(format!("a table id must be a string, not {other}")),
            })
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Grant::Only),
        Some(other) => Err(format!("\"tables\" must be \"*\" or a list, not {other}")),
    }
}

#[derive(Deserialize, Default)]
struct RawCatalog {
    tables: Option<BTreeMap<String, Option<RawTable>>>,
    users: Option<BTreeMap<String, Option<RawUser>>>,
    memory: Option<RawMemory>,
    faults: Option<Value>,
    assets: Option<Value>,
    data_packages: Option<Value>,
    direct_tables: Option<Value>,
    accepts: Option<Vec<String>>,
    scan: Option<ScanLimits>,
}

#[derive(Deserialize, Default)]
struct RawTable {
    query_mode: Option<String>,
    source_type: Option<String>,
    hash: Option<String>,
    rows: Option<u64>,
    server_only: Option<bool>,
    signed_url: Option<String>,
    signed_url_expires_at: Option<String>,
    extra_parts: Option<Vec<Value>>,
    sql_flavor: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawUser {
    name: Option<String>,
    tables: Option<Value>,
}

#[derive(Deserialize, Default)]
struct RawMemory {
    mandatory: Option<Vec<Value>>,
    approved: Option<Vec<Value>>,
    token_budget: Option<u64>,
}

/// The catalog as last read.
#[derive(Clone)]
pub struct Loaded {
    /// Bumped whenever the file's content changes, so that the fault book
    /// can tell catalog faults were replaced (and their counters restart).
    pub generation: u64,
    pub catalog: Result<Arc<Catalog>, String>,
}

/// What was parsed, from which bytes (`None`: no file).
struct Cached {
    text: Option<Vec<u8>>,
    loaded: Loaded,
}

/// `catalog.json` of the data folder, re-read on every use.
///
/// Reading a few kilobytes per request costs nothing next to the reply, and
/// comparing contents catches what an mtime check misses: file times tick
/// in jiffies, so two same-size rewrites in one tick look unchanged.
pub struct CatalogFile {
    path: PathBuf,
    cached: Mutex<Option<Cached>>,
}

impl CatalogFile {
    pub fn new(data_dir: &Path) -> Self {
        CatalogFile {
            path: data_dir.join("catalog.json"),
            cached: Mutex::new(None),
        }
    }

    /// The current catalog; an unreadable or invalid file is an error that
    /// names the file, so a broken test fixture is obvious.
    pub fn load(&self) -> Loaded {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        let generation = cached.as_ref().map_or(0, |c| c.loaded.generation);
        let text = match std::fs::read(&self.path) {
            Ok(text) => Some(text),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => {
                return Loaded {
                    generation,
                    catalog: Err(format!("{}: {err}", self.path.display())),
                }
            }
        };
        if let Some(c) = cached.as_ref().filter(|c| c.text == text) {
            return c.loaded.clone();
        }
        let catalog = match &text {
            None => Ok(Arc::new(Catalog::default())),
            Some(bytes) => std::str::from_utf8(bytes)
                .map_err(|e| e.to_string())
                .and_then(Catalog::parse)
                .map(Arc::new)
                .map_err(|e| format!("{}: {e}", self.path.display())),
        };
        let loaded = Loaded {
            generation: generation + 1,
            catalog,
        };
        *cached = Some(Cached {
            text,
            loaded: loaded.clone(),
        });
        loaded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_object_is_the_default_catalog() {
        let c = Catalog::parse("{}").unwrap();
        assert!(c.tables.is_empty());
        assert!(c.users.is_none());
        assert!(c.faults.is_empty());
    }

    #[test]
    fn duckdb_style_nulls_mean_missing() {
        // DuckDB unifies struct fields across rows: absent keys come as null.
        let text = r#"{"tables":{"orders":{"query_mode":null,"source_type":"keboola","hash":null,"rows":null},
            "products":{"query_mode":"materialized","source_type":null,"hash":"version","rows":7},
            "live_orders":{"query_mode":"remote","source_type":"bigquery","hash":null,"rows":null},
            "wrong":{"hash":"deadbeef"},"blank":{"hash":"empty"}},
            "users":{"demo-token":{"name":"analyst","tables":"*"},
                     "limited-token":{"name":"guest","tables":["orders"]},
                     "n":{"name":null,"tables":null}},
            "memory":{"mandatory":[{"id":"sql-style"}],"approved":null},
            "faults":null, "assets": null, "unknown": 1}"#;
        let c = Catalog::parse(text).unwrap();
        assert_eq!(c.tables["orders"].hash, HashMode::Md5);
        assert_eq!(c.tables["orders"].source_type.as_deref(), Some("keboola"));
        assert_eq!(c.tables["products"].hash, HashMode::Version);
        assert_eq!(c.tables["products"].rows, Some(7));
        assert!(c.tables["live_orders"].is_remote());
        assert_eq!(c.tables["wrong"].hash, HashMode::Literal("deadbeef".into()));
        assert_eq!(c.tables["blank"].hash, HashMode::Empty);
        let users = c.users.unwrap();
        assert_eq!(users["demo-token"].grant, Grant::All);
        assert_eq!(users["n"].grant, Grant::All);
        assert_eq!(users["n"].name, "user");
        assert!(users["limited-token"].grant.allows("orders"));
        assert!(!users["limited-token"].grant.allows("customers"));
        assert_eq!(c.memory.mandatory.len(), 1);
        assert!(c.memory.approved.is_empty());
        assert!(c.assets.is_none());
    }

    #[test]
    fn errors_say_where() {
        let err = Catalog::parse(r#"{"users":{"t":{"name":"a","tables":5}}}"#).unwrap_err();
        assert!(err.contains("users") && err.contains("\"a\""), "{err}");
        let err = Catalog::parse(r#"{"faults":[{"kind":"explode"}]}"#).unwrap_err();
        assert!(
            err.starts_with("faults:") && err.contains("explode"),
            "{err}"
        );
        assert!(Catalog::parse("[1]").is_err());
        assert!(Catalog::parse("{").is_err());
    }

    #[test]
    fn file_is_reread_when_it_changes() {
        let dir = std::env::temp_dir().join(format!("agnes-catalog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = CatalogFile::new(&dir);
        let first = file.load();
        assert!(first.catalog.unwrap().users.is_none());
        std::fs::write(dir.join("catalog.json"), r#"{"users":{"t":{"name":"a"}}}"#).unwrap();
        let second = file.load();
        assert_ne!(first.generation, second.generation);
        assert!(second.catalog.unwrap().users.is_some());
        assert_eq!(file.load().generation, second.generation);
        // same size, written at once: still noticed
        std::fs::write(dir.join("catalog.json"), r#"{"users":{"t":{"name":"b"}}}"#).unwrap();
        let third = file.load();
        assert_eq!(third.generation, second.generation + 1);
        assert_eq!(
            third.catalog.unwrap().users.as_ref().unwrap()["t"].name,
            "b"
        );
        std::fs::write(dir.join("catalog.json"), "{oops").unwrap();
        let err = file.load().catalog.unwrap_err();
        assert!(err.contains("catalog.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
