//! `/api/v2`: querying tables on the server (CONTRACT.md §8). The catalog,
//! a table's schema, a scan as an Arrow IPC stream, and a scan's estimate,
//! over the folder's parquet files (and, on a 0.84 server, its partitioned
//! tables, each read as one table), with the real server's error shapes,
//! per-user quotas and silent result cap.

// Errors here are whole replies, built once per failed request: their size
// does not matter.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::datatypes::SchemaRef;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};

use crate::app::App;
use crate::auth::{authenticate, User};
use crate::catalog::{Catalog, ScanLimits, TableMeta};
use crate::compress::accepts_gzip;
use crate::isotime::utc_with_offset;
use crate::predicate::{self, Rejected};
use crate::pydantic;
use crate::reply::{json, ApiError, ApiResult};
use crate::request_log::ScanNote;
use crate::scan_data::{self, Order, Plan};
use crate::tables::{self, is_valid_id, TableFile};

/// The real server's limits (CONTRACT.md §8), unless the catalog says less.
const MAX_RESULT_BYTES: u64 = 2 << 30;
const MAX_CONCURRENT: u64 = 5;
const DAILY_RESULT_BYTES: u64 = 50 << 30;

pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// An error whose `detail` is an object, as the real server's v2 errors are.
fn detail(status: StatusCode, detail: Value) -> Response {
    if status.is_server_error() {
        eprintln!("agnes-server: {} {detail}", status.as_u16());
    }
    json(status, &json!({ "detail": detail }))
}

/// The validator's refusal, with the real server's `details`: the column
/// or the (upper-case) function it did not know, else nothing.
fn rejected(r: Rejected) -> Response {
    let details = match r.kind {
        "unknown_column" => json!({"column": r.part}),
        "unknown_function" => {
            json!({"function": r.part.trim_end_matches('(').trim().to_ascii_uppercase()})
        }
        _ => json!({}),
    };
    detail(
        StatusCode::BAD_REQUEST,
        json!({"error": "validator_rejected", "kind": r.kind, "details": details}),
    )
}

/// A body that does not fit the scan model: pydantic's text in a `400`.
fn bad_body(errors: &[pydantic::FieldError]) -> Response {
    ApiError::bad_request(pydantic::message("ScanRequest", errors)).into_response()
}

/// The largest `limit` the real server takes.
const MAX_LIMIT: u64 = 10_000_000;

/// The internal tables a 0.84 server lists in its v2 catalog to everyone:
/// id, display name, description.
const INTERNAL_TABLES: &[(&str, &str, &str)] = &[
    (
        "agnes_audit",
        "Agnes audit log",
        "Server-side actions performed against Agnes. Also available locally for analysis.",
    ),
    (
        "agnes_sessions",
        "Agnes sessions",
        "Claude Code sessions. Also available locally for analysis.",
    ),
    (
        "agnes_telemetry",
        "Agnes telemetry events",
        "Tool and skill invocations from Claude Code. Also available locally for analysis.",
    ),
];

/// The columns of an internal table as 0.84.8 describes them (the audit
/// log's; the other two are described as having none here).
fn internal_columns(id: &str) -> Vec<Value> {
    const AUDIT: &[(&str, &str, bool)] = &[
        ("id", "VARCHAR", false),
        ("timestamp", "TIMESTAMP", false),
        ("user_id", "VARCHAR", true),
        ("action", "VARCHAR", false),
        ("resource", "VARCHAR", true),
        ("params", "JSON", true),
        ("result", "VARCHAR", true),
        ("duration_ms", "INTEGER", true),
        ("params_before", "JSON", true),
        ("client_ip", "VARCHAR", true),
        ("client_kind", "VARCHAR", true),
        ("correlation_id", "VARCHAR", true),
    ];
    let columns = if id == "agnes_audit" { AUDIT } else { &[] };
    columns
        .iter()
        .map(|(name, t, nullable)| {
            json!({"name": name, "type": t, "nullable": nullable, "description": ""})
        })
        .collect()
}

/// Which endpoint asks, for the words of its refusals.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Asker {
    Schema,
    Scan,
    Estimate,
}

impl Asker {
    /// The real server's 404 for an unknown table, worded per endpoint.
    fn not_found(self, id: &str) -> Response {
        let text = match self {
            Asker::Schema => format!("table '{id}' not found"),
            Asker::Scan => "table not found".to_string(),
            Asker::Estimate => format!("table {id} not found"),
        };
        ApiError::not_found(text).into_response()
    }

    fn forbidden(self, id: &str, current: bool) -> Response {
        let text = match (current, self) {
            (true, _) => crate::download::not_in_stack(id, true),
            (false, Asker::Schema) => "not authorized for this table".to_string(),
            (false, _) => "not authorized".to_string(),
        };
        ApiError::new(StatusCode::FORBIDDEN, text).into_response()
    }
}

/// A table the caller may scan, with its data when the server has some:
/// one file, or (0.84) the parts of a partitioned table.
#[derive(Clone)]
struct Target {
    id: String,
    meta: TableMeta,
    data: Option<TableFile>,
}

/// The table with registry id `id`, as the real server finds it: unknown
/// is 404 (for anyone), not readable 403, and a table whose id differs
/// from its name 404 once readable (its data is stored under the name; a
/// 0.29 server fails with a 500 there).
fn target(
    app: &App,
    catalog: &Catalog,
    user: &User,
    id: &str,
    asker: Asker,
) -> Result<Target, Response> {
    let current = app.generation.is_current();
    if !is_valid_id(id) {
        return Err(asker.not_found(id));
    }
    let internal = current && INTERNAL_TABLES.iter().any(|(t, _, _)| *t == id);
    let Some(name) = catalog.name_of(id) else {
        return Err(asker.not_found(id));
    };
    let meta = catalog.table(&name).cloned();
    // Folders are tables only where the manifest lists them: on a 0.84 server.
    let data = tables::find(&app.data_dir, &name, current).map_err(|e| {
        ApiError::internal(format!("looking for table '{id}' in the data folder: {e}"))
            .into_response()
    })?;
    if data.is_none() && !internal && !meta.as_ref().is_some_and(|m| m.is_remote()) {
        return Err(asker.not_found(id));
    }
    if !internal && !user.grant.allows(id) {
        return Err(asker.forbidden(id, current));
    }
    if name != id {
        return Err(match current {
            true => asker.not_found(id),
            false => {
                let request_id = format!("{:012x}", now_nanos() & 0xffff_ffff_ffff);
                eprintln!("agnes-server: 500 table '{id}' is stored under the name '{name}'");
                json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({"detail": "Internal server error", "request_id": request_id}),
                )
            }
        });
    }
    if data.is_none() && internal {
        // Listed, and its schema known, but this server holds no rows.
        return Err(match asker {
            Asker::Schema => json(
                StatusCode::OK,
                &json!({"table_id": id, "source_type": "internal", "sql_flavor": "duckdb",
                        "columns": internal_columns(id), "partition_by": null,
                        "clustered_by": [], "where_dialect_hints": {}}),
            ),
            _ => asker.not_found(id),
        });
    }
    Ok(Target {
        id: id.to_string(),
        meta: meta.unwrap_or_default(),
        data,
    })
}

impl Target {
    /// The data a remote table is served from; without any, the server
    /// has no backend for it (a BigQuery table without BigQuery).
    fn backend(&self) -> Result<&TableFile, Response> {
        self.data.as_ref().ok_or_else(|| {
            detail(
                StatusCode::INTERNAL_SERVER_ERROR,
                match self.source() {
                    "bigquery" => json!({"error": "not_configured",
                        "message": "BigQuery project not configured",
                        "details": {"hint": "Set data_source.bigquery.project in instance.yaml (and optionally data_source.bigquery.billing_project for cross-project deployments). BIGQUERY_PROJECT env var also accepted as legacy override."}}),
                    source => json!({"error": "not_configured",
                        "message": format!("table '{}' is a {source} table and this server has no {source} backend configured", self.id),
                        "details": {"hint": "agnes-server serves a remote table from DIR/<id>.parquet when there is one"}}),
                },
            )
        })
    }

    fn source(&self) -> &str {
        self.meta
            .source_type
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("remote")
    }

    fn flavor(&self) -> &'static str {
        match self.meta.is_bigquery() {
            true => "bigquery",
            false => "duckdb",
        }
    }

    fn schema(&self) -> Result<SchemaRef, Response> {
        let data = self.backend()?;
        scan_data::schema(data).map_err(|e| ApiError::internal(e).into_response())
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Response> + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("scan task: {e}")).into_response())?
}

/// `GET /api/v2/catalog`: the tables this user may read.
pub async fn catalog(State(app): State<Arc<App>>, headers: HeaderMap) -> ApiResult {
    let catalog = app.catalog()?;
    let user = authenticate(&headers, &catalog)?;
    // Folders are tables only where the manifest lists them: on a 0.84 server.
    let files = tables::scan(&app.data_dir, app.generation.is_current())
        .map_err(|e| ApiError::internal(format!("listing the data folder: {e}")))?;
    let current = app.generation.is_current();
    let mut names: Vec<(String, Option<u64>)> = files
        .into_iter()
        .filter(|f| is_valid_id(&f.id))
        .map(|f| (f.id, Some(f.size)))
        .collect();
    for (name, meta) in &catalog.tables {
        if meta.is_remote() && !names.iter().any(|(n, _)| n == name) {
            names.push((name.clone(), None));
        }
    }
    names.sort();
    let mut tables: Vec<Value> = Vec::new();
    if current {
        for (id, name, description) in INTERNAL_TABLES {
            tables.push(json!({
                "id": id, "name": name, "description": description,
                "source_type": "internal", "query_mode": "internal", "server_only": false,
                "sql_flavor": "duckdb", "where_examples": [],
                "fetch_via": "query via `agnes query` (auto-routes server-side; local after the usage export + `agnes pull`)",
                "rough_size_hint": null, "rows": null, "size_bytes": null, "partition_by": null,
                "clustered_by": [], "entity_type": null, "metadata_freshness": "not_applicable",
            }));
        }
    }
    for (name, size) in &names {
        let meta = catalog.table(name).cloned().unwrap_or_default();
        let id = meta.registry_id(name);
        if !user.grant.allows(id) {
            continue;
        }
        tables.push(catalog_entry(id, name, &meta, *size, current));
    }
    Ok(json(
        StatusCode::OK,
        &json!({"tables": tables, "server_time": utc_with_offset(SystemTime::now())}),
    ))
}

/// One table of the v2 catalog, with the keys each generation sends.
/// `size`: the bytes of its data under its id (none for a remote table,
/// or one stored under a name that differs from its id).
fn catalog_entry(
    id: &str,
    name: &str,
    meta: &TableMeta,
    size: Option<u64>,
    current: bool,
) -> Value {
    let query_mode = meta.query_mode.as_deref().unwrap_or("local");
    let remote = meta.is_remote();
    let client = if current { "agnes" } else { "da" };
    let fetch_via = match (remote, meta.server_only && current) {
        (true, _) if current => format!(
            "agnes snapshot create {id} --select <cols> --where '<BQ predicate>' --limit <N>"
        ),
        (true, _) => format!("da fetch {id} --select <cols> --where '<BQ predicate>' --limit <N>"),
        (false, true) => {
            "server-only — not synced locally; query via `agnes query --remote`".to_string()
        }
        (false, false) => format!("already local — query directly via `{client} query`"),
    };
    // A table stored under another name has no data under its id: no hint.
    let size = size.filter(|_| id == name && current);
    let mut entry = json!({
        "id": id,
        "name": name,
        "description": meta.description.as_deref().unwrap_or(""),
        "source_type": meta.source_type.as_deref().unwrap_or(""),
        "query_mode": query_mode,
        "sql_flavor": if meta.is_bigquery() { "bigquery" } else { "duckdb" },
        "where_examples": [],
        "fetch_via": fetch_via,
        "rough_size_hint": size.map(size_bucket),
    });
    if current {
        entry["server_only"] = json!(meta.server_only);
        entry["rows"] = Value::Null;
        entry["size_bytes"] = Value::Null;
        entry["partition_by"] = Value::Null;
        entry["clustered_by"] = json!([]);
        entry["entity_type"] = Value::Null;
        entry["metadata_freshness"] = json!(if remote { "error" } else { "not_applicable" });
    }
    entry
}

/// The real server's `rough_size_hint` buckets.
fn size_bucket(bytes: u64) -> &'static str {
    match bytes {
        b if b <= 100 << 20 => "small",
        b if b <= 1 << 30 => "medium",
        b if b <= 10 << 30 => "large",
        _ => "very_large",
    }
}

/// `GET /api/v2/schema/{id}`: the table's columns with their type names.
pub async fn schema(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let outcome = async {
        let catalog = app.catalog().map_err(IntoResponse::into_response)?;
        let user = authenticate(&headers, &catalog).map_err(IntoResponse::into_response)?;
        let t = target(&app, &catalog, &user, &id, Asker::Schema)?;
        let t = Arc::new(t);
        let t2 = t.clone();
        let schema = blocking(move || t2.schema()).await?;
        let bigquery = t.meta.is_bigquery();
        // The hive partition columns, as the real server reads the folder.
        let partition_by = t
            .data
            .as_ref()
            .map(scan_data::partition_by)
            .filter(|names| !names.is_empty());
        Ok::<_, Response>(json(
            StatusCode::OK,
            &json!({
                "table_id": t.id,
                "source_type": t.meta.source_type.as_deref().unwrap_or(""),
                "sql_flavor": t.flavor(),
                "columns": scan_data::columns_json(&schema, bigquery),
                "partition_by": partition_by,
                "clustered_by": [],
                "where_dialect_hints": {},
            }),
        ))
    };
    outcome.await.unwrap_or_else(|r| r)
}

/// A scan request, checked against the table.
struct Request {
    target: Target,
    plan: Plan,
    body: Value,
}

/// Reads and checks a scan body; the errors are the real server's answers,
/// in its order: the model (400, pydantic's words), the table (404, 403),
/// `limit` (400), the data (404, 500), `where` (the validator's 400),
/// `select` and `order_by` (400).
async fn request(
    app: &Arc<App>,
    headers: &HeaderMap,
    body: &[u8],
    asker: Asker,
) -> Result<(Request, User, ScanLimits), Response> {
    let current = app.generation.is_current();
    let catalog = app.catalog().map_err(IntoResponse::into_response)?;
    let user = authenticate(headers, &catalog).map_err(IntoResponse::into_response)?;
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        // FastAPI's 422, at the character where decoding failed.
        let text = String::from_utf8_lossy(body);
        let position = text
            .lines()
            .take(e.line().saturating_sub(1))
            .map(|l| l.chars().count() + 1)
            .sum::<usize>()
            + e.column().saturating_sub(1);
        detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            pydantic::json_invalid(position, &e.to_string(), current),
        )
    })?;
    let Value::Object(obj) = &value else {
        return Err(detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!([{"loc": ["body"], "msg": "Input should be a valid dictionary or object to extract fields from",
                    "type": "model_attributes_type"}]),
        ));
    };
    let limits = catalog.scan.clone();
    let takes_queries = current && limits.from_query != Some(false);
    let mut value = value.clone();
    let raw_query = match obj.get("from_query") {
        Some(query) if takes_queries && asker == Asker::Scan && truthy(query) => {
            let exclusive = ["select", "where", "order_by", "limit"]
                .iter()
                .any(|k| obj.get(*k).is_some_and(truthy));
            if exclusive {
                return Err(ApiError::bad_request(
                    "from_query is mutually exclusive with select/where/order_by/limit",
                )
                .into_response());
            }
            let Some(query) = query.as_str() else {
                return Err(ApiError::bad_request("from_query must be a string").into_response());
            };
            value = from_query(query).map_err(rejected)?;
            Some(query.to_string())
        }
        // A server that does not take raw queries does not know the key.
        _ => None,
    };
    let obj = value.as_object().cloned().unwrap_or_default();
    let errors = pydantic::check_scan_request(&obj);
    if !errors.is_empty() {
        return Err(bad_body(&errors));
    }
    let text = |key: &str| obj.get(key).and_then(Value::as_str).map(String::from);
    let list = |key: &str| -> Option<Vec<String>> {
        obj.get(key).and_then(Value::as_array).map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(String::from))
                .collect()
        })
    };
    let table_id = text("table_id").unwrap_or_default();
    let limit = obj.get("limit").and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
    });
    let select = list("select");
    let order_by = list("order_by").unwrap_or_default();
    let where_text = text("where").filter(|w| !w.trim().is_empty());

    let t = target(app, &catalog, &user, &table_id, asker)?;
    if let Some(n) = limit.filter(|&n| n > MAX_LIMIT) {
        return Err(
            ApiError::bad_request(format!("limit {n} exceeds max {MAX_LIMIT}")).into_response(),
        );
    }
    let t = Arc::new(t);
    let t2 = t.clone();
    let schema = blocking(move || t2.schema()).await?;
    let t = Arc::unwrap_or_clone(t);

    let filter = match &where_text {
        None => None,
        Some(w) => {
            let mut e = predicate::parse(w).map_err(rejected)?;
            e.resolve(&schema).map_err(rejected)?;
            Some(e)
        }
    };
    let find = |name: &str| {
        schema
            .fields()
            .iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
            .map(|f| f.name().clone())
    };
    let select: Vec<String> = match select.filter(|cols| !cols.is_empty()) {
        None => schema.fields().iter().map(|f| f.name().clone()).collect(),
        Some(cols) => {
            if let Some(bad) = cols.iter().find(|c| !is_column_name(c)) {
                return Err(ApiError::bad_request(format!(
                    "invalid column name: {}",
                    pydantic::py_str(bad)
                ))
                .into_response());
            }
            let unknown: Vec<Value> = cols
                .iter()
                .filter(|c| find(c).is_none())
                .map(|c| json!(c))
                .collect();
            if !unknown.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "unknown columns: {}",
                    pydantic::py_repr(&Value::Array(unknown))
                ))
                .into_response());
            }
            cols.iter().filter_map(|c| find(c)).collect()
        }
    };
    let mut order = Vec::new();
    for term in &order_by {
        let entry = pydantic::py_str(term);
        let (column, descending) = order_term(term)
            .filter(|(c, _)| is_column_name(c) || c.is_empty())
            .ok_or_else(|| {
                ApiError::bad_request(format!("invalid order_by entry: {entry}")).into_response()
            })?;
        let column = find(&column).ok_or_else(|| {
            ApiError::bad_request(format!("unknown order_by column: {entry}")).into_response()
        })?;
        order.push(Order { column, descending });
    }
    for o in &order {
        let field = schema
            .field_with_name(&o.column)
            .map_err(|e| ApiError::internal(e.to_string()).into_response())?;
        if !scan_data::sortable(field.data_type()) {
            return Err(
                ApiError::bad_request(format!("cannot order by column '{}'", o.column))
                    .into_response(),
            );
        }
    }
    let limit = limit.map(|n| n as usize);
    let body = json!({"table_id": t.id, "select": select, "where": where_text,
                      "order_by": order_by, "limit": limit, "from_query": raw_query});
    let plan = Plan {
        select,
        filter,
        order,
        limit,
        cap_bytes: limits.max_result_bytes.unwrap_or(MAX_RESULT_BYTES),
    };
    Ok((
        Request {
            target: t,
            plan,
            body,
        },
        user,
        limits,
    ))
}

/// Python's truthiness of a JSON value, as the real server tests keys.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// The real server's column names: `^[A-Za-z_][A-Za-z0-9_]{0,63}$`.
fn is_column_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.len() <= 64
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `col`, `col ASC`, `col DESC`, the column bare or double-quoted.
fn order_term(term: &str) -> Option<(String, bool)> {
    let term = term.trim();
    let (column, rest) = match term.strip_prefix('"') {
        Some(quoted) => {
            let end = quoted.find('"')?;
            (quoted[..end].to_string(), &quoted[end + 1..])
        }
        None => {
            let end = term.find(char::is_whitespace).unwrap_or(term.len());
            (term[..end].to_string(), &term[end..])
        }
    };
    if column.is_empty() {
        return None;
    }
    match rest.trim().to_ascii_uppercase().as_str() {
        "" | "ASC" => Some((column, false)),
        "DESC" => Some((column, true)),
        _ => None,
    }
}

/// `SELECT cols FROM table [WHERE ...] [ORDER BY ...] [LIMIT n]` as a scan
/// body: the raw queries this server understands.
fn from_query(query: &str) -> Result<Value, Rejected> {
    let bad = |m: &str, part: &str| Rejected {
        kind: "parse_error",
        message: m.to_string(),
        part: part.chars().take(40).collect(),
    };
    let q = query.trim().trim_end_matches(';').trim();
    if q.contains(';') {
        return Err(Rejected {
            kind: "multi_statement",
            message: "only one statement is allowed".into(),
            part: q[q.find(';').unwrap_or(0)..].chars().take(40).collect(),
        });
    }
    let upper = q.to_ascii_uppercase();
    if !upper.starts_with("SELECT ") {
        let first = q.split_whitespace().next().unwrap_or("");
        return Err(Rejected {
            kind: "ddl_or_dml",
            message: "only a SELECT is allowed".into(),
            part: first.to_string(),
        });
    }
    let at = |kw: &str| top_level(q, kw);
    let from = at(" FROM ").ok_or_else(|| bad("a FROM clause is required", q))?;
    let where_at = at(" WHERE ");
    let order_at = at(" ORDER BY ");
    let limit_at = at(" LIMIT ");
    let end_of = |start: usize| {
        [where_at, order_at, limit_at]
            .into_iter()
            .flatten()
            .filter(|&p| p > start)
            .min()
            .unwrap_or(q.len())
    };
    let cols = q[7..from].trim();
    let table = q[from + 6..end_of(from)].trim();
    let table = table.trim_matches('"').trim_matches('`');
    if table.contains(char::is_whitespace) || table.contains(',') {
        return Err(bad("one table, without joins or aliases", table));
    }
    let mut body = json!({"table_id": table});
    if cols != "*" {
        let list: Vec<String> = cols
            .split(',')
            .map(|c| c.trim().trim_matches('"').to_string())
            .collect();
        if list.iter().any(|c| c.is_empty() || c.contains(['(', ' '])) {
            return Err(bad("only plain column names can be selected", cols));
        }
        body["select"] = json!(list);
    }
    if let Some(w) = where_at {
        body["where"] = json!(q[w + 7..end_of(w)].trim());
    }
    if let Some(o) = order_at {
        let terms: Vec<String> = q[o + 10..end_of(o)]
            .split(',')
            .map(|t| t.trim().to_string())
            .collect();
        body["order_by"] = json!(terms);
    }
    if let Some(l) = limit_at {
        let n: u64 = q[l + 7..]
            .trim()
            .parse()
            .map_err(|_| bad("LIMIT needs a number", &q[l..]))?;
        body["limit"] = json!(n);
    }
    Ok(body)
}

/// Where keyword `kw` (with its surrounding spaces) first occurs outside
/// quotes, case-insensitively.
fn top_level(q: &str, kw: &str) -> Option<usize> {
    let upper = q.to_ascii_uppercase();
    let bytes = q.as_bytes();
    let mut quote: Option<u8> = None;
    for i in 0..bytes.len() {
        match (quote, bytes[i]) {
            (Some(c), b) if b == c => quote = None,
            (Some(_), _) => {}
            (None, b @ (b'\'' | b'"')) => quote = Some(b),
            (None, _) if upper[i..].starts_with(kw) => return Some(i),
            _ => {}
        }
    }
    None
}

/// Running scans and result bytes per user and UTC day.
#[derive(Default)]
pub struct Quotas {
    users: Mutex<HashMap<String, Usage>>,
}

#[derive(Default)]
struct Usage {
    running: u64,
    day: u64,
    bytes: u64,
}

/// One running scan; dropping it frees its slot.
pub struct Running<'a> {
    quotas: &'a Quotas,
    user: String,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut users = self.quotas.users.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = users.get_mut(&self.user) {
            u.running = u.running.saturating_sub(1);
        }
    }
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Quotas {
    /// A slot for one more scan, or the 429 that says which quota is spent.
    fn begin(&self, user: &str, limits: &ScanLimits) -> Result<Running<'_>, Response> {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let u = users.entry(user.to_string()).or_default();
        let now = now_secs();
        if u.day != now / 86_400 {
            (u.day, u.bytes) = (now / 86_400, 0);
        }
        let max_running = limits.max_concurrent.unwrap_or(MAX_CONCURRENT);
        let daily = limits.daily_result_bytes.unwrap_or(DAILY_RESULT_BYTES);
        let exceeded = |kind: &str, current: u64, limit: u64, retry: u64| {
            let mut resp = detail(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": "quota_exceeded", "kind": kind, "current": current,
                       "limit": limit, "retry_after_seconds": retry}),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry));
            resp
        };
        if u.running >= max_running {
            return Err(exceeded("concurrent_scans", u.running, max_running, 5));
        }
        if u.bytes >= daily {
            let retry = 86_400 - now % 86_400;
            return Err(exceeded("daily_bytes", u.bytes, daily, retry));
        }
        u.running += 1;
        Ok(Running {
            quotas: self,
            user: user.to_string(),
        })
    }

    fn spent(&self, user: &str, bytes: u64) {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = users.get_mut(user) {
            u.bytes += bytes;
        }
    }
}

/// `POST /api/v2/scan`: the rows as an Arrow IPC stream, whole, with a
/// `Content-Length`, gzipped when the client offers it.
pub async fn scan(
    State(app): State<Arc<App>>,
    note: Option<Extension<ScanNote>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (req, user, limits) = match request(&app, &headers, &body, Asker::Scan).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if let Some(Extension(note)) = note {
        note.set(req.body.clone());
    }
    let data = match req.target.backend() {
        Ok(d) => d.clone(),
        Err(resp) => return resp,
    };
    let _running = match app.quotas.begin(&user.name, &limits) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let gzip = accepts_gzip(&headers);
    let plan = req.plan;
    let produced = tokio::task::spawn_blocking(move || {
        let out = scan_data::run(&data, &plan)?;
        let body = match gzip {
            false => out.body,
            true => {
                let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
                enc.write_all(&out.body).map_err(|e| e.to_string())?;
                enc.finish().map_err(|e| e.to_string())?
            }
        };
        Ok::<_, String>((body, out.rows, out.cut))
    })
    .await;
    let (bytes, rows, cut) = match produced {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => {
            return ApiError::bad_request(format!("scan of '{}' failed: {e}", req.target.id))
                .into_response()
        }
        Err(e) => return ApiError::internal(format!("scan task: {e}")).into_response(),
    };
    if cut {
        // Seen only by whoever runs the server, as with the real one.
        eprintln!(
            "agnes-server: the scan of '{}' reached the result cap; {rows} rows were sent",
            req.target.id
        );
    }
    app.quotas.spent(&user.name, bytes.len() as u64);
    let mut resp = Response::new(axum::body::Body::from(bytes));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ARROW_STREAM));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

/// `POST /api/v2/scan/estimate`: what a scan would cost. Zeros and nulls
/// for local tables, as on the real server; figures for remote ones.
pub async fn estimate(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let current = app.generation.is_current();
    let (req, _, _) = match request(&app, &headers, &body, Asker::Estimate).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let t = &req.target;
    if !t.meta.is_remote() {
        let mut estimate = json!({"table_id": t.id, "estimated_scan_bytes": 0,
                                  "estimated_result_rows": null, "estimated_result_bytes": null,
                                  "bq_cost_estimate_usd": 0.0});
        if current {
            estimate["engine"] = json!("local");
        }
        return json(StatusCode::OK, &estimate);
    }
    let data = match t.backend() {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    // A partitioned table's size is already its parts' sum.
    let size = data.size;
    let rows = t.meta.rows.unwrap_or_else(|| footer_rows(&app, data));
    let rows = req.plan.limit.map_or(rows, |n| rows.min(n as u64));
    let mut estimate = json!({"table_id": t.id, "estimated_scan_bytes": size,
                              "estimated_result_rows": rows, "estimated_result_bytes": size,
                              "bq_cost_estimate_usd": size as f64 / (1u64 << 40) as f64 * 6.25});
    if current {
        estimate["engine"] = json!(if t.meta.is_bigquery() || t.source() == "bigquery" {
            "bigquery"
        } else {
            "local"
        });
    }
    json(StatusCode::OK, &estimate)
}

/// Rows from the parquet footers: the file's, or the sum of the parts'.
fn footer_rows(app: &App, data: &TableFile) -> u64 {
    match &data.parts {
        None => app.facts.rows(data),
        Some(parts) => parts.iter().map(|p| app.facts.rows(&p.file)).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_terms() {
        assert_eq!(order_term("amount DESC"), Some(("amount".into(), true)));
        assert_eq!(order_term(" id "), Some(("id".into(), false)));
        assert_eq!(order_term("\"a b\" asc"), Some(("a b".into(), false)));
        assert_eq!(order_term("id; DROP"), None);
        assert_eq!(order_term("id DESC NULLS"), None);
        assert_eq!(order_term(""), None);
    }

    #[test]
    fn raw_queries_become_scans() {
        let v = from_query(
            "SELECT order_id, amount FROM orders WHERE amount > 5 AND status = 'x LIMIT 3' ORDER BY amount DESC LIMIT 7;",
        )
        .unwrap();
        assert_eq!(v["table_id"], "orders");
        assert_eq!(v["select"], json!(["order_id", "amount"]));
        assert_eq!(v["where"], "amount > 5 AND status = 'x LIMIT 3'");
        assert_eq!(v["order_by"], json!(["amount DESC"]));
        assert_eq!(v["limit"], 7);
        let v = from_query("select * from \"in.c-crm.people\"").unwrap();
        assert_eq!(v["table_id"], "in.c-crm.people");
        assert!(v.get("select").is_none());
        assert_eq!(from_query("DROP TABLE x").unwrap_err().kind, "ddl_or_dml");
        assert_eq!(
            from_query("SELECT 1; SELECT 2").unwrap_err().kind,
            "multi_statement"
        );
        assert_eq!(
            from_query("SELECT * FROM a, b").unwrap_err().kind,
            "parse_error"
        );
    }
}
