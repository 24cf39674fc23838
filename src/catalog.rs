//! The engine's `Catalog` over DuckDB: views in the database that loaded
//! agnes, and parquet footers read by DuckDB itself.
//!
//! agnes marks its views so it can tell them from the user's and never
//! replaces or drops one of those: a view over a synced parquet carries the
//! mark in its own definition, as the alias of what it reads
//! (`SELECT * FROM read_parquet('<path>') AS "agnes: <path>"`); a view over a
//! table on the server carries a comment (`agnes: agnes_scan('<id>') ...`).
//! Views that earlier versions made carry `agnes: <parquet path>` as their
//! comment, and are agnes's as well.
//!
//! Why not a comment on every view (issue 25): `COMMENT ON VIEW` is a
//! second catalog entry per view, kept until the sync's query ends. For
//! 10,000 views it cost 40% of the time DuckDB takes to make them and
//! 55 MiB of memory; an alias costs nothing.

use std::collections::HashMap;
use std::path::Path;

use agnes_engine::{Catalog, Existing, OlderView, ScanGuard};

use crate::host::Host;
use crate::sql::{glob_literal, identifier, literal};

const MARK: &str = "agnes: ";
/// What follows `MARK` in the comment of a view over `agnes_scan()`.
const SCAN_MARK: &str = "agnes_scan(";

pub struct DuckDbCatalog<'a> {
    pub host: &'a Host,
}

/// What a view reads: one parquet file, or a partitioned table's folder of
/// parts (CONTRACT.md §7), read together by column name, with hive
/// `key=value` folders as columns. The path is taken literally (glob
/// characters in it match only themselves).
pub fn parquet_source(parquet: &Path) -> String {
    let path = glob_literal(&parquet.to_string_lossy());
    match parquet.is_dir() {
        true => format!(
            "read_parquet({}, union_by_name = true, hive_partitioning = true)",
            literal(&format!("{path}/**/*.parquet"))
        ),
        false => format!("read_parquet({})", literal(&path)),
    }
}

/// Views made by one `duckdb_query` call in `create_views`: enough that the
/// calls cost nothing next to the views, few enough that the SQL text of a
/// batch stays small.
const VIEWS_PER_STATEMENT: usize = 256;

/// Agnes's view `name` over `parquet`, its mark the alias of what it reads.
fn view_sql(name: &str, parquet: &Path) -> String {
    let path = parquet.to_string_lossy();
    format!(
        "CREATE OR REPLACE VIEW {view} AS SELECT * FROM {source} AS {mark};",
        view = identifier(name),
        source = parquet_source(parquet),
        mark = identifier(&format!("{MARK}{path}")),
    )
}

/// The parquet path in the mark of a view's definition, as DuckDB gives it
/// back (`... AS "agnes: <path>";`). Read from the end: the path inside the
/// quoted alias may hold anything, each `"` doubled.
fn alias_mark(sql: &str) -> Option<String> {
    let body = sql
        .trim_end()
        .strip_suffix(';')?
        .trim_end()
        .strip_suffix('"')?;
    let bytes = body.as_bytes();
    let mut i = bytes.len();
    let open = loop {
        let at = bytes[..i].iter().rposition(|&b| b == b'"')?;
        match at.checked_sub(1).filter(|&j| bytes[j] == b'"') {
            Some(j) => i = j,
            None => break at,
        }
    };
    if !body[..open].ends_with(" AS ") {
        return None;
    }
    let alias = body[open + 1..].replace("\"\"", "\"");
    alias.strip_prefix(MARK).map(str::to_string)
}

impl DuckDbCatalog<'_> {
    /// What goes before agnes's view names in the rows, if anything
    /// (issue 13, case 10). agnes creates its views on its own connection,
    /// in the database and schema that loaded it; the caller's connection
    /// may have `USE`d another database since, and no API of the C band
    /// agnes keeps to tells which. With one database of one schema, none
    /// other can be current and the plain name finds the view. With more,
    /// the rows give the full name, `"db"."main"."orders"`, which finds
    /// agnes's view from any of them, never a table of the same name in
    /// the one the caller uses.
    pub fn view_prefix(&self) -> Option<String> {
        let rows = self
            .host
            .with_connection(|con| {
                con.query(
                    "SELECT current_database(), current_schema(), \
                     (SELECT count(*) FROM duckdb_schemas() WHERE database_name IN \
                      (SELECT database_name FROM duckdb_databases() WHERE NOT internal))",
                )
            })
            .ok()?;
        let [Some(database), Some(schema), Some(count)] =
            <[Option<String>; 3]>::try_from(rows.into_iter().next()?).ok()?
        else {
            return None;
        };
        (count.parse::<u64>().ok()? > 1)
            .then(|| format!("{}.{}.", identifier(&database), identifier(&schema)))
    }
}

impl Catalog for DuckDbCatalog<'_> {
    fn relations(&self) -> Result<HashMap<String, Existing>, String> {
        let rows = self.host.with_connection(|con| {
            con.query(
                "SELECT view_name, 'view', coalesce(comment, ''), sql FROM duckdb_views() \
                 WHERE NOT internal AND NOT temporary AND database_name = current_database() AND schema_name = current_schema() \
                 UNION ALL \
                 SELECT table_name, 'table', '', '' FROM duckdb_tables() \
                 WHERE NOT temporary AND database_name = current_database() AND schema_name = current_schema()",
            )
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let [Some(name), Some(kind), comment, sql] = <[Option<String>; 4]>::try_from(row)
                .map_err(|_| "unexpected catalog row".to_string())?
            else {
                continue;
            };
            let marked = (kind == "view")
                .then(|| sql.as_deref().and_then(alias_mark))
                .flatten();
            if let Some(parquet) = marked {
                out.insert(name.to_lowercase(), Existing::AgnesView { parquet });
                continue;
            }
            let existing = match comment.as_deref().and_then(|c| c.strip_prefix(MARK)) {
                Some(scan) if kind == "view" && scan.starts_with(SCAN_MARK) => {
                    // `agnes_scan('<id>') <signature>`; the id has no quote.
                    let rest = &scan[SCAN_MARK.len()..];
                    let (call, signature) = rest.split_once(") ").unwrap_or((rest, ""));
                    Existing::AgnesScanView {
                        table_id: call.trim_end_matches(')').trim_matches('\'').to_string(),
                        signature: signature.to_string(),
                    }
                }
                Some(parquet) if kind == "view" => Existing::AgnesView {
                    parquet: parquet.to_string(),
                },
                _ => Existing::UserRelation { kind },
            };
            out.insert(name.to_lowercase(), existing);
        }
        Ok(out)
    }

    fn create_view(&self, name: &str, parquet: &Path) -> Result<(), String> {
        let sql = format!("BEGIN; {} COMMIT;", view_sql(name, parquet));
        self.host.with_connection(|con| {
            con.execute(&sql).inspect_err(|_| {
                let _ = con.execute("ROLLBACK");
            })
        })
    }

    /// All in one transaction, a batch of statements at a time; if any
    /// fails, nothing of it stays and each view is made on its own, so that
    /// one bad view fails alone.
    fn create_views(&self, views: &[(&str, &Path)]) -> Vec<Result<(), String>> {
        if views.len() < 2 {
            return views.iter().map(|(n, p)| self.create_view(n, p)).collect();
        }
        let together = self.host.with_connection(|con| {
            con.execute("BEGIN")?;
            let mut sql = String::new();
            for batch in views.chunks(VIEWS_PER_STATEMENT) {
                sql.clear();
                for (name, parquet) in batch {
                    sql.push_str(&view_sql(name, parquet));
                }
                if let Err(e) = con.execute(&sql) {
                    let _ = con.execute("ROLLBACK");
                    return Err(e);
                }
            }
            con.execute("COMMIT").inspect_err(|_| {
                let _ = con.execute("ROLLBACK");
            })
        });
        match together {
            Ok(()) => views.iter().map(|_| Ok(())).collect(),
            Err(_) => views.iter().map(|(n, p)| self.create_view(n, p)).collect(),
        }
    }

    fn create_scan_view(
        &self,
        name: &str,
        table_id: &str,
        guard: ScanGuard,
        signature: &str,
    ) -> Result<(), String> {
        // The id passed check_table_id (letters, digits, `_`, `.`, `-`),
        // and is quoted as a literal all the same.
        let scan = format!(
            "agnes_scan({id}, max_rows := {max}, known_rows := {known})",
            id = literal(table_id),
            max = guard.max_rows.min(i64::MAX as u64),
            known = guard.known_rows.min(i64::MAX as u64),
        );
        let sql = format!(
            "BEGIN; CREATE OR REPLACE VIEW {view} AS SELECT * FROM {scan}; COMMENT ON VIEW {view} IS {mark}; COMMIT;",
            view = identifier(name),
            mark = literal(&format!("{MARK}{SCAN_MARK}{}) {signature}", literal(table_id))),
        );
        self.host.with_connection(|con| {
            con.execute(&sql).inspect_err(|_| {
                let _ = con.execute("ROLLBACK");
            })
        })
    }

    fn older_client_views(&self) -> Result<Vec<OlderView>, String> {
        let rows = self.host.with_connection(|con| {
            con.query(
                "SELECT view_name, sql FROM duckdb_views() \
                 WHERE NOT internal AND NOT temporary AND database_name = current_database() AND schema_name = current_schema() \
                 AND NOT starts_with(coalesce(comment, ''), 'agnes: ')",
            )
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let [Some(name), Some(sql)] = <[Option<String>; 2]>::try_from(row).ok()? else {
                    return None;
                };
                // The definition must also name this very view.
                crate::older_views::parse(&sql).filter(|v| v.name == name)
            })
            .collect())
    }

    fn drop_view(&self, name: &str) -> Result<(), String> {
        let sql = format!("DROP VIEW IF EXISTS {}", identifier(name));
        self.host.with_connection(|con| con.execute(&sql))
    }

    fn parquet_rows(&self, path: &Path) -> Result<u64, String> {
        let sql = format!(
            "SELECT num_rows FROM parquet_file_metadata({})",
            literal(&glob_literal(&path.to_string_lossy()))
        );
        let rows = self.host.with_connection(|con| con.query(&sql))?;
        let count = rows.first().and_then(|r| r.first().cloned().flatten());
        count
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| format!("no row count in the footer of {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_is_read_back_from_the_definition_duckdb_gives() {
        // As DuckDB 1.4.4, 1.5.6 and 2.0.0 give it back.
        let sql = r#"CREATE VIEW t AS SELECT * FROM read_parquet('/w/we"ird AS "agnes: x/t.parquet') AS "agnes: /w/we""ird AS ""agnes: x/t.parquet";"#;
        assert_eq!(
            alias_mark(sql).as_deref(),
            Some(r#"/w/we"ird AS "agnes: x/t.parquet"#)
        );
        let made = view_sql("t", Path::new("/w/s/t.parquet"));
        assert!(made.ends_with(r#" AS "agnes: /w/s/t.parquet";"#), "{made}");
        for other in [
            "CREATE VIEW t AS SELECT * FROM read_parquet('/w/t.parquet');",
            r#"CREATE VIEW t AS SELECT * FROM read_parquet('/w/t.parquet') AS "mine";"#,
            r#"CREATE VIEW t AS SELECT 'AS "agnes: x' AS "a";"#,
            r#"CREATE VIEW t AS SELECT * FROM x AS"agnes: /w/t.parquet";"#,
        ] {
            assert_eq!(alias_mark(other), None, "{other}");
        }
    }
}
