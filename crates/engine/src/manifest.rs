//! The server's manifest (CONTRACT.md §1), parsed leniently: any field may be
//! missing, unknown keys are ignored, and one malformed table entry is
//! reported for that table without spoiling the others.

use serde_json::{Map, Value};

use crate::ids::{check_table_id, truncate};

/// How a table is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryMode {
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
#[derive(Debug, Clone, PartialEq)]
pub struct TableEntry {
    pub id: String,
    pub hash: String,
    pub updated: Option<String>,
    pub size_bytes: u64,
    pub rows: u64,
    pub query_mode: QueryMode,
    pub source_type: String,
    /// Listed, never distributed: it is queried on the server (0.84).
    pub server_only: bool,
    /// Why this entry cannot be synced (bad id, wrong types), if it cannot.
    pub invalid: Option<String>,
}

impl TableEntry {
    pub fn hash_kind(&self) -> HashKind {
        if self.hash.is_empty() {
            HashKind::Empty
        } else if self.hash.len() == 32
            && self
                .hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            HashKind::Md5
        } else {
            HashKind::ChangeToken
        }
    }
}

/// The manifest: tables sorted by id, so reports are stable.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub tables: Vec<TableEntry>,
    pub server_time: Option<String>,
}

impl Manifest {
    pub fn get(&self, id: &str) -> Option<&TableEntry> {
        self.tables.iter().find(|t| t.id == id)
    }
}

/// Parses a manifest body. Only a body that is not a JSON object, or whose
/// `tables` is missing or not an object, is an error for the whole manifest.
///
/// A missing `tables` is not "no tables": the sync would take every local
/// table as revoked and delete it, and a `{"detail": ...}` error body that a
/// proxy answers with 200 has no `tables` either. No tables is `{}`.
pub fn parse(body: &[u8]) -> Result<Manifest, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let excerpt = truncate(String::from_utf8_lossy(body).trim(), 120);
        format!("not JSON ({e}); it starts with {excerpt:?}")
    })?;
    let Value::Object(top) = value else {
        return Err(format!("expected a JSON object, got {}", kind_of(&value)));
    };
    let tables = match top.get("tables") {
        Some(Value::Object(tables)) => tables,
        None => {
            let keys: Vec<&str> = top.keys().take(5).map(String::as_str).collect();
            return Err(format!(
                "it has no `tables` (keys: {}); refused rather than taking every local table as revoked",
                truncate(&format!("{keys:?}"), 120)
            ));
        }
        Some(other) => {
            return Err(format!(
                "`tables` must be an object, got {}",
                kind_of(other)
            ))
        }
    };
    let mut entries: Vec<TableEntry> = tables.iter().map(|(id, v)| entry(id, v)).collect();
    entries.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Manifest {
        tables: entries,
        server_time: top
            .get("server_time")
            .and_then(Value::as_str)
            .map(String::from),
    })
}

fn entry(id: &str, value: &Value) -> TableEntry {
    let mut problems = Vec::new();
    if let Err(e) = check_table_id(id) {
        problems.push(e);
    }
    let empty = Map::new();
    let fields = match value {
        Value::Object(fields) => fields,
        other => {
            problems.push(format!("entry must be an object, got {}", kind_of(other)));
            &empty
        }
    };
    let text = |key: &str, problems: &mut Vec<String>| match fields.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            problems.push(format!("`{key}` must be a string, got {}", kind_of(other)));
            None
        }
    };
    let count = |key: &str, problems: &mut Vec<String>| match fields.get(key) {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_u64().unwrap_or_else(|| {
            problems.push(format!(
                "`{key}` must be a non-negative integer, got {}",
                truncate(&v.to_string(), 40)
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
    // Only a literal `true` withholds a table: anything else is a table
    // as before, which a download will settle.
    let server_only = fields.get("server_only") == Some(&Value::Bool(true));
    TableEntry {
        id: id.to_string(),
        hash,
        updated,
        size_bytes,
        rows,
        query_mode,
        source_type,
        server_only,
        invalid: (!problems.is_empty()).then(|| problems.join("; ")),
    }
}

fn kind_of(value: &Value) -> &'static str {
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
