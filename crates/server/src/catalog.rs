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
use serde_json::{json, Value};

use crate::faults::Fault;

/// What the catalog says about one table (keyed by its name, the file's).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableMeta {
    /// The registry id, when it is not the name (0.84: `Orders2` has id
    /// `orders2`). Grants, packages and `/api/v2` use the id.
    pub id: Option<String>,
    /// The v2 catalog's `description`.
    pub description: Option<String>,
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
    /// The registry id of the table named `name`.
    pub fn registry_id<'a>(&'a self, name: &'a str) -> &'a str {
        self.id.as_deref().unwrap_or(name)
    }

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
    /// The explicit grant (`tables`); `None` when the key is missing.
    pub tables: Option<Grant>,
    /// An admin reads every table; unknown ids are 404 for them, not 403.
    pub admin: bool,
    /// Slugs of the packages in this user's stack, materialized for them;
    /// `None`: every package of the catalog (none for an admin).
    pub packages: Option<Vec<String>>,
    /// A revoked token: 401 `Token revoked`.
    pub revoked: bool,
    /// Slugs of packages in the stack that are not materialized for this
    /// user (an `available` grant they did not subscribe to): their tables
    /// are `server_only` for them, and still downloadable.
    pub available: Vec<String>,
}

/// A data package (0.84): a named set of tables by registry id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    pub requirement: String,
    /// Registry ids: each sent as the table object the real server makes.
    pub tables: Vec<String>,
    /// Table objects given as objects in the catalog: sent as they are
    /// (tests announce a table the flat dict lacks with them).
    pub literal_tables: Vec<Value>,
    /// Holds every table of the folder (`"tables": "*"`, and the package a
    /// catalog without `data_packages` has); it widens no grant.
    pub all: bool,
}

impl Package {
    pub fn holds(&self, id: &str) -> bool {
        self.all || self.tables.iter().any(|t| t == id)
    }
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
    /// The data packages (0.84); which of them a user has is the user's `packages`.
    pub data_packages: Vec<Package>,
    /// Registry ids sent as table objects in `direct_tables` (0.84.8 sends
    /// `[]`; earlier 0.4x-0.8x servers listed tables there).
    pub direct_tables: Vec<String>,
    /// Objects of the catalog's `direct_tables`, sent as they are.
    pub direct_literal: Vec<Value>,
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
    /// The catalog entry of the table named `name`.
    pub fn table(&self, name: &str) -> Option<&TableMeta> {
        self.tables.get(name)
    }

    /// The registry id of the table named `name`.
    pub fn id_of(&self, name: &str) -> String {
        self.table(name)
            .map_or(name, |m| m.registry_id(name))
            .to_string()
    }

    /// The name of the table whose registry id is `id`: the entry that
    /// gives it that id, else the table named `id` when it keeps its name.
    pub fn name_of(&self, id: &str) -> Option<String> {
        if let Some((name, _)) = self
            .tables
            .iter()
            .find(|(_, m)| m.id.as_deref() == Some(id))
        {
            return Some(name.clone());
        }
        match self.table(id) {
            Some(m) if m.registry_id(id) != id => None,
            _ => Some(id.to_string()),
        }
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
                    id: t.id,
                    description: t.description,
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
                    let tables = match user.tables {
                        None | Some(Value::Null) => None,
                        Some(t) => Some(parse_grant(Some(t)).map_err(|e| {
                            format!("users: the grant of user {:?}: {e}", user.name)
                        })?),
                    };
                    let name = user.name.unwrap_or_else(|| "user".to_string());
                    out.insert(
                        token,
                        UserEntry {
                            name,
                            tables,
                            admin: user.admin.unwrap_or(false),
                            revoked: user.revoked.unwrap_or(false),
                            packages: user.packages,
                            available: user.available.unwrap_or_default(),
                        },
                    );
                }
                Some(out)
            }
        };
        let memory = raw.memory.unwrap_or_default();
        let faults = match raw.faults {
            None | Some(Value::Null) => Vec::new(),
            Some(list) => Fault::parse_list(&list).map_err(|e| format!("faults: {e}"))?,
        };
        let (direct_tables, direct_literal) =
            table_refs(raw.direct_tables.as_ref().unwrap_or(&Value::Null))
                .map_err(|e| format!("direct_tables: {e}"))?;
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
            data_packages: parse_packages(raw.data_packages)?,
            direct_tables,
            direct_literal,
            accepts: raw.accepts,
            scan: raw.scan.unwrap_or_default(),
        })
    }
}

/// The catalog's `data_packages`: `[{"slug", "tables": [ids] | "*", "id"?,
/// "name"?, "description"?, "requirement"?}]`; a package without `id` gets
/// one shaped like the real server's (`pkg_` and 12 hex characters).
/// Without the key, one package `all` holds every table.
fn parse_packages(raw: Option<Value>) -> Result<Vec<Package>, String> {
    let list = match raw {
        // Like a real analyst's stack: one package, here of every table.
        None | Some(Value::Null) => {
            vec![json!({"slug": "all", "name": "All tables", "tables": "*"})]
        }
        Some(Value::Array(list)) => list,
        Some(other) => return Err(format!("data_packages must be a list, not {other}")),
    };
    list.into_iter()
        .enumerate()
        .map(|(i, p)| {
            let text = |key: &str| p.get(key).and_then(Value::as_str).map(String::from);
            let slug = text("slug")
                .or_else(|| text("id"))
                .ok_or_else(|| format!("data_packages[{i}] has neither slug nor id"))?;
            let all = p.get("tables").and_then(Value::as_str) == Some("*");
            let (tables, literal_tables) = match all {
                true => (Vec::new(), Vec::new()),
                false => table_refs(p.get("tables").unwrap_or(&Value::Null))
                    .map_err(|e| format!("data_packages[{i}].tables: {e}"))?,
            };
            let id = text("id").unwrap_or_else(|| {
                use md5::{Digest, Md5};
                let digest = Md5::digest(slug.as_bytes());
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                format!("pkg_{}", &hex[..12])
            });
            Ok(Package {
                id,
                name: text("name").unwrap_or_else(|| slug.clone()),
                description: text("description"),
                requirement: text("requirement").unwrap_or_else(|| "required".to_string()),
                slug,
                tables,
                literal_tables,
                all,
            })
        })
        .collect()
}

/// A list of registry ids (rendered by the server) and table objects
/// (sent as they are).
fn table_refs(list: &Value) -> Result<(Vec<String>, Vec<Value>), String> {
    let items = match list {
        Value::Null => return Ok((Vec::new(), Vec::new())),
        Value::Array(items) => items,
        other => return Err(format!("must be a list, not {other}")),
    };
    let (mut ids, mut objects) = (Vec::new(), Vec::new());
    for item in items {
        match item {
            Value::String(id) => ids.push(id.clone()),
            Value::Object(_) => objects.push(item.clone()),
            other => return Err(format!("a table must be an id or an object, not {other}")),
        }
    }
    Ok((ids, objects))
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
    id: Option<String>,
    description: Option<String>,
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
    admin: Option<bool>,
    revoked: Option<bool>,
    packages: Option<Vec<String>>,
    available: Option<Vec<String>>,
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
        assert_eq!(users["demo-token"].tables, Some(Grant::All));
        assert_eq!(users["n"].tables, None);
        assert_eq!(users["n"].name, "user");
        let limited = users["limited-token"].tables.clone().unwrap();
        assert!(limited.allows("orders"));
        assert!(!limited.allows("customers"));
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
