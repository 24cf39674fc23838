//! Which names from the server may become file names and SQL identifiers.
//!
//! Table ids become `<id>.parquet` and a view name; memory item ids become
//! `km_<id>.md`. The old CLI trusted both (CONTRACT.md, a **fix**).

/// Why a table id from the manifest is refused.
pub fn check_table_id(id: &str) -> Result<(), String> {
    // The server's own pattern: ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$
    let mut chars = id.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if id.is_empty() || id.len() > 128 || !first_ok || !rest_ok {
        return Err(format!(
            "table id {:?} is not allowed (ids must match ^[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}$); refused",
            truncate(id, 80)
        ));
    }
    if id.trim_matches('.').is_empty() || id.contains("..") {
        return Err(format!("table id {id:?} looks like a path; refused"));
    }
    Ok(())
}

/// Why a part path of a partitioned table is refused. It becomes a path
/// under `server/parquet/<id>/`, so it must stay inside that folder: a
/// relative path of `/`-separated names, each of letters, digits and
/// `_ . = - ~ %` (hive partitions are `key=value`, and DuckDB writes any
/// other character of a value as `%XX`: a name is never decoded, so `%2e%2e`
/// is a name, not `..`), none hidden or `.`/`..`,
/// ending in `.parquet` (the view reads `**/*.parquet`, so anything else
/// would silently be left out of it).
pub fn check_part_path(path: &str) -> Result<(), String> {
    let refuse = |why: &str| {
        Err(format!(
            "part path {:?} {why}; refused (the table is not synced)",
            truncate(path, 80)
        ))
    };
    if path.is_empty() || path.len() > 1024 {
        return refuse("is empty or longer than 1024 bytes");
    }
    if path.starts_with('/') || path.contains('\\') || path.contains(':') {
        return refuse("is absolute or not a relative /-separated path");
    }
    let names: Vec<&str> = path.split('/').collect();
    if names.len() > 16 {
        return refuse("is nested more than 16 folders deep");
    }
    for name in &names {
        if *name == ".." || *name == "." {
            return refuse("leaves the table's folder");
        }
        if name.is_empty() || name.starts_with('.') {
            return refuse("has an empty or hidden component");
        }
        if name.len() > 255 {
            return refuse("has a name longer than 255 bytes");
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '=' | '-' | '~' | '%'))
        {
            return refuse("has characters other than letters, digits and _ . = - ~ %");
        }
    }
    if !path.ends_with(".parquet") || path.ends_with("/.parquet") {
        return refuse("does not name a .parquet file");
    }
    Ok(())
}

/// Whether a memory item id may name a rules file (`^[A-Za-z0-9_-]{1,128}$`).
pub fn is_safe_item_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// At most `max` characters of `s`, for error messages about hostile input.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_dotted_and_hyphenated_ids_pass() {
        for id in [
            "orders",
            "in.c-crm.people",
            "_x",
            "A1",
            "a.b-c_d",
            &"x".repeat(128),
        ] {
            assert!(check_table_id(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn paths_quotes_and_sql_are_refused() {
        for id in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a\\b",
            ".hidden",
            "-x",
            "a..b",
            "x'; DROP TABLE t; --",
            "a\"b",
            "a b",
            "é",
            &"x".repeat(129),
        ] {
            assert!(check_table_id(id).is_err(), "{id:?} should be refused");
        }
    }

    #[test]
    fn part_paths_stay_in_the_table_folder() {
        for ok in [
            "2026_01.parquet",
            "year=2026/month=01/part-0.parquet",
            "a.b-c_d.parquet",
            // DuckDB's hive writer escapes a value's other characters.
            "tag=a%20b/data_0.parquet",
            "k=x~y/p.parquet",
            // A name is never decoded: this is one odd file name, in the folder.
            "a%2F..%2Fb.parquet",
        ] {
            assert!(check_part_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../x.parquet",
            "a/../../x.parquet",
            "/etc/x.parquet",
            "a//b.parquet",
            "./x.parquet",
            ".hidden.parquet",
            "a/.agnes-x/b.parquet",
            "a\\b.parquet",
            "C:x.parquet",
            "a b.parquet",
            "é.parquet",
            "x.csv",
            "x.parquet/",
            "a/.parquet",
            "x\0.parquet",
        ] {
            let err = check_part_path(bad).unwrap_err();
            assert!(err.contains("refused"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn item_ids() {
        assert!(is_safe_item_id("sql-style_2"));
        for id in ["", "../etc", "a.b", "a b", &"x".repeat(129)] {
            assert!(!is_safe_item_id(id), "{id:?}");
        }
    }

    #[test]
    fn truncate_counts_characters() {
        assert_eq!(truncate("ééé", 2), "éé…");
        assert_eq!(truncate("ab", 2), "ab");
    }
}
