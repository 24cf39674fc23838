//! The engine's `Catalog` over DuckDB: views in the database that loaded
//! agnes, and parquet footers read by DuckDB itself.
//!
//! agnes marks its views with a comment (`agnes: <parquet path>`), so it can
//! tell them from the user's and never replaces or drops one of those.

use std::collections::HashMap;
use std::path::Path;

use agnes_engine::{Catalog, Existing};

use crate::host::Host;

const MARK: &str = "agnes: ";

pub struct DuckDbCatalog<'a> {
    pub host: &'a Host,
}

/// `name` as a quoted SQL identifier.
pub fn identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as a SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// What a view reads: one parquet file, or a partitioned table's folder of
/// parts (CONTRACT.md §7), read together by column name, with hive
/// `key=value` folders as columns.
fn parquet_source(parquet: &Path) -> String {
    let path = parquet.to_string_lossy();
    match parquet.is_dir() {
        true => format!(
            "read_parquet({}, union_by_name = true, hive_partitioning = true)",
            literal(&format!("{path}/**/*.parquet"))
        ),
        false => format!("read_parquet({})", literal(&path)),
    }
}

impl Catalog for DuckDbCatalog<'_> {
    fn relations(&self) -> Result<HashMap<String, Existing>, String> {
        self.host.with_connection(|con| {
        let mut stmt = con
            .prepare(
                "SELECT view_name, 'view', coalesce(comment, '') FROM duckdb_views() \
                 WHERE NOT internal AND NOT temporary AND database_name = current_database() AND schema_name = current_schema() \
                 UNION ALL \
                 SELECT table_name, 'table', '' FROM duckdb_tables() \
                 WHERE NOT temporary AND database_name = current_database() AND schema_name = current_schema()",
            )
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?)))
            .map_err(|e| e.to_string())?;
        let mut out = HashMap::new();
        for row in rows {
            let (name, kind, comment) = row.map_err(|e| e.to_string())?;
            let existing = match comment.strip_prefix(MARK) {
                Some(parquet) if kind == "view" => Existing::AgnesView { parquet: parquet.to_string() },
                _ => Existing::UserRelation { kind },
            };
            out.insert(name.to_lowercase(), existing);
        }
        Ok(out)
        })
    }

    fn create_view(&self, name: &str, parquet: &Path) -> Result<(), String> {
        let path = parquet.to_string_lossy();
        let sql = format!(
            "BEGIN; CREATE OR REPLACE VIEW {view} AS SELECT * FROM {source}; COMMENT ON VIEW {view} IS {mark}; COMMIT;",
            view = identifier(name),
            source = parquet_source(parquet),
            mark = literal(&format!("{MARK}{path}")),
        );
        self.host.with_connection(|con| {
            con.execute_batch(&sql).map_err(|e| {
                let _ = con.execute_batch("ROLLBACK");
                e.to_string()
            })
        })
    }

    fn drop_view(&self, name: &str) -> Result<(), String> {
        let sql = format!("DROP VIEW IF EXISTS {}", identifier(name));
        self.host
            .with_connection(|con| con.execute_batch(&sql).map_err(|e| e.to_string()))
    }

    fn parquet_rows(&self, path: &Path) -> Result<u64, String> {
        let sql = format!(
            "SELECT num_rows FROM parquet_file_metadata({})",
            literal(&path.to_string_lossy())
        );
        let rows: i64 = self.host.with_connection(|con| {
            con.query_row(&sql, [], |row| row.get(0))
                .map_err(|e| e.to_string())
        })?;
        u64::try_from(rows).map_err(|_| format!("negative row count {rows}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(identifier("in.c-crm.people"), "\"in.c-crm.people\"");
        assert_eq!(identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("/ws/it's/x.parquet"), "'/ws/it''s/x.parquet'");
    }
}
