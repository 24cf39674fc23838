//! The server's `/api/v2` answers (CONTRACT.md §8): a table's schema, a
//! scan's request and estimate, and errors worded as the server words them:
//! the validator's kind and the offending part, which quota and when to
//! retry, a table without a backend, 403 and 404.
//!
//! Like the rest of the engine this knows nothing of DuckDB (or Arrow): it
//! hands over type names and bytes.

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::protocol::ids::truncate;

/// The media type of a scan's answer.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// The result cap of the real server: results over 2 GiB are cut without
/// any signal (CONTRACT.md §8).
pub const SERVER_RESULT_CAP: u64 = 2 << 30;

/// One column as the schema endpoint gives it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Column {
    pub name: String,
    /// In the table's SQL flavour (`BIGINT` or `INT64`, ...).
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(default)]
    pub nullable: Option<bool>,
}

/// A table's schema.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TableSchema {
    pub table_id: String,
    /// `duckdb` or `bigquery`; missing means `duckdb`.
    #[serde(default)]
    pub sql_flavor: Option<String>,
    pub columns: Vec<Column>,
}

/// What to scan: a table with an optional projection, filter, order and
/// limit, or a raw query (0.84's `from_query`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScanRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub select: Option<Vec<String>>,
    #[serde(rename = "where", skip_serializing_if = "Option::is_none")]
    pub where_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_by: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_query: Option<String>,
}

impl ScanRequest {
    /// How the request is named in messages.
    pub fn subject(&self) -> String {
        match (&self.table_id, &self.from_query) {
            (Some(id), _) => format!("table '{id}'"),
            (None, Some(q)) => format!("query {:?}", truncate(q, 60)),
            (None, None) => "nothing".into(),
        }
    }
}

/// The server's estimate of a scan. Local tables get zeros and nulls.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Estimate {
    #[serde(default)]
    pub estimated_result_rows: Option<u64>,
    #[serde(default)]
    pub estimated_result_bytes: Option<u64>,
    #[serde(default)]
    pub estimated_scan_bytes: Option<u64>,
}

/// The `detail` of an error body as text, or the body itself.
pub(crate) fn plain_detail(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => match v.get("detail") {
            Some(Value::String(s)) => truncate(s, 300),
            Some(other) => truncate(&other.to_string(), 300),
            None => truncate(text.trim(), 300),
        },
        Err(_) => truncate(text.trim(), 300),
    }
}

/// The server's answer `status`/`body` to a `what` of `subject`, worded for
/// the user: the validator's kind and part, the quota and when to retry, a
/// missing backend, access and existence.
pub fn server_error(status: StatusCode, body: &[u8], subject: &str, what: &str) -> String {
    let code = status.as_u16();
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let detail = value.as_ref().and_then(|v| v.get("detail"));
    let field = |name: &str| -> Option<String> {
        detail.and_then(|d| d.get(name)).map(|v| match v {
            Value::String(s) => truncate(s, 200),
            other => truncate(&other.to_string(), 200),
        })
    };
    match field("error").as_deref() {
        Some("validator_rejected") => {
            let kind = field("kind").unwrap_or_else(|| "unknown".into());
            let details = detail.and_then(|d| d.get("details"));
            let text = |key: &str| details.and_then(|d| d.get(key)).and_then(Value::as_str);
            let mut out = format!(
                "the server's validator rejected the where text of {subject} (validator_rejected, kind {kind})"
            );
            // The real server names the column or the function it refused
            // (CONTRACT.md §8); other keys are shown as they came.
            let named = [("column", "column"), ("function", "function")]
                .iter()
                .find_map(|(key, word)| text(key).map(|v| format!("{word} {:?}", truncate(v, 60))));
            let message = text("message").or_else(|| text("reason"));
            match (named, message) {
                (Some(named), _) => out.push_str(&format!(", at {named}")),
                (None, Some(m)) => out.push_str(&format!(": {}", truncate(m, 200))),
                (None, None) => {
                    if let Some(d) =
                        details.filter(|d| d.as_object().is_some_and(|o| !o.is_empty()))
                    {
                        out.push_str(&format!(": {}", truncate(&d.to_string(), 200)));
                    }
                }
            }
            if let Some(p) = text("part")
                .or_else(|| text("offending"))
                .filter(|p| !p.is_empty())
            {
                out.push_str(&format!(", at {:?}", truncate(p, 60)));
            }
            out
        }
        Some("quota_exceeded") => {
            let kind = field("kind").unwrap_or_else(|| "unknown".into());
            let mut out =
                format!("the server refused the {what} of {subject}: quota {kind} exceeded");
            if let (Some(current), Some(limit)) = (field("current"), field("limit")) {
                out.push_str(&format!(" ({current} of {limit})"));
            }
            match field("retry_after_seconds") {
                Some(s) => out.push_str(&format!("; retry in {s} s")),
                None => out.push_str("; retry later"),
            }
            out
        }
        Some(error @ ("not_configured" | "auth_failed")) => {
            let message = field("message")
                .or_else(|| field("detail"))
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            let why = match error {
                "not_configured" => "the server has no backend configured for it",
                _ => "the server could not sign in to its backend",
            };
            format!("{subject} cannot be queried: {why} (HTTP {code} {error}){message}")
        }
        _ => {
            let text = plain_detail(body);
            match code {
                403 => format!("access to {subject} is not granted (403): {text}"),
                404 => format!("{subject} was not found on the server (404): {text}"),
                // 0.29 has no `from_query`: FastAPI refuses the body
                // (422), or 0.29's model asks for the `table_id` it lacks.
                422 | 400
                    if what == "scan"
                        && subject.starts_with("query")
                        && (code == 422 || text.contains("table_id")) =>
                {
                    format!(
                    "this server does not take raw queries (agnes_scan(query := ...) needs Agnes 0.84 or newer); \
                     use agnes_scan('<table id>', where := ...) (HTTP {code}: {text})"
                    )
                }
                400 if text.starts_with("unknown columns") => {
                    format!("{subject}: {text} (HTTP 400)")
                }
                _ => format!("the {what} of {subject} failed: HTTP {code}: {text}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn says(status: u16, body: &str) -> String {
        server_error(
            StatusCode::from_u16(status).unwrap(),
            body.as_bytes(),
            "table 'orders'",
            "scan",
        )
    }

    #[test]
    fn server_errors_are_worded_as_the_server_words_them() {
        let m = says(
            400,
            r#"{"detail":{"error":"validator_rejected","kind":"unknown_function","details":{"message":"function lower() is not allowed","part":"lower("}}}"#,
        );
        assert!(m.contains("kind unknown_function"), "{m}");
        assert!(m.contains("at \"lower(\""), "{m}");
        // As the real 0.84 words it: the column or the function named.
        let m = says(
            400,
            r#"{"detail":{"error":"validator_rejected","kind":"unknown_column","details":{"column":"nope"}}}"#,
        );
        assert!(
            m.ends_with("kind unknown_column), at column \"nope\""),
            "{m}"
        );
        let m = says(
            400,
            r#"{"detail":{"error":"validator_rejected","kind":"unknown_function","details":{"function":"COUNT"}}}"#,
        );
        assert!(m.ends_with("at function \"COUNT\""), "{m}");
        let m = says(
            400,
            r#"{"detail":{"error":"validator_rejected","kind":"multi_statement","details":{}}}"#,
        );
        assert!(m.ends_with("kind multi_statement)"), "{m}");
        let m = says(
            429,
            r#"{"detail":{"error":"quota_exceeded","kind":"daily_bytes","current":10,"limit":5,"retry_after_seconds":3600}}"#,
        );
        assert!(
            m.contains("quota daily_bytes exceeded (10 of 5); retry in 3600 s"),
            "{m}"
        );
        let m = says(
            500,
            r#"{"detail":{"error":"not_configured","message":"no BigQuery"}}"#,
        );
        assert!(
            m.contains("no backend configured") && m.contains("no BigQuery"),
            "{m}"
        );
        let m = says(
            403,
            r#"{"detail":"Access to table 'orders' is not granted"}"#,
        );
        assert!(
            m.starts_with("access to table 'orders' is not granted (403)"),
            "{m}"
        );
        let m = says(404, r#"{"detail":"Table 'orders' not found"}"#);
        assert!(m.contains("not found on the server (404)"), "{m}");
        let m = says(400, r#"{"detail":"unknown columns: ['x']"}"#);
        assert!(m.contains("unknown columns: ['x']"), "{m}");
        let m = says(502, "<html>bad gateway</html>");
        assert!(m.contains("HTTP 502") && m.contains("bad gateway"), "{m}");
    }

    #[test]
    fn requests_leave_out_what_was_not_given() {
        let r = ScanRequest {
            table_id: Some("orders".into()),
            select: Some(vec!["a".into()]),
            where_: Some("a > 1".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"table_id":"orders","select":["a"],"where":"a > 1"}"#
        );
    }
}
