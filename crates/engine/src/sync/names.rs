//! Table ids that would be wrong as view names in DuckDB, though each is a
//! fine id on its own: two ids that differ only in case (DuckDB names are
//! case-insensitive, and so are the file systems of macOS and Windows), and
//! ids that would shadow DuckDB's own catalog views.

use std::collections::HashMap;

use crate::protocol::manifest::Manifest;

/// The prefixes of DuckDB's system views and functions (`duckdb_tables`,
/// `sqlite_master`, `pragma_database_list`, ...), compared without case.
const SYSTEM_PREFIXES: [&str; 3] = ["duckdb_", "sqlite_", "pragma_"];

/// The `pg_catalog` views, which DuckDB also resolves without a schema
/// (listed from `duckdb_views()` of DuckDB 1.5.6 and 2.0.0).
const PG_CATALOG: [&str; 22] = [
    "pg_am",
    "pg_attrdef",
    "pg_attribute",
    "pg_class",
    "pg_collation",
    "pg_constraint",
    "pg_database",
    "pg_depend",
    "pg_description",
    "pg_enum",
    "pg_index",
    "pg_indexes",
    "pg_namespace",
    "pg_prepared_statements",
    "pg_proc",
    "pg_sequence",
    "pg_sequences",
    "pg_settings",
    "pg_tables",
    "pg_tablespace",
    "pg_type",
    "pg_views",
];

/// Why `id` may not name a view, if it may not.
pub fn check_view_name(id: &str) -> Result<(), String> {
    let lower = id.to_ascii_lowercase();
    if SYSTEM_PREFIXES.iter().any(|p| lower.starts_with(p)) || PG_CATALOG.contains(&lower.as_str())
    {
        return Err(format!(
            "table id \"{id}\" is a name DuckDB uses for its own catalog (duckdb_*, sqlite_*, pragma_*, \
             pg_catalog views); a view by that name would shadow it; refused"
        ));
    }
    Ok(())
}

/// Marks as invalid every entry whose id shadows a DuckDB name, and of ids
/// that differ only in case all but one: the one this workspace already
/// has (`synced`), else the first by id.
pub fn refuse_clashes(manifest: &mut Manifest, synced: &dyn Fn(&str) -> bool) {
    let mut kept: HashMap<String, usize> = HashMap::new();
    for i in 0..manifest.tables.len() {
        let entry = &mut manifest.tables[i];
        if entry.invalid.is_some() {
            continue;
        }
        if let Err(reason) = check_view_name(&entry.id) {
            entry.invalid = Some(reason);
            continue;
        }
        let key = entry.id.to_lowercase();
        match kept.get(&key).copied() {
            None => {
                kept.insert(key, i);
            }
            Some(first) => {
                let (keep, refuse) =
                    match synced(&manifest.tables[i].id) && !synced(&manifest.tables[first].id) {
                        true => (i, first),
                        false => (first, i),
                    };
                let kept_id = manifest.tables[keep].id.clone();
                manifest.tables[refuse].invalid = Some(format!(
                    "table id \"{}\" differs from \"{kept_id}\" only in case; DuckDB names (and the files \
                     of macOS and Windows) do not tell them apart, so only \"{kept_id}\" is synced",
                    manifest.tables[refuse].id
                ));
                kept.insert(key, keep);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::manifest::parse;

    fn manifest(ids: &[&str]) -> Manifest {
        let tables: serde_json::Map<String, serde_json::Value> = ids
            .iter()
            .map(|id| (id.to_string(), serde_json::json!({"hash": "0".repeat(32)})))
            .collect();
        parse(
            serde_json::json!({ "tables": tables })
                .to_string()
                .as_bytes(),
        )
        .unwrap()
    }

    fn refused(m: &Manifest) -> Vec<&str> {
        m.tables
            .iter()
            .filter(|t| t.invalid.is_some())
            .map(|t| t.id.as_str())
            .collect()
    }

    #[test]
    fn system_names_are_refused_in_any_case() {
        let mut m = manifest(&[
            "duckdb_tables",
            "DUCKDB_VIEWS",
            "sqlite_master",
            "pragma_database_list",
            "pg_tables",
            "orders",
            "pg_orders",
            "tables",
        ]);
        refuse_clashes(&mut m, &|_| false);
        assert_eq!(
            refused(&m),
            [
                "DUCKDB_VIEWS",
                "duckdb_tables",
                "pg_tables",
                "pragma_database_list",
                "sqlite_master"
            ]
        );
        assert!(m
            .get("pg_tables")
            .unwrap()
            .invalid
            .as_ref()
            .unwrap()
            .contains("shadow"));
    }

    #[test]
    fn of_ids_differing_in_case_one_is_kept() {
        let mut m = manifest(&["Orders", "orders", "ORDERS", "customers"]);
        refuse_clashes(&mut m, &|_| false);
        assert_eq!(refused(&m), ["Orders", "orders"]);
        assert!(m
            .get("orders")
            .unwrap()
            .invalid
            .as_ref()
            .unwrap()
            .contains("\"ORDERS\" only in case"));
        // The one already synced here is the one kept.
        let mut m = manifest(&["Orders", "orders"]);
        refuse_clashes(&mut m, &|id| id == "orders");
        assert_eq!(refused(&m), ["Orders"]);
    }
}
