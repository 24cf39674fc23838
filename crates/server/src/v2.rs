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

fn rejected(r: Rejected) -> Response {
    detail(
        StatusCode::BAD_REQUEST,
        json!({"error": "validator_rejected", "kind": r.kind,
               "details": {"message": r.message, "part": r.part}}),
    )
}

/// FastAPI's answer to a body that does not fit the request model.
fn unprocessable(field: &str, message: &str) -> Response {
    detail(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!([{"type": "value_error", "loc": ["body", field], "msg": message}]),
    )
}

/// A table the caller may scan, with its data when the server has some:
/// one file, or (0.84) the parts of a partitioned table.
#[derive(Clone)]
struct Target {
    id: String,
    meta: TableMeta,
    data: Option<TableFile>,
}

fn target(app: &App, catalog: &Catalog, user: &User, id: &str) -> Result<Target, Response> {
    let not_found = || ApiError::not_found(format!("Table '{id}' not found")).into_response();
    if !is_valid_id(id) {
        return Err(not_found());
    }
    let meta = catalog.table(id).cloned();
    // Folders are tables only where the manifest lists them: on a 0.84 server.
    let data = tables::find(&app.data_dir, id, app.generation.is_current()).map_err(|e| {
        ApiError::internal(format!("looking for table '{id}' in the data folder: {e}"))
            .into_response()
    })?;
    if data.is_none() && !meta.as_ref().is_some_and(|m| m.is_remote()) {
        return Err(not_found());
    }
    if !user.grant.allows(id) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Access to table '{id}' is not granted to user '{}'",
                user.name
            ),
        )
        .into_response());
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
                json!({"error": "not_configured",
                       "message": format!("table '{}' is a {} table and this server has no {} backend configured",
                           self.id, self.source(), self.source())}),
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
    let mut ids: Vec<String> = files
        .into_iter()
        .map(|f| f.id)
        .filter(|id| is_valid_id(id))
        .collect();
    for (id, meta) in &catalog.tables {
        if meta.is_remote() && !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids.sort();
    let tables: Vec<Value> = ids
        .iter()
        .filter(|id| user.grant.allows(id))
        .map(|id| {
            let meta = catalog.table(id).cloned().unwrap_or_default();
            json!({
                "id": id,
                "name": id,
                "description": "",
                "source_type": meta.source_type.as_deref().unwrap_or(""),
                "query_mode": meta.query_mode.as_deref().unwrap_or("local"),
                "sql_flavor": if meta.is_bigquery() { "bigquery" } else { "duckdb" },
                "server_only": meta.server_only,
                "where_examples": [],
            })
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({"tables": tables, "server_time": utc_with_offset(SystemTime::now())}),
    ))
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
        let t = target(&app, &catalog, &user, &id)?;
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
                "where_dialect_hints": [],
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

/// Reads and checks a scan body; the errors are the real server's answers.
async fn request(
    app: &Arc<App>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Request, User, ScanLimits), Response> {
    let catalog = app.catalog().map_err(IntoResponse::into_response)?;
    let user = authenticate(headers, &catalog).map_err(IntoResponse::into_response)?;
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| unprocessable("body", &format!("JSON decode error: {e}")))?;
    let Value::Object(obj) = &value else {
        return Err(unprocessable("body", "Input should be an object"));
    };
    let limits = catalog.scan.clone();
    let mut value = value.clone();
    if let Some(query) = obj.get("from_query") {
        if limits.from_query == Some(false) {
            // A 0.29 server does not know the key: the table is missing.
            return Err(unprocessable("table_id", "Field required"));
        }
        let Some(query) = query.as_str() else {
            return Err(unprocessable(
                "from_query",
                "Input should be a valid string",
            ));
        };
        value = from_query(query).map_err(rejected)?;
    }
    let raw_query = obj
        .get("from_query")
        .and_then(Value::as_str)
        .map(String::from);
    let obj = value.as_object().cloned().unwrap_or_default();
    let text = |key: &str| -> Result<Option<String>, Response> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(unprocessable(key, "Input should be a valid string")),
        }
    };
    let list = |key: &str| -> Result<Option<Vec<String>>, Response> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(String::from)
                        .ok_or_else(|| unprocessable(key, "Input should be a list of strings"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(unprocessable(key, "Input should be a valid list")),
        }
    };
    let table_id = text("table_id")?.ok_or_else(|| unprocessable("table_id", "Field required"))?;
    let limit = match obj.get("limit") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Some(n as usize),
            _ => {
                return Err(unprocessable(
                    "limit",
                    "Input should be greater than or equal to 1",
                ))
            }
        },
    };
    let select = list("select")?;
    let order_by = list("order_by")?.unwrap_or_default();
    let where_text = text("where")?.filter(|w| !w.trim().is_empty());

    let t = target(app, &catalog, &user, &table_id)?;
    let t = Arc::new(t);
    let t2 = t.clone();
    let schema = blocking(move || t2.schema()).await?;
    let t = Arc::unwrap_or_clone(t);

    let find = |name: &str| {
        schema
            .fields()
            .iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
            .map(|f| f.name().clone())
    };
    let mut unknown = Vec::new();
    let select: Vec<String> = match select {
        None => schema.fields().iter().map(|f| f.name().clone()).collect(),
        Some(cols) => cols
            .iter()
            .filter_map(|c| find(c).or_else(|| (unknown.push(c.clone()), None).1))
            .collect(),
    };
    let mut order = Vec::new();
    for term in &order_by {
        let (column, descending) = order_term(term).ok_or_else(|| {
            rejected(Rejected {
                kind: "parse_error",
                message: format!("invalid order_by term {term:?}"),
                part: term.clone(),
            })
        })?;
        match find(&column) {
            Some(column) => order.push(Order { column, descending }),
            None => unknown.push(column),
        }
    }
    if !unknown.is_empty() {
        let names: Vec<String> = unknown.iter().map(|c| format!("'{c}'")).collect();
        return Err(
            ApiError::bad_request(format!("unknown columns: [{}]", names.join(", ")))
                .into_response(),
        );
    }
    if select.is_empty() {
        return Err(unprocessable("select", "List should have at least 1 item"));
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
    let filter = match &where_text {
        None => None,
        Some(w) => {
            let mut e = predicate::parse(w).map_err(rejected)?;
            e.resolve(&schema).map_err(rejected)?;
            Some(e)
        }
    };
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
            return Err(exceeded("daily_result_bytes", u.bytes, daily, retry));
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
    let (req, user, limits) = match request(&app, &headers, &body).await {
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
    let (req, _, _) = match request(&app, &headers, &body).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let t = &req.target;
    if !t.meta.is_remote() {
        return json(
            StatusCode::OK,
            &json!({"table_id": t.id, "estimated_scan_bytes": 0, "estimated_result_rows": 0,
                    "estimated_result_bytes": 0, "bq_cost_estimate_usd": null}),
        );
    }
    let data = match t.backend() {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    // A partitioned table's size is already its parts' sum.
    let size = data.size;
    let rows = t.meta.rows.unwrap_or_else(|| footer_rows(&app, data));
    let rows = req.plan.limit.map_or(rows, |n| rows.min(n as u64));
    json(
        StatusCode::OK,
        &json!({"table_id": t.id, "estimated_scan_bytes": size, "estimated_result_rows": rows,
                "estimated_result_bytes": size,
                "bq_cost_estimate_usd": size as f64 / (1u64 << 40) as f64 * 6.25}),
    )
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
