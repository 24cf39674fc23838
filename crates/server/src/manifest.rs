//! `GET /api/sync/manifest`: the tables this user may read, with the change
//! token (`hash`) of each, as the contract shapes it.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};

use crate::app::App;
use crate::auth::{authenticate, User};
use crate::catalog::{Catalog, HashMode, TableMeta};
use crate::isotime::{utc_naive, utc_with_offset};
use crate::reply::{json, ApiError, ApiResult};
use crate::tables::{self, FactCache, TableFile};

/// The `hash` of a remote-only table: any non-empty token does.
const REMOTE_HASH: &str = "x";

pub async fn handler(State(app): State<Arc<App>>, headers: HeaderMap) -> ApiResult {
    let catalog = app.catalog()?;
    let user = authenticate(&headers, &catalog)?;
    let app2 = app.clone();
    // Hashing reads whole files: keep it off the async workers.
    let manifest = tokio::task::spawn_blocking(move || build(&app2, &catalog, &user))
        .await
        .map_err(|e| ApiError::internal(format!("building the manifest: {e}")))??;
    Ok(json(StatusCode::OK, &manifest))
}

/// The manifest for `user`: files of the folder plus the catalog's
/// remote-only tables, filtered to the user's grant.
fn build(app: &App, catalog: &Catalog, user: &User) -> ApiResult<Value> {
    let current = app.generation.is_current();
    let files = tables::scan(&app.data_dir, current).map_err(|e| {
        ApiError::internal(format!(
            "listing the data folder {}: {e}",
            app.data_dir.display()
        ))
    })?;
    let mut out = Map::new();
    for file in &files {
        if !user.grant.allows(&file.id) {
            continue;
        }
        let meta = catalog.table(&file.id).cloned().unwrap_or_default();
        let mut entry = match &file.parts {
            None => file_entry(&app.facts, file, &meta)?,
            Some(parts) => partitioned_entry(&app.facts, file, parts, &meta)?,
        };
        if current {
            current_extras(app, file, &meta, &mut entry);
        }
        out.insert(file.id.clone(), entry);
    }
    for (id, meta) in &catalog.tables {
        if meta.is_remote() && !out.contains_key(id) && user.grant.allows(id) {
            let mut entry = remote_only_entry(meta);
            if current {
                entry["server_only"] = json!(false);
            }
            out.insert(id.clone(), entry);
        }
    }
    let assets = catalog
        .assets
        .clone()
        .unwrap_or_else(|| json!({"docs": {"hash": docs_hash(&files)}}));
    let mut manifest = json!({
        "tables": out,
        "assets": assets,
        "server_time": utc_with_offset(SystemTime::now()),
    });
    if current {
        // Subscriptions only when the catalog gives them, so that a plain
        // data folder syncs every table on either generation.
        for (key, value) in [
            ("data_packages", &catalog.data_packages),
            ("direct_tables", &catalog.direct_tables),
        ] {
            if let Some(value) = value {
                manifest[key] = value.clone();
            }
        }
        manifest["memory_domains"] = json!([]);
        manifest["knowledge_artifacts"] = json!([]);
    }
    Ok(manifest)
}

/// The keys a 0.84 server adds to a table entry: `server_only` always, a
/// signed URL when the catalog asks for one (single-file tables only).
fn current_extras(app: &App, file: &TableFile, meta: &TableMeta, entry: &mut Value) {
    entry["server_only"] = json!(meta.server_only);
    let (Some(variant), Some(store), None) = (&meta.signed_url, app.store.get(), &file.parts)
    else {
        return;
    };
    let (url, expires) = store.signed(&file.id, variant, meta.signed_url_expires_at.as_deref());
    entry["signed_url"] = json!(url);
    entry["signed_url_expires_at"] = json!(expires);
}

/// A partitioned table (0.84): each part's MD5 and size, the top-level hash
/// a rollup of them, rows summed from the parts' footers; `extra_parts`
/// from the catalog appended as they are.
fn partitioned_entry(
    facts: &FactCache,
    file: &TableFile,
    parts: &[tables::PartFile],
    meta: &TableMeta,
) -> ApiResult<Value> {
    let mut listed = Vec::with_capacity(parts.len());
    let mut hashes = Vec::with_capacity(parts.len());
    let mut rows = 0;
    for part in parts {
        let md5 = facts.md5(&part.file).map_err(|e| {
            ApiError::internal(format!("hashing {}: {e}", part.file.path.display()))
        })?;
        rows += facts.rows(&part.file);
        hashes.push((part.path.clone(), md5.clone()));
        // `hash: empty` leaves the parts without one: only the structural
        // check and X-Agnes-Content-MD5 are left to the client.
        let shown = match meta.hash {
            HashMode::Empty => String::new(),
            _ => md5,
        };
        listed.push(json!({"path": part.path, "hash": shown, "size_bytes": part.file.size}));
    }
    listed.extend(meta.extra_parts.iter().cloned());
    Ok(json!({
        "hash": tables::rollup(&hashes),
        "updated": utc_naive(file.modified),
        "size_bytes": file.size,
        "rows": meta.rows.unwrap_or(rows),
        "query_mode": meta.query_mode.as_deref().unwrap_or("local"),
        "source_type": meta.source_type.as_deref().unwrap_or(""),
        "parts": listed,
    }))
}

fn file_entry(facts: &FactCache, file: &TableFile, meta: &TableMeta) -> ApiResult<Value> {
    let hash = match &meta.hash {
        HashMode::Md5 => facts
            .md5(file)
            .map_err(|e| ApiError::internal(format!("hashing {}: {e}", file.path.display())))?,
        HashMode::Version => tables::version_token(file),
        HashMode::Empty => String::new(),
        HashMode::Literal(text) => text.clone(),
    };
    let entry = json!({
        "hash": hash,
        "updated": utc_naive(file.modified),
        "size_bytes": file.size,
        "rows": meta.rows.unwrap_or_else(|| facts.rows(file)),
        "query_mode": meta.query_mode.as_deref().unwrap_or("local"),
        "source_type": meta.source_type.as_deref().unwrap_or(""),
    });
    Ok(entry)
}

/// A table queried on the server: nothing to download, so no `updated`.
fn remote_only_entry(meta: &TableMeta) -> Value {
    let hash = match &meta.hash {
        HashMode::Literal(text) => text.clone(),
        HashMode::Empty => String::new(),
        HashMode::Md5 | HashMode::Version => REMOTE_HASH.to_string(),
    };
    json!({
        "hash": hash,
        "size_bytes": 0,
        "rows": meta.rows.unwrap_or(0),
        "query_mode": "remote",
        "source_type": meta.source_type.as_deref().unwrap_or(""),
    })
}

/// The docs asset's change token: the newest file's mtime in seconds, like
/// the real server's (a number as a string).
fn docs_hash(files: &[TableFile]) -> String {
    let newest = files.iter().map(|f| f.mtime_ns()).max().unwrap_or(0);
    (newest / 1_000_000_000).to_string()
}
