//! `GET /api/sync/manifest`: the tables this user may read, with the change
//! token (`hash`) of each, as the contract shapes it.

use std::collections::HashMap;
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

/// `updated` of a remote table without a file: fixed, so that its entry
/// (and a client's scan view over it) stays the same from run to run.
const REMOTE_UPDATED: &str = "2026-01-01T00:00:00";

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
/// remote-only tables, keyed by name, filtered to the user's grant (by
/// registry id); on a 0.84 server also the user's data packages and the
/// other three lists it always sends.
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
        let id = catalog.id_of(&file.id);
        if !user.grant.allows(&id) {
            continue;
        }
        let meta = catalog.table(&file.id).cloned().unwrap_or_default();
        let mut entry = match &file.parts {
            None => file_entry(&app.facts, file, &meta)?,
            Some(parts) => partitioned_entry(&app.facts, file, parts, &meta)?,
        };
        if current {
            current_extras(app, file, &meta, user.only_available(&id), &mut entry);
        }
        out.insert(file.id.clone(), entry);
    }
    for (name, meta) in &catalog.tables {
        let id = meta.registry_id(name);
        if meta.is_remote() && !out.contains_key(name) && user.grant.allows(id) {
            let mut entry = remote_only_entry(meta);
            if current {
                entry["server_only"] = json!(meta.server_only || user.only_available(id));
            }
            out.insert(name.clone(), entry);
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
        // Registry ids that differ from their names, looked up once: a
        // package of every table (a catalog without packages) of 100,000
        // tables must not search the catalog for each.
        let renamed: HashMap<&str, &str> = catalog
            .tables
            .iter()
            .filter_map(|(name, m)| Some((m.id.as_deref()?, name.as_str())))
            .collect();
        let name_of = |id: &str| -> Option<String> {
            match renamed.get(id) {
                Some(name) => Some(name.to_string()),
                None => catalog
                    .table(id)
                    .is_none_or(|m| m.registry_id(id) == id)
                    .then(|| id.to_string()),
            }
        };
        let objects = |ids: &mut dyn Iterator<Item = &String>| -> Vec<Value> {
            ids.filter_map(|id| {
                let name = name_of(id).unwrap_or_else(|| id.clone());
                let entry = out.get(&name)?;
                Some(table_object(id, &name, entry))
            })
            .collect()
        };
        let packages: Vec<Value> = user
            .stack
            .iter()
            .map(|(p, _)| {
                let mut tables = objects(&mut p.tables.iter());
                if p.all {
                    tables.extend(
                        out.iter()
                            .map(|(name, entry)| table_object(&catalog.id_of(name), name, entry)),
                    );
                }
                tables.extend(p.literal_tables.iter().cloned());
                let total: u64 = tables.iter().filter_map(|t| t["size_bytes"].as_u64()).sum();
                json!({"id": p.id, "slug": p.slug, "name": p.name, "icon": null, "color": null,
                       "description": p.description, "requirement": p.requirement,
                       "tables": tables, "total_size_bytes": total})
            })
            .collect();
        // Always present, possibly empty, as on the real server.
        manifest["data_packages"] = json!(packages);
        manifest["memory_domains"] = json!([]);
        let mut direct = objects(&mut catalog.direct_tables.iter());
        direct.extend(catalog.direct_literal.iter().cloned());
        manifest["direct_tables"] = json!(direct);
        manifest["knowledge_artifacts"] = json!([]);
    }
    Ok(manifest)
}

/// A table as `data_packages[].tables[]` lists it: the flat entry with
/// `id` and `name`, `md5` beside `hash`, the access-policy keys, and
/// never a signed URL.
fn table_object(id: &str, name: &str, entry: &Value) -> Value {
    let mut object = json!({
        "id": id,
        "name": name,
        "hash": entry["hash"],
        "md5": entry["hash"],
        "size_bytes": entry["size_bytes"],
        "rows": entry["rows"],
        "query_mode": entry["query_mode"],
        "server_only": entry["server_only"],
        "access_policy": false,
        "access_policy_fingerprint": null,
        "source_type": entry["source_type"],
        "updated": entry["updated"],
    });
    if let Some(parts) = entry.get("parts") {
        object["parts"] = parts.clone();
    }
    object
}

/// The keys a 0.84 server adds to a table entry: `server_only` always, a
/// signed URL when the catalog asks for one (single-file tables only).
/// `server_only` is the registry flag or `only_available` (a package not
/// materialized for this user); a server-only table gets no signed URL.
fn current_extras(
    app: &App,
    file: &TableFile,
    meta: &TableMeta,
    only_available: bool,
    entry: &mut Value,
) {
    let server_only = meta.server_only || only_available;
    entry["server_only"] = json!(server_only);
    let (Some(variant), Some(store), None, false) =
        (&meta.signed_url, app.store.get(), &file.parts, server_only)
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

/// A table queried on the server, without a file: as the real servers list
/// one, `hash` `""` (unless the catalog gives a literal) and size 0.
fn remote_only_entry(meta: &TableMeta) -> Value {
    let hash = match &meta.hash {
        HashMode::Literal(text) => text.clone(),
        _ => String::new(),
    };
    json!({
        "hash": hash,
        "updated": REMOTE_UPDATED,
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
