//! Hive partition columns of a partitioned table (0.84): the `key=value`
//! folders of each part's path, as DuckDB's `read_parquet(...,
//! hive_partitioning = true)` presents them. Upstream's client reads synced
//! parts that way, and the real server reads its tables as DuckDB does, so
//! `/api/v2` must give the same columns, types and values.
//!
//! What DuckDB (1.4 and 2.0) does, and this module copies:
//! - the columns come after the file's columns, sorted by name (byte
//!   order: DuckDB keeps them in a sorted map), not in folder order; a
//!   partition column that is also inside the files keeps the file's
//!   position but takes the path's type and value;
//! - values are percent-decoded, keys are not; `NULL` and
//!   `__HIVE_DEFAULT_PARTITION__` are NULL;
//! - a column's type is DATE, TIMESTAMP or BIGINT when every non-NULL value
//!   of it parses as that (tried in that order, strictly: `007` is no
//!   BIGINT), else VARCHAR.
//!
//! Where DuckDB refuses parts whose keys differ ("Hive partition mismatch"),
//! this server gives the missing column NULL, as `union_by_name` does for a
//! column missing from a file.

use std::sync::Arc;

use arrow::array::TimestampMicrosecondArray;
use arrow::array::{new_null_array, ArrayRef, Date32Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::fault_layer::percent_decode;
use crate::isotime::days_from_civil;
use crate::tables::TableFile;

/// The values DuckDB reads as NULL in a partition folder's name.
const NULL_VALUES: &[&str] = &["NULL", "__HIVE_DEFAULT_PARTITION__"];

/// The types a partition value can take, in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Date,
    Timestamp,
    Bigint,
    Varchar,
}

impl Kind {
    /// The narrowest kind `text` parses as.
    fn of(text: &str) -> Kind {
        if parse_date(text).is_some() {
            Kind::Date
        } else if parse_timestamp(text).is_some() {
            Kind::Timestamp
        } else if parse_bigint(text).is_some() {
            Kind::Bigint
        } else {
            Kind::Varchar
        }
    }

    fn data_type(self) -> DataType {
        match self {
            Kind::Date => DataType::Date32,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::Bigint => DataType::Int64,
            Kind::Varchar => DataType::Utf8,
        }
    }
}

/// One partition column: its name, its type and its text in each part
/// (`None` for NULL, or for a part without the key).
struct Column {
    name: String,
    kind: Kind,
    values: Vec<Option<String>>,
}

/// The partition columns of a table; none for a single file or a folder
/// without `key=value` folders.
pub struct Hive {
    columns: Vec<Column>,
}

impl Hive {
    /// The partition columns of `table`, from its parts' paths (no I/O).
    pub fn of(table: &TableFile) -> Hive {
        let Some(parts) = &table.parts else {
            return Hive { columns: vec![] };
        };
        let mut columns: Vec<Column> = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            for (key, value) in keys(&part.path) {
                let at = match columns.iter().position(|c| c.name == key) {
                    Some(at) => at,
                    None => {
                        columns.push(Column {
                            name: key,
                            kind: Kind::Varchar,
                            values: vec![None; parts.len()],
                        });
                        columns.len() - 1
                    }
                };
                columns[at].values[i] = value;
            }
        }
        for c in &mut columns {
            c.kind = common_kind(&c.values);
        }
        columns.sort_by(|a, b| a.name.cmp(&b.name));
        Hive { columns }
    }

    /// The partition columns' names, in the table's order (by name).
    pub fn names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// Whether `name` is a partition column (read from the path, never
    /// from the files).
    pub fn has(&self, name: &str) -> bool {
        self.columns.iter().any(|c| c.name == name)
    }

    /// The table's schema: the files' columns, a partition column among
    /// them retyped in place, then the other partition columns.
    pub fn table_schema(&self, files: SchemaRef) -> SchemaRef {
        if self.columns.is_empty() {
            return files;
        }
        let retyped = |f: &Field| match self.columns.iter().find(|c| c.name == *f.name()) {
            Some(c) => Field::new(f.name(), c.kind.data_type(), true),
            None => f.clone(),
        };
        let mut fields: Vec<Field> = files.fields().iter().map(|f| retyped(f)).collect();
        for c in &self.columns {
            if files.field_with_name(&c.name).is_err() {
                fields.push(Field::new(&c.name, c.kind.data_type(), true));
            }
        }
        Arc::new(Schema::new_with_metadata(fields, files.metadata().clone()))
    }

    /// Column `name` of part `part` for a batch of `rows` rows: its one
    /// value repeated, or `None` when `name` is no partition column.
    pub fn column(&self, part: usize, name: &str, rows: usize) -> Option<ArrayRef> {
        let c = self.columns.iter().find(|c| c.name == name)?;
        let data_type = c.kind.data_type();
        let Some(text) = c.values.get(part).cloned().flatten() else {
            return Some(new_null_array(&data_type, rows));
        };
        // The kind was chosen because every value parses as it.
        let array: ArrayRef = match c.kind {
            Kind::Date => Arc::new(Date32Array::from(vec![parse_date(&text); rows])),
            Kind::Timestamp => {
                Arc::new(TimestampMicrosecondArray::from(vec![
                    parse_timestamp(&text);
                    rows
                ]))
            }
            Kind::Bigint => Arc::new(Int64Array::from(vec![parse_bigint(&text); rows])),
            Kind::Varchar => Arc::new(StringArray::from(vec![text; rows])),
        };
        Some(array)
    }
}

/// The `key=value` folders of a part's relative path, in order: the value
/// percent-decoded (DuckDB writes `y z` as `y%20z`), `None` for NULL. A key
/// repeated further down keeps its first value, as in DuckDB.
fn keys(path: &str) -> Vec<(String, Option<String>)> {
    let mut found: Vec<(String, Option<String>)> = Vec::new();
    let folders = path.rsplit_once('/').map_or("", |(dirs, _)| dirs);
    for component in folders.split('/') {
        // `k=a=b` is no partition folder for DuckDB.
        let mut split = component.split('=');
        let (Some(key), Some(value), None) = (split.next(), split.next(), split.next()) else {
            continue;
        };
        if key.is_empty() || found.iter().any(|(k, _)| k == key) {
            continue;
        }
        let value = match NULL_VALUES.contains(&value) {
            true => None,
            false => Some(percent_decode(value)),
        };
        found.push((key.to_string(), value));
    }
    found
}

/// The kind every non-NULL value shares; VARCHAR when they differ or when
/// there are none.
fn common_kind(values: &[Option<String>]) -> Kind {
    let mut kinds = values.iter().flatten().map(|v| Kind::of(v));
    let Some(first) = kinds.next() else {
        return Kind::Varchar;
    };
    match kinds.all(|k| k == first) {
        true => first,
        false => Kind::Varchar,
    }
}

/// A BIGINT as DuckDB's strict cast reads it: surrounding spaces, an
/// optional `-`, digits without a leading zero.
fn parse_bigint(text: &str) -> Option<i64> {
    let t = text.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    let plain = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    if !plain || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    t.parse().ok()
}

/// A DATE `Y-M-D` (month and day of one or two digits, a real day), in
/// days since 1970-01-01, surrounding spaces allowed.
fn parse_date(text: &str) -> Option<i32> {
    let (days, rest) = date_prefix(text.trim())?;
    rest.is_empty().then_some(days)
}

/// A TIMESTAMP `Y-M-D[ T]H:M[:S[.fraction]]` without a time zone, in
/// microseconds since 1970-01-01.
fn parse_timestamp(text: &str) -> Option<i64> {
    let (days, rest) = date_prefix(text.trim())?;
    let time = rest.strip_prefix([' ', 'T'])?;
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut hms = clock.split(':');
    let mut field = |max: u32| -> Option<i64> {
        let f = hms.next()?;
        let n: u32 =
            (f.len() == 2 && f.bytes().all(|b| b.is_ascii_digit())).then(|| f.parse().ok())??;
        (n <= max).then_some(i64::from(n))
    };
    let (h, m) = (field(23)?, field(59)?);
    let s = match clock.matches(':').count() {
        1 if fraction.is_empty() => 0,
        2 => field(59)?,
        _ => return None,
    };
    let micros = match fraction {
        "" => 0,
        f if f.len() <= 6 && f.bytes().all(|b| b.is_ascii_digit()) => {
            f.parse::<i64>().ok()? * 10i64.pow(6 - f.len() as u32)
        }
        _ => return None,
    };
    Some(((i64::from(days) * 24 + h) * 60 + m) * 60_000_000 + s * 1_000_000 + micros)
}

/// The date at the start of `text` and what follows it.
fn date_prefix(text: &str) -> Option<(i32, &str)> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(text.len());
    let mut ymd = text[..end].split('-');
    let (Some(y), Some(m), Some(d), None) = (ymd.next(), ymd.next(), ymd.next(), ymd.next()) else {
        return None;
    };
    let number = |s: &str, max_len: usize| -> Option<u32> {
        let ok = !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| s.parse().ok()).flatten()
    };
    let (y, m, d) = (number(y, 6)?, number(m, 2)?, number(d, 2)?);
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if d == 0 || d > days_in_month {
        return None;
    }
    let days = i32::try_from(days_from_civil(i64::from(y), m, d)).ok()?;
    Some((days, &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_folders_of_a_path() {
        let some = |k: &str, v: &str| (k.to_string(), Some(v.to_string()));
        assert_eq!(
            keys("day=2026-01-02/tag=y%20z/data_0.parquet"),
            [some("day", "2026-01-02"), some("tag", "y z")]
        );
        assert_eq!(
            keys("a=1/x/a=2/b=/p.parquet"),
            [some("a", "1"), some("b", "")]
        );
        assert_eq!(
            keys("k=NULL/j=__HIVE_DEFAULT_PARTITION__/p.parquet"),
            [("k".into(), None), ("j".into(), None)]
        );
        assert!(keys("k=1.parquet").is_empty());
        assert!(keys("k=a=b/=1/x/p.parquet").is_empty());
    }

    /// The kinds, as DuckDB 2.0 detects them (checked with `DESCRIBE`).
    #[test]
    fn kinds_as_duckdb_detects_them() {
        let cases = [
            ("1", Kind::Bigint),
            ("-3", Kind::Bigint),
            ("-0", Kind::Bigint),
            (" 3", Kind::Bigint),
            ("20260102", Kind::Bigint),
            ("9223372036854775807", Kind::Bigint),
            ("-9223372036854775808", Kind::Bigint),
            ("9223372036854775808", Kind::Varchar),
            ("007", Kind::Varchar),
            ("00", Kind::Varchar),
            ("+3", Kind::Varchar),
            ("1.5", Kind::Varchar),
            ("1e3", Kind::Varchar),
            ("2026-01-02", Kind::Date),
            ("2026-1-3", Kind::Date),
            ("26-01-02", Kind::Date),
            ("2024-02-29", Kind::Date),
            ("2026-02-29", Kind::Varchar),
            ("2026-13-01", Kind::Varchar),
            ("2026-01-02 10:00:00", Kind::Timestamp),
            ("2026-01-02T10:00:00.123456", Kind::Timestamp),
            ("true", Kind::Varchar),
            ("", Kind::Varchar),
            ("null", Kind::Varchar),
        ];
        for (text, kind) in cases {
            assert_eq!(Kind::of(text), kind, "{text:?}");
        }
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-03-01"), Some(20_513));
        assert_eq!(parse_date("1969-12-31"), Some(-1));
        assert_eq!(
            parse_timestamp("1970-01-02 00:00:01.5"),
            Some(86_401_500_000)
        );
    }

    #[test]
    fn differing_kinds_are_varchar_and_nulls_take_no_part() {
        let v = |xs: &[Option<&str>]| -> Vec<Option<String>> {
            xs.iter().map(|x| x.map(String::from)).collect()
        };
        assert_eq!(common_kind(&v(&[Some("1"), Some("2")])), Kind::Bigint);
        assert_eq!(common_kind(&v(&[None, Some("2026-01-01")])), Kind::Date);
        assert_eq!(
            common_kind(&v(&[Some("2026-01-02"), Some("1")])),
            Kind::Varchar
        );
        assert_eq!(common_kind(&v(&[None, None])), Kind::Varchar);
    }
}
