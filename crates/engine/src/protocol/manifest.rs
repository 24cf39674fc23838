//! The server's manifest (CONTRACT.md §1, §7), parsed leniently: any field
//! may be missing, unknown keys are ignored, and one malformed table entry is
//! reported for that table without spoiling the others.
//!
//! Servers of May 2026 (0.29) send the flat `tables` dict only; today's
//! (0.84) add partitioned tables (`parts`), `server_only` tables, presigned
//! `signed_url`s and the user's subscriptions (`data_packages`,
//! `direct_tables`). Both shapes parse into the same `Manifest`.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::protocol::ids::{check_part_path, check_table_id, truncate};

/// How a table is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryMode {
    #[default]
    Local,
    Materialized,
    Remote,
}

impl QueryMode {
    pub fn as_str(self) -> &'static str {
        match self {
            QueryMode::Local => "local",
            QueryMode::Materialized => "materialized",
            QueryMode::Remote => "remote",
        }
    }
}

/// What the manifest's `hash` lets the client check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// 32 lowercase hex characters: the MD5 of the whole file.
    Md5,
    /// Any other non-empty value: a change token only.
    ChangeToken,
    /// Nothing was computed: ask with `If-None-Match`.
    Empty,
}

/// One table as the server describes it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableEntry {
    pub id: String,
    /// For a partitioned table, a rollup of its parts' hashes: a change
    /// token, not the MD5 of any file.
    pub hash: String,
    pub updated: Option<String>,
    pub size_bytes: u64,
    pub rows: u64,
    pub query_mode: QueryMode,
    pub source_type: String,
    /// A partitioned table's files (0.84); `None` for a single-file table.
    pub parts: Option<Vec<PartEntry>>,
    /// Listed, never distributed: it is queried on the server (0.84). Set
    /// by the flat dict's flag or by the table's object in a data package.
    pub server_only: bool,
    /// The registry id, when a data package's table object gives one that
    /// differs from the name this entry is keyed by (CONTRACT.md §7.2):
    /// `/api/v2` and access checks go by it, files by the name.
    pub registry_id: Option<String>,
    /// A presigned direct download, and when it stops working (0.84).
    pub signed_url: Option<String>,
    pub signed_url_expires_at: Option<String>,
    /// Why this entry cannot be synced (bad id, wrong types, a part path
    /// that leaves the table's folder), if it cannot.
    pub invalid: Option<String>,
}

/// One file of a partitioned table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PartEntry {
    /// Relative to the table's folder; checked by `check_part_path`.
    pub path: String,
    /// The MD5 of the part when 32 hex characters, else a change token.
    pub hash: String,
    pub size_bytes: u64,
}

impl PartEntry {
    pub fn hash_kind(&self) -> HashKind {
        hash_kind(&self.hash)
    }
}

/// What a `hash` value lets the client check.
pub fn hash_kind(hash: &str) -> HashKind {
    if hash.is_empty() {
        HashKind::Empty
    } else if is_md5(hash) {
        HashKind::Md5
    } else {
        HashKind::ChangeToken
    }
}

/// 32 lowercase hex characters.
pub fn is_md5(text: &str) -> bool {
    text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl TableEntry {
    pub fn hash_kind(&self) -> HashKind {
        hash_kind(&self.hash)
    }

    /// The id `/api/v2` (and so `agnes_scan()`) knows this table by.
    pub fn scan_id(&self) -> &str {
        self.registry_id.as_deref().unwrap_or(&self.id)
    }
}

/// The manifest: tables sorted by id, so reports are stable.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub tables: Vec<TableEntry>,
    pub server_time: Option<String>,
    /// The tables the user subscribed to, by name (the flat dict's key):
    /// the names of the table objects in `data_packages[].tables` ∪
    /// `direct_tables` (CONTRACT.md §7.6), when the server sends either key
    /// (0.84); `None` from a server that does not, where every table of the
    /// flat dict is synced.
    pub subscriptions: Option<BTreeSet<String>>,
}

impl Manifest {
    pub fn get(&self, id: &str) -> Option<&TableEntry> {
        self.tables.iter().find(|t| t.id == id)
    }

    /// The ids listed, for asking of many ids whether each is listed
    /// (`get` in a loop is quadratic: 1000 tables made the no-op hook
    /// spend 4 ms comparing strings).
    pub fn ids(&self) -> HashSet<&str> {
        self.tables.iter().map(|t| t.id.as_str()).collect()
    }

    /// Whether the user subscribed to `id` (always, without subscriptions).
    pub fn subscribed(&self, id: &str) -> bool {
        self.subscriptions.as_ref().is_none_or(|s| s.contains(id))
    }
}

/// The most tables a manifest may list (issue 25). DuckDB's catalog needs
/// about 16 KB per view (0.8 GB for 50,000): a sync of more could not hold
/// its views in a laptop's memory, and reading a manifest of millions of
/// tables (2,000,000 peaked at 2 GB) is refused before its tables are held.
pub const MAX_TABLES: usize = 500_000;

/// Parses a manifest body. Only a body that is not a JSON object, or whose
/// `tables` is missing or not an object, is an error for the whole manifest.
///
/// A missing `tables` is not "no tables": the sync would take every local
/// table as revoked and delete it, and a `{"detail": ...}` error body that a
/// proxy answers with 200 has no `tables` either. No tables is `{}`.
///
/// Each table entry is parsed on its own, from its raw text, into a
/// `TableEntry` (never a whole `serde_json::Value` tree, which costs about
/// ten times the body: issue 13, case 15), so that a bad number (`1e400`)
/// or bytes that are not UTF-8 spoil only the entry that holds them (case 14).
pub fn parse(body: &[u8]) -> Result<Manifest, String> {
    let (text, not_utf8) = lossy(body);
    let whole: &RawValue = serde_json::from_str(&text).map_err(|e| {
        let excerpt = truncate(String::from_utf8_lossy(body).trim(), 120);
        format!("not JSON ({e}); it starts with {excerpt:?}")
    })?;
    let Some(top) = members(whole) else {
        return Err(format!("expected a JSON object, got {}", kind_of(whole)));
    };
    let field = |key: &str| {
        top.iter()
            .rev()
            .find(|(k, _)| k.as_ref() == key)
            .map(|(_, v)| *v)
    };
    let tables = match field("tables") {
        Some(tables) => members(tables)
            .ok_or_else(|| format!("`tables` must be an object, got {}", kind_of(tables)))?,
        None => {
            let keys: Vec<&str> = top.iter().take(5).map(|(k, _)| k.as_ref()).collect();
            return Err(format!(
                "it has no `tables` (keys: {}); refused rather than taking every local table as revoked",
                truncate(&format!("{keys:?}"), 120)
            ));
        }
    };
    if tables.len() > MAX_TABLES {
        return Err(format!(
            "it lists {} tables, more than the {MAX_TABLES} agnes syncs (DuckDB needs about \
             16 KB of memory per view); refused before reading them",
            tables.len()
        ));
    }
    let server_time = field("server_time").and_then(|v| serde_json::from_str(v.get()).ok());
    // Not null: a key sent as null is as good as missing.
    let list = |key: &str| field(key).filter(|v| v.get() != "null");
    let subscribed = subscriptions(list("data_packages"), list("direct_tables"));
    let spoiled = |part: &str| match not_utf8.is_empty() {
        true => false,
        false => spans_any(&text, part, &not_utf8),
    };
    let mut entries: Vec<TableEntry> = tables
        .iter()
        .map(|(id, v)| entry(id.as_ref(), v, spoiled(v.get()) || spoiled(id.as_ref())))
        .collect();
    drop(tables);
    // The last of duplicate ids wins, as in any JSON object: reversed, then
    // a stable sort puts it first among its equals, where `dedup` keeps it.
    entries.reverse();
    entries.sort_by(|a, b| a.id.cmp(&b.id));
    entries.dedup_by(|a, b| a.id == b.id);
    for e in &mut entries {
        e.registry_id = subscribed.registry_ids.get(&e.id).cloned();
        e.server_only |= subscribed.server_only.contains(&e.id);
    }
    Ok(Manifest {
        tables: entries,
        server_time,
        subscriptions: subscribed.names,
    })
}

/// `body` as text: bytes that are not UTF-8 become U+FFFD, and the places
/// of those replacements (byte offsets in the text) are returned, sorted.
fn lossy(body: &[u8]) -> (Cow<'_, str>, Vec<usize>) {
    if let Ok(text) = std::str::from_utf8(body) {
        return (Cow::Borrowed(text), Vec::new());
    }
    let mut text = String::with_capacity(body.len() + 16);
    let mut at = Vec::new();
    for chunk in body.utf8_chunks() {
        text.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            at.push(text.len());
            text.push(char::REPLACEMENT_CHARACTER);
        }
    }
    (Cow::Owned(text), at)
}

/// Whether `part`, a slice of `text`, covers one of the offsets `at`.
fn spans_any(text: &str, part: &str, at: &[usize]) -> bool {
    let start = (part.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
    if start > text.len() {
        return false; // not a slice of `text` (an id with escapes: owned)
    }
    let i = at.partition_point(|&p| p < start);
    at.get(i).is_some_and(|&p| p < start + part.len())
}

/// A string (a key, or a value), borrowed from the body unless it holds
/// escapes (serde's own `Cow<str>` always copies). Shared with the quick
/// no-op's reader (`listing.rs`).
pub(crate) struct Str<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AnyStr;
        impl<'de> Visitor<'de> for AnyStr {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(AnyStr)
    }
}

impl AsRef<str> for Str<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The members of a JSON object, in order, each value still raw text; `None`
/// when `raw` is not an object. `raw` was checked as JSON already.
fn members(raw: &RawValue) -> Option<Vec<(Str<'_>, &RawValue)>> {
    struct Members;
    impl<'de> Visitor<'de> for Members {
        type Value = Vec<(Str<'de>, &'de RawValue)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(member) = map.next_entry::<Str<'de>, &'de RawValue>()? {
                out.push(member);
            }
            Ok(out)
        }
    }
    if !raw.get().starts_with('{') {
        return None;
    }
    let mut de = serde_json::Deserializer::from_str(raw.get());
    de.deserialize_map(Members).ok()
}

/// What the subscription lists say of the tables (CONTRACT.md §7.6).
#[derive(Debug, Default)]
struct Subscribed {
    /// `None` when neither `data_packages` nor `direct_tables` is there.
    names: Option<BTreeSet<String>>,
    /// Name -> registry id, where the two differ.
    registry_ids: HashMap<String, String>,
    /// Names a package marks `server_only` (not materialized for the user).
    server_only: HashSet<String>,
}

/// `data_packages[].tables` ∪ `direct_tables`, when either key is there.
/// Each table is an object (0.84) whose `name` is the flat dict's key; a
/// bare string is taken as a name too (older texts said ids). Malformed
/// pieces (a package that is not an object, a table without a string
/// `name`) name nothing: they never widen the set.
///
/// Read from the raw text piece by piece, like the table entries: a
/// package of 100,000 table objects must not become a JSON tree.
fn subscriptions(packages: Option<&RawValue>, direct: Option<&RawValue>) -> Subscribed {
    if packages.is_none() && direct.is_none() {
        return Subscribed::default();
    }
    let mut out = Subscribed {
        names: Some(BTreeSet::new()),
        ..Subscribed::default()
    };
    let package_tables = packages
        .and_then(elements)
        .into_iter()
        .flatten()
        .filter_map(|package| {
            let fields = members(package)?;
            let (_, tables) = fields
                .into_iter()
                .rev()
                .find(|(k, _)| k.as_ref() == "tables")?;
            elements(tables)
        })
        .flatten();
    let direct_tables = direct.and_then(elements).into_iter().flatten();
    for table in package_tables.chain(direct_tables) {
        let Some((name, id, server_only)) = table_ref(table) else {
            continue;
        };
        // An id that could not be a table's is not used to address one.
        if let Some(id) = id.filter(|id| *id != name && check_table_id(id).is_ok()) {
            out.registry_ids.insert(name.clone(), id);
        }
        if server_only {
            out.server_only.insert(name.clone());
        }
        if let Some(names) = out.names.as_mut() {
            names.insert(name);
        }
    }
    out
}

/// One table of a subscription list: its name, registry id and whether it
/// is server-only for the user; `None` when it names no table.
fn table_ref(raw: &RawValue) -> Option<(String, Option<String>, bool)> {
    if raw.get().starts_with('"') {
        return Some((serde_json::from_str(raw.get()).ok()?, None, false));
    }
    let fields = members(raw)?;
    let get = |key: &str| last(&fields, key);
    let text = |key: &str| get(key).and_then(|v| serde_json::from_str::<String>(v.get()).ok());
    let server_only = get("server_only").is_some_and(|v| v.get() == "true");
    Some((text("name")?, text("id"), server_only))
}

/// The value of `key` among an object's members: the last one, as in any
/// JSON object.
fn last<'a>(fields: &[(Str<'_>, &'a RawValue)], key: &str) -> Option<&'a RawValue> {
    fields
        .iter()
        .rev()
        .find(|(k, _)| k.as_ref() == key)
        .map(|(_, v)| *v)
}

/// The elements of a JSON array, each still raw text; `None` when `raw`
/// is not an array. `raw` was checked as JSON already.
fn elements(raw: &RawValue) -> Option<Vec<&RawValue>> {
    if !raw.get().starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<&RawValue>>(raw.get()).ok()
}

/// A partitioned table's `parts`. Any bad part refuses the whole table: a
/// view over some of its files would silently answer with part of the data.
fn parts(value: &Value, problems: &mut Vec<String>) -> Option<Vec<PartEntry>> {
    let Value::Array(items) = value else {
        problems.push(format!("`parts` must be a list, got {}", value_kind(value)));
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(fields) = item else {
            problems.push(format!(
                "part {i} must be an object, got {}",
                value_kind(item)
            ));
            continue;
        };
        let path = match fields.get("path") {
            Some(Value::String(p)) => p.clone(),
            other => {
                problems.push(format!(
                    "part {i} has no `path` string (got {})",
                    other.map_or("nothing", value_kind)
                ));
                continue;
            }
        };
        if let Err(e) = check_part_path(&path) {
            problems.push(e);
            continue;
        }
        // Two names for one file on a case-insensitive disk.
        if !seen.insert(path.to_lowercase()) {
            problems.push(format!("part path {path:?} is listed twice; refused"));
            continue;
        }
        let hash = match fields.get("hash") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(h)) => h.clone(),
            Some(other) => {
                problems.push(format!(
                    "part {path:?}: `hash` must be a string, got {}",
                    value_kind(other)
                ));
                continue;
            }
        };
        let size_bytes = match fields.get("size_bytes") {
            None | Some(Value::Null) => 0,
            Some(v) => match v.as_u64() {
                Some(n) => n,
                None => {
                    problems.push(format!(
                        "part {path:?}: `size_bytes` must be a non-negative integer"
                    ));
                    continue;
                }
            },
        };
        out.push(PartEntry {
            path,
            hash,
            size_bytes,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Some(out)
}

fn entry(id: &str, raw: &RawValue, not_utf8: bool) -> TableEntry {
    let mut problems = Vec::new();
    if let Err(e) = check_table_id(id) {
        problems.push(e);
    }
    if not_utf8 {
        problems.push("the entry holds bytes that are not UTF-8".to_string());
    }
    let fields = match members(raw) {
        Some(fields) => fields,
        None => {
            problems.push(format!("entry must be an object, got {}", kind_of(raw)));
            Vec::new()
        }
    };
    let get = |key: &str| last(&fields, key).filter(|v| v.get() != "null");
    let text = |key: &str, problems: &mut Vec<String>| {
        let v = get(key)?;
        match serde_json::from_str::<String>(v.get()) {
            Ok(s) => Some(s),
            Err(_) => {
                problems.push(format!("`{key}` must be a string, got {}", kind_of(v)));
                None
            }
        }
    };
    let count = |key: &str, problems: &mut Vec<String>| match get(key) {
        None => 0,
        Some(v) => serde_json::from_str::<u64>(v.get()).unwrap_or_else(|_| {
            problems.push(format!(
                "`{key}` must be a non-negative integer, got {}",
                truncate(v.get(), 40)
            ));
            0
        }),
    };
    let hash = text("hash", &mut problems).unwrap_or_default();
    let updated = text("updated", &mut problems);
    let source_type = text("source_type", &mut problems).unwrap_or_default();
    let query_mode = match text("query_mode", &mut problems).as_deref() {
        Some("remote") => QueryMode::Remote,
        Some("materialized") => QueryMode::Materialized,
        // Unknown or missing means local (CONTRACT.md §1).
        _ => QueryMode::Local,
    };
    let size_bytes = count("size_bytes", &mut problems);
    let rows = count("rows", &mut problems);
    // A partitioned table's parts: a small list, read as values.
    let parts = get("parts").and_then(|list| match serde_json::from_str::<Value>(list.get()) {
        Ok(list) => parts(&list, &mut problems),
        Err(e) => {
            problems.push(format!("`parts`: {e}"));
            None
        }
    });
    // Only a literal `true` withholds a table: anything else is a table
    // as before, which a download will settle.
    let server_only = get("server_only").is_some_and(|v| v.get() == "true");
    let signed_url = text("signed_url", &mut problems).filter(|u| !u.is_empty());
    let signed_url_expires_at = text("signed_url_expires_at", &mut problems);
    TableEntry {
        id: id.to_string(),
        hash,
        updated,
        size_bytes,
        rows,
        query_mode,
        source_type,
        parts,
        server_only,
        registry_id: None,
        signed_url,
        signed_url_expires_at,
        invalid: (!problems.is_empty()).then(|| problems.join("; ")),
    }
}

/// What kind of JSON value `raw` is, from its first character (it was
/// checked as JSON already).
fn kind_of(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        Some(b'"') => "a string",
        Some(b'[') => "an array",
        Some(b'{') => "an object",
        _ => "a number",
    }
}

/// What kind of JSON value `value` is, for messages.
fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTRACT_EXAMPLE: &str = r#"{
      "tables": {
        "orders": {"hash": "9e107d9d372bb6826bd81d3542a419d6", "updated": "2026-04-30T00:00:00+00:00",
                   "size_bytes": 2048, "rows": 100, "query_mode": "local", "source_type": "keboola"},
        "in.c-crm.people": {"hash": "", "updated": null, "size_bytes": 0, "rows": 0, "query_mode": "local", "source_type": ""},
        "live_orders": {"hash": "x", "size_bytes": 0, "rows": 0, "query_mode": "remote", "source_type": "bigquery"}
      },
      "assets": {"docs": {"hash": "1714000000"}},
      "server_time": "2026-04-30T00:00:00+00:00",
      "unknown_key": [1, 2]
    }"#;

    #[test]
    fn parses_the_contract_example() {
        let m = parse(CONTRACT_EXAMPLE.as_bytes()).unwrap();
        let ids: Vec<_> = m.tables.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["in.c-crm.people", "live_orders", "orders"]);
        let orders = m.get("orders").unwrap();
        assert_eq!(
            (orders.rows, orders.size_bytes, orders.hash_kind()),
            (100, 2048, HashKind::Md5)
        );
        assert_eq!(
            m.get("in.c-crm.people").unwrap().hash_kind(),
            HashKind::Empty
        );
        assert_eq!(m.get("live_orders").unwrap().query_mode, QueryMode::Remote);
        assert!(m.tables.iter().all(|t| t.invalid.is_none()));
        assert_eq!(m.server_time.as_deref(), Some("2026-04-30T00:00:00+00:00"));
    }

    #[test]
    fn hash_kinds() {
        let kind = |h: &str| {
            TableEntry {
                hash: h.into(),
                ..parse(br#"{"tables":{"t":{}}}"#).unwrap().tables[0].clone()
            }
            .hash_kind()
        };
        assert_eq!(kind("0123456789abcdef0123456789abcdef"), HashKind::Md5);
        assert_eq!(
            kind("0123456789ABCDEF0123456789ABCDEF"),
            HashKind::ChangeToken
        );
        assert_eq!(kind("1a2b3c4d5e6f"), HashKind::ChangeToken);
        assert_eq!(kind(""), HashKind::Empty);
    }

    #[test]
    fn missing_fields_default_and_unknown_mode_is_local() {
        let m = parse(br#"{"tables": {"t": {"query_mode": "hybrid"}}}"#).unwrap();
        let t = &m.tables[0];
        assert_eq!(
            (t.query_mode, t.rows, t.hash.as_str(), t.invalid.as_deref()),
            (QueryMode::Local, 0, "", None)
        );
        assert_eq!(parse(br#"{"tables": {}}"#).unwrap().tables, vec![]);
    }

    #[test]
    fn a_manifest_without_tables_is_refused_not_empty() {
        for body in [
            &br#"{}"#[..],
            br#"{"detail": "Internal Server Error"}"#,
            br#"{"tables": null}"#,
        ] {
            let err = parse(body).unwrap_err();
            assert!(err.contains("`tables`"), "{err}");
        }
    }

    #[test]
    fn wrong_types_and_hostile_ids_mark_only_their_entry() {
        let body = br#"{"tables": {"../x": {}, "a/b": {}, "ok": {}, "typed": {"rows": "many", "hash": 5}, "list": [1]}}"#;
        let m = parse(body).unwrap();
        let invalid = |id: &str| m.get(id).unwrap().invalid.clone();
        assert!(invalid("../x").unwrap().contains("refused"));
        assert!(invalid("a/b").is_some());
        assert!(invalid("ok").is_none());
        let typed = invalid("typed").unwrap();
        assert!(
            typed.contains("`rows`") && typed.contains("`hash`"),
            "{typed}"
        );
        assert!(invalid("list").unwrap().contains("must be an object"));
    }

    #[test]
    fn a_bad_number_fails_only_its_entry() {
        let body = br#"{"tables": {"big": {"hash": "h", "rows": 1e400}, "ok": {"rows": 2},
            "deep": {"hash": "h", "extra": [1e400]}}, "other": 1e400}"#;
        let m = parse(body).unwrap();
        let big = m.get("big").unwrap().invalid.clone().unwrap();
        assert!(
            big.contains("`rows` must be a non-negative integer, got 1e400"),
            "{big}"
        );
        assert_eq!(m.get("ok").unwrap().rows, 2);
        assert!(m.get("ok").unwrap().invalid.is_none());
        // Unknown keys are not read, so what they hold does not matter.
        assert!(m.get("deep").unwrap().invalid.is_none());
    }

    #[test]
    fn bytes_that_are_not_utf8_fail_only_their_entry() {
        let mut body = br#"{"tables": {"a": {"hash": "x"}, "bad": {"source_type": "k"#.to_vec();
        body.push(0xff);
        body.extend_from_slice(br#""}, "c": {"hash": "y"}, "k"#);
        body.extend_from_slice(&[0xc3, 0x28]);
        body.extend_from_slice(br#"": {}}, "server_time": "t"}"#);
        let m = parse(&body).unwrap();
        let bad = m.get("bad").unwrap().invalid.clone().unwrap();
        assert!(bad.contains("not UTF-8"), "{bad}");
        assert!(m.get("a").unwrap().invalid.is_none());
        assert!(m.get("c").unwrap().invalid.is_none());
        let key = m.tables.iter().find(|t| t.id.starts_with('k')).unwrap();
        assert!(key.invalid.as_deref().unwrap().contains("not UTF-8"));
        assert_eq!(m.tables.len(), 4);
        assert_eq!(m.server_time.as_deref(), Some("t"));
    }

    #[test]
    fn a_manifest_of_too_many_tables_is_refused_before_they_are_read() {
        let mut body = String::from(r#"{"tables": {"#);
        for i in 0..=MAX_TABLES {
            body.push_str(&format!(r#""t{i}": {{}},"#));
        }
        body.pop();
        body.push_str("}}");
        let err = parse(body.as_bytes()).unwrap_err();
        assert!(
            err.contains("lists 500001 tables, more than the 500000"),
            "{err}"
        );
    }

    #[test]
    fn the_last_of_duplicate_ids_wins() {
        let m = parse(br#"{"tables": {"t": {"rows": 1}, "u": {}, "t": {"rows": 2}}}"#).unwrap();
        assert_eq!(m.tables.len(), 2);
        assert_eq!(m.get("t").unwrap().rows, 2);
    }

    #[test]
    fn whole_manifest_errors_say_what_came() {
        assert!(parse(b"<html>502 Bad Gateway</html>")
            .unwrap_err()
            .contains("<html>502"));
        assert!(parse(b"[1,2]").unwrap_err().contains("an array"));
        assert!(parse(br#"{"tables": [1]}"#)
            .unwrap_err()
            .contains("`tables` must be an object"));
    }
}
