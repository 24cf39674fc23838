//! SQL on agnes's own connection through the oldest C API calls there are
//! (`duckdb_query`, `duckdb_value_varchar`, prepared statements): all in the
//! v1.2.0 band, so they work in every DuckDB agnes loads in. The `duckdb`
//! crate's `Connection` queries go through functions of DuckDB 1.5 and later
//! and are not used (src/entry.rs).

use std::ffi::{CStr, CString};
use std::ptr;

use duckdb::ffi;

/// A connection of agnes's own to the database that loaded it.
pub struct RawConnection {
    con: ffi::duckdb_connection,
}

// SAFETY: a DuckDB connection may be used from any thread, one at a time;
// `Host` serialises every use behind its mutex.
unsafe impl Send for RawConnection {}

impl RawConnection {
    /// Connects to `database`, which must be valid for this call.
    ///
    /// # Safety
    /// `database` must be a live database handle (the entry point's).
    pub unsafe fn connect(database: ffi::duckdb_database) -> Result<RawConnection, String> {
        let mut con: ffi::duckdb_connection = ptr::null_mut();
        if ffi::duckdb_connect(database, &mut con) != ffi::DuckDBSuccess {
            ffi::duckdb_disconnect(&mut con);
            return Err("could not open a connection to this database".into());
        }
        Ok(RawConnection { con })
    }

    /// Runs `sql` (one or more statements), discarding any result.
    pub fn execute(&self, sql: &str) -> Result<(), String> {
        self.query(sql).map(|_| ())
    }

    /// Runs `sql` and returns its rows, each value as text (`None` for NULL).
    pub fn query(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
        let text = CString::new(sql).map_err(|_| "a statement contains a NUL byte".to_string())?;
        let mut result = Result_::new();
        // SAFETY: `con` is open, `text` is a C string, `result` is owned and destroyed by Drop.
        let state = unsafe { ffi::duckdb_query(self.con, text.as_ptr(), &mut result.0) };
        result.rows(state)
    }

    /// Prepares `sql` once, to run many times cheaply. The statement must be
    /// dropped before this connection.
    pub fn prepare(&self, sql: &str) -> Result<Prepared, String> {
        let text = CString::new(sql).map_err(|_| "a statement contains a NUL byte".to_string())?;
        let mut stmt: ffi::duckdb_prepared_statement = ptr::null_mut();
        // SAFETY: as in `query`; the statement is destroyed by `Prepared`'s Drop.
        let state = unsafe { ffi::duckdb_prepare(self.con, text.as_ptr(), &mut stmt) };
        let prepared = Prepared { stmt };
        if state != ffi::DuckDBSuccess {
            // SAFETY: the error belongs to the statement and lives as long as it.
            let error = unsafe { message(ffi::duckdb_prepare_error(stmt)) };
            return Err(error);
        }
        Ok(prepared)
    }
}

impl Drop for RawConnection {
    fn drop(&mut self) {
        // SAFETY: the connection is ours and not used after this.
        unsafe { ffi::duckdb_disconnect(&mut self.con) }
    }
}

/// A prepared statement on a `RawConnection`.
pub struct Prepared {
    stmt: ffi::duckdb_prepared_statement,
}

// SAFETY: used like its connection, one thread at a time behind `Host`'s mutex.
unsafe impl Send for Prepared {}

impl Prepared {
    /// Runs the statement and returns its rows as text.
    pub fn query(&self) -> Result<Vec<Vec<Option<String>>>, String> {
        let mut result = Result_::new();
        // SAFETY: the statement was prepared successfully on a live connection.
        let state = unsafe { ffi::duckdb_execute_prepared(self.stmt, &mut result.0) };
        result.rows(state)
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // SAFETY: the statement is ours and not used after this.
        unsafe { ffi::duckdb_destroy_prepare(&mut self.stmt) }
    }
}

/// A `duckdb_result`, destroyed when dropped.
struct Result_(ffi::duckdb_result);

impl Result_ {
    fn new() -> Self {
        // SAFETY: an all-zero duckdb_result is the documented "empty" value.
        Result_(unsafe { std::mem::zeroed() })
    }

    fn rows(&mut self, state: ffi::duckdb_state) -> Result<Vec<Vec<Option<String>>>, String> {
        let result = &mut self.0;
        // SAFETY: `result` was filled by duckdb_query/duckdb_execute_prepared;
        // indexes stay below the counts DuckDB reports; every string returned
        // by duckdb_value_varchar is freed with duckdb_free.
        unsafe {
            if state != ffi::DuckDBSuccess {
                return Err(message(ffi::duckdb_result_error(result)));
            }
            let columns = ffi::duckdb_column_count(result);
            let rows = ffi::duckdb_row_count(result);
            let mut out = Vec::with_capacity(rows as usize);
            for row in 0..rows {
                let mut values = Vec::with_capacity(columns as usize);
                for col in 0..columns {
                    if ffi::duckdb_value_is_null(result, col, row) {
                        values.push(None);
                        continue;
                    }
                    let text = ffi::duckdb_value_varchar(result, col, row);
                    values.push(Some(CStr::from_ptr(text).to_string_lossy().into_owned()));
                    ffi::duckdb_free(text.cast());
                }
                out.push(values);
            }
            Ok(out)
        }
    }
}

impl Drop for Result_ {
    fn drop(&mut self) {
        // SAFETY: destroying a zeroed or filled result is allowed once.
        unsafe { ffi::duckdb_destroy_result(&mut self.0) }
    }
}

/// DuckDB's error text, or a generic one when it gave none.
///
/// # Safety
/// `text` is null or a valid C string.
unsafe fn message(text: *const std::ffi::c_char) -> String {
    if text.is_null() {
        return "DuckDB reported an error without a message".into();
    }
    CStr::from_ptr(text).to_string_lossy().into_owned()
}

/// The version of the DuckDB agnes runs in (`v1.4.4`).
pub fn library_version() -> String {
    // SAFETY: returns a static C string.
    unsafe { message(ffi::duckdb_library_version()) }
}

/// `name` as a quoted SQL identifier.
pub fn identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A path DuckDB's readers take literally: they expand `*`, `?` and `[...]`
/// anywhere in a path (a workspace `ws[12]` read `ws1`'s files), and a
/// one-character class (`[[]`, `[*]`, `[?]`) matches only that character.
/// Checked on DuckDB 1.4.4, 1.5.6 and 2.0.0.
pub fn glob_literal(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '[' | '*' | '?' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

/// `text` as a SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(identifier("in.c-crm.people"), "\"in.c-crm.people\"");
        assert_eq!(identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("/ws/it's/x.parquet"), "'/ws/it''s/x.parquet'");
        assert_eq!(glob_literal("/a[12]/*?/]x"), "/a[[]12]/[*][?]/]x");
        // Windows paths: DuckDB's plain string literals give backslashes no meaning.
        assert_eq!(
            literal(r"C:\Users\me\ws\server\parquet\x.parquet"),
            r"'C:\Users\me\ws\server\parquet\x.parquet'"
        );
    }
}
