//! Column types of `agnes_scan`: the server's type names (DuckDB or BigQuery
//! flavour) as DuckDB types, and Arrow arrays written straight into DuckDB
//! vectors of those types.
//!
//! A name agnes does not know becomes VARCHAR, and its values are Arrow's
//! text form of them (README.md says so): a query still works, and the
//! column can be cast in SQL.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, Time64MicrosecondType, TimestampMicrosecondType, UInt16Type, UInt32Type, UInt64Type,
    UInt8Type,
};
use arrow_array::{Array, ArrayRef, ArrowPrimitiveType};
use arrow_schema::{DataType, TimeUnit};
use duckdb::core::{LogicalTypeHandle, LogicalTypeId};
use duckdb::ffi;

/// A column type of a scanned table, as declared to DuckDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Boolean,
    TinyInt,
    SmallInt,
    Integer,
    BigInt,
    UTinyInt,
    USmallInt,
    UInteger,
    UBigInt,
    Float,
    Double,
    Varchar,
    Blob,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Decimal(u8, u8),
}

/// `DECIMAL(p,s)` / `NUMERIC(p,s)`: the precision and scale, if valid for
/// DuckDB (1..=38, scale <= precision).
fn decimal_params(args: &str) -> Option<(u8, u8)> {
    let mut parts = args.split(',').map(|p| p.trim().parse::<u8>());
    let p = parts.next()?.ok()?;
    let s = match parts.next() {
        None => 0,
        Some(s) => s.ok()?,
    };
    if parts.next().is_some() || !(1..=38).contains(&p) || s > p {
        return None;
    }
    Some((p, s))
}

impl ColType {
    /// The type a server's type name stands for; `bigquery` when the table's
    /// `sql_flavor` is BigQuery (where `INTEGER` is INT64 and `TIMESTAMP`
    /// has a time zone). Unknown names are VARCHAR.
    pub fn from_name(name: &str, bigquery: bool) -> ColType {
        let upper = name.trim().to_ascii_uppercase();
        let (base, args) = match upper.split_once('(') {
            Some((b, rest)) => (b.trim(), rest.strip_suffix(')').map(str::trim)),
            None => (upper.as_str(), None),
        };
        use ColType::*;
        if bigquery {
            return match base {
                "INT64" | "INT" | "INTEGER" | "SMALLINT" | "BIGINT" | "TINYINT" | "BYTEINT" => {
                    BigInt
                }
                "FLOAT64" | "FLOAT" => Double,
                "BOOL" | "BOOLEAN" => Boolean,
                "STRING" => Varchar,
                "BYTES" => Blob,
                "DATE" => Date,
                "TIME" => Time,
                "DATETIME" => Timestamp,
                "TIMESTAMP" => TimestampTz,
                "NUMERIC" | "DECIMAL" => match args.and_then(decimal_params) {
                    Some((p, s)) => Decimal(p, s),
                    None => Decimal(38, 9),
                },
                // BIGNUMERIC (76 digits), GEOGRAPHY, JSON, INTERVAL,
                // ARRAY<...>, STRUCT<...>, RANGE<...>: as text.
                _ => Varchar,
            };
        }
        match base {
            "BOOLEAN" | "BOOL" | "LOGICAL" => Boolean,
            "TINYINT" | "INT1" => TinyInt,
            "SMALLINT" | "INT2" | "SHORT" => SmallInt,
            "INTEGER" | "INT" | "INT4" | "SIGNED" => Integer,
            "BIGINT" | "INT8" | "LONG" => BigInt,
            "UTINYINT" => UTinyInt,
            "USMALLINT" => USmallInt,
            "UINTEGER" => UInteger,
            "UBIGINT" => UBigInt,
            "FLOAT" | "FLOAT4" | "REAL" => Float,
            "DOUBLE" | "FLOAT8" => Double,
            "VARCHAR" | "TEXT" | "STRING" | "CHAR" | "BPCHAR" => Varchar,
            "BLOB" | "BYTEA" | "BINARY" | "VARBINARY" => Blob,
            "DATE" => Date,
            "TIME" => Time,
            "TIMESTAMP" | "DATETIME" | "TIMESTAMP_US" => Timestamp,
            "TIMESTAMP WITH TIME ZONE" | "TIMESTAMPTZ" => TimestampTz,
            "DECIMAL" | "NUMERIC" => match args {
                None => Decimal(18, 3),
                Some(a) => decimal_params(a).map_or(Varchar, |(p, s)| Decimal(p, s)),
            },
            "HUGEINT" | "INT128" => Decimal(38, 0),
            _ => Varchar,
        }
    }

    pub fn logical_type(self) -> LogicalTypeHandle {
        use ColType::*;
        let id = match self {
            Boolean => LogicalTypeId::Boolean,
            TinyInt => LogicalTypeId::Tinyint,
            SmallInt => LogicalTypeId::Smallint,
            Integer => LogicalTypeId::Integer,
            BigInt => LogicalTypeId::Bigint,
            UTinyInt => LogicalTypeId::UTinyint,
            USmallInt => LogicalTypeId::USmallint,
            UInteger => LogicalTypeId::UInteger,
            UBigInt => LogicalTypeId::UBigint,
            Float => LogicalTypeId::Float,
            Double => LogicalTypeId::Double,
            Varchar => LogicalTypeId::Varchar,
            Blob => LogicalTypeId::Blob,
            Date => LogicalTypeId::Date,
            Time => LogicalTypeId::Time,
            Timestamp => LogicalTypeId::Timestamp,
            TimestampTz => LogicalTypeId::TimestampTZ,
            Decimal(p, s) => return LogicalTypeHandle::decimal(p, s),
        };
        LogicalTypeHandle::from(id)
    }

    /// The type of an Arrow column of a raw query's result (which has no
    /// schema endpoint): what the schema endpoint would have said.
    pub fn from_arrow(t: &DataType) -> ColType {
        use ColType::*;
        match t {
            DataType::Boolean => Boolean,
            DataType::Int8 => TinyInt,
            DataType::Int16 => SmallInt,
            DataType::Int32 => Integer,
            DataType::Int64 => BigInt,
            DataType::UInt8 => UTinyInt,
            DataType::UInt16 => USmallInt,
            DataType::UInt32 => UInteger,
            DataType::UInt64 => UBigInt,
            DataType::Float16 | DataType::Float32 => Float,
            DataType::Float64 => Double,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Blob,
            DataType::Date32 | DataType::Date64 => Date,
            DataType::Time32(_) | DataType::Time64(_) => Time,
            DataType::Timestamp(_, None) => Timestamp,
            DataType::Timestamp(_, Some(_)) => TimestampTz,
            DataType::Decimal128(p, s) if *s >= 0 && *p <= 38 && (*s as u8) <= *p => {
                Decimal(*p, *s as u8)
            }
            _ => Varchar,
        }
    }

    /// The Arrow type whose values have this type's layout in a DuckDB
    /// vector; a column of another type is cast to it first.
    pub fn arrow_type(self) -> DataType {
        use ColType::*;
        match self {
            Boolean => DataType::Boolean,
            TinyInt => DataType::Int8,
            SmallInt => DataType::Int16,
            Integer => DataType::Int32,
            BigInt => DataType::Int64,
            UTinyInt => DataType::UInt8,
            USmallInt => DataType::UInt16,
            UInteger => DataType::UInt32,
            UBigInt => DataType::UInt64,
            Float => DataType::Float32,
            Double => DataType::Float64,
            Varchar => DataType::Utf8,
            Blob => DataType::Binary,
            Date => DataType::Date32,
            Time => DataType::Time64(TimeUnit::Microsecond),
            Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC"))),
            Decimal(p, s) => DataType::Decimal128(p, s as i8),
        }
    }

    /// Converts `array` to this type's Arrow layout.
    pub fn conform(self, array: &ArrayRef) -> Result<ArrayRef, String> {
        let want = self.arrow_type();
        let same = match (array.data_type(), &want) {
            // Only the unit matters for the values; the zone is a label.
            (DataType::Timestamp(u, Some(_)), DataType::Timestamp(w, Some(_))) => u == w,
            (got, want) => got == want,
        };
        if same {
            return Ok(array.clone());
        }
        arrow_cast::cast(array, &want).map_err(|e| {
            format!(
                "a {} column cannot be read as {:?}: {e}",
                array.data_type(),
                self
            )
        })
    }
}

/// Writes `array` (already `conform`ed to `col`) into the first
/// `array.len()` rows of `vector`.
///
/// # Safety
/// `vector` must be a writable flat vector of `col.logical_type()` with
/// room for `array.len()` rows.
pub unsafe fn write(
    col: ColType,
    array: &dyn Array,
    vector: ffi::duckdb_vector,
) -> Result<(), String> {
    use ColType::*;
    let rows = array.len();
    match col {
        Boolean => {
            let values = array.as_boolean();
            // DuckDB keeps a BOOLEAN as one byte, 0 or 1.
            let out = slice::<u8>(vector, rows);
            for (i, o) in out.iter_mut().enumerate() {
                *o = u8::from(values.value(i));
            }
        }
        TinyInt => copy::<Int8Type>(array, vector),
        SmallInt => copy::<Int16Type>(array, vector),
        Integer => copy::<Int32Type>(array, vector),
        BigInt => copy::<Int64Type>(array, vector),
        UTinyInt => copy::<UInt8Type>(array, vector),
        USmallInt => copy::<UInt16Type>(array, vector),
        UInteger => copy::<UInt32Type>(array, vector),
        UBigInt => copy::<UInt64Type>(array, vector),
        Float => copy::<Float32Type>(array, vector),
        Double => copy::<Float64Type>(array, vector),
        Date => copy::<Date32Type>(array, vector),
        Time => copy::<Time64MicrosecondType>(array, vector),
        Timestamp | TimestampTz => copy::<TimestampMicrosecondType>(array, vector),
        Decimal(p, _) => {
            let values = array.as_primitive::<Decimal128Type>().values();
            // DuckDB keeps a decimal in the smallest integer its width fits.
            match p {
                1..=4 => narrow::<i16>(values, vector),
                5..=9 => narrow::<i32>(values, vector),
                10..=18 => narrow::<i64>(values, vector),
                // HUGEINT: lower 64 bits, then upper, which is an i128 in
                // little-endian memory.
                _ => slice::<i128>(vector, rows).copy_from_slice(values),
            }
        }
        Varchar => {
            let values = array.as_string::<i32>();
            for i in 0..rows {
                if values.is_valid(i) {
                    let s = values.value(i);
                    ffi::duckdb_vector_assign_string_element_len(
                        vector,
                        i as u64,
                        s.as_ptr().cast(),
                        s.len() as u64,
                    );
                }
            }
        }
        Blob => {
            let values = array.as_binary::<i32>();
            for i in 0..rows {
                if values.is_valid(i) {
                    let b = values.value(i);
                    ffi::duckdb_vector_assign_string_element_len(
                        vector,
                        i as u64,
                        b.as_ptr().cast(),
                        b.len() as u64,
                    );
                }
            }
        }
    }
    if let Some(nulls) = array.logical_nulls().filter(|n| n.null_count() > 0) {
        ffi::duckdb_vector_ensure_validity_writable(vector);
        let validity = ffi::duckdb_vector_get_validity(vector);
        for i in 0..rows {
            if nulls.is_null(i) {
                ffi::duckdb_validity_set_row_invalid(validity, i as u64);
            }
        }
    }
    Ok(())
}

/// The vector's storage as `rows` values of `T`.
///
/// # Safety
/// `T` must be the vector's physical type, with room for `rows`.
unsafe fn slice<'a, T>(vector: ffi::duckdb_vector, rows: usize) -> &'a mut [T] {
    let data = ffi::duckdb_vector_get_data(vector) as *mut T;
    std::slice::from_raw_parts_mut(data, rows)
}

/// Copies a primitive array's values as they are (same layout both sides).
unsafe fn copy<T: ArrowPrimitiveType>(array: &dyn Array, vector: ffi::duckdb_vector) {
    let values = array.as_primitive::<T>().values();
    slice::<T::Native>(vector, values.len()).copy_from_slice(values);
}

/// Copies i128 decimals into a narrower integer vector; the declared
/// precision guarantees they fit.
unsafe fn narrow<T: TryFrom<i128> + Default + Copy>(values: &[i128], vector: ffi::duckdb_vector) {
    let out = slice::<T>(vector, values.len());
    for (o, v) in out.iter_mut().zip(values) {
        *o = T::try_from(*v).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Decimal128Array, Int32Array, StringArray, TimestampNanosecondArray};
    use ColType::*;

    #[test]
    fn duckdb_flavour_names() {
        let cases = [
            ("BIGINT", BigInt),
            ("integer", Integer),
            ("DECIMAL(11,2)", Decimal(11, 2)),
            ("DECIMAL( 38 , 10 )", Decimal(38, 10)),
            ("DECIMAL", Decimal(18, 3)),
            ("DECIMAL(50,2)", Varchar),
            ("DATE", Date),
            ("TIMESTAMP", Timestamp),
            ("TIMESTAMP WITH TIME ZONE", TimestampTz),
            ("VARCHAR", Varchar),
            ("BLOB", Blob),
            ("DOUBLE", Double),
            ("FLOAT", Float),
            ("BOOLEAN", Boolean),
            ("UBIGINT", UBigInt),
            ("HUGEINT", Decimal(38, 0)),
            ("BIGINT[]", Varchar),
            ("STRUCT(a INTEGER)", Varchar),
            ("GEOMETRY", Varchar),
        ];
        for (name, want) in cases {
            assert_eq!(ColType::from_name(name, false), want, "{name}");
        }
    }

    #[test]
    fn bigquery_flavour_names() {
        let cases = [
            ("INT64", BigInt),
            ("INTEGER", BigInt),
            ("STRING", Varchar),
            ("FLOAT64", Double),
            ("NUMERIC", Decimal(38, 9)),
            ("NUMERIC(10,2)", Decimal(10, 2)),
            ("BIGNUMERIC", Varchar),
            ("BOOL", Boolean),
            ("DATE", Date),
            ("DATETIME", Timestamp),
            ("TIMESTAMP", TimestampTz),
            ("TIME", Time),
            ("BYTES", Blob),
            ("GEOGRAPHY", Varchar),
            ("JSON", Varchar),
            ("ARRAY<INT64>", Varchar),
            ("STRUCT<a INT64>", Varchar),
        ];
        for (name, want) in cases {
            assert_eq!(ColType::from_name(name, true), want, "{name}");
        }
    }

    #[test]
    fn arrays_are_conformed_to_the_declared_type() {
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), None]));
        let wide = BigInt.conform(&ints).unwrap();
        assert_eq!(wide.data_type(), &DataType::Int64);
        assert_eq!(wide.null_count(), 1);
        let text = Varchar.conform(&ints).unwrap();
        assert_eq!(text.as_string::<i32>().value(0), "1");
        let dec: ArrayRef = Arc::new(
            Decimal128Array::from(vec![1234])
                .with_precision_and_scale(12, 2)
                .unwrap(),
        );
        let wider = Decimal(38, 9).conform(&dec).unwrap();
        assert_eq!(
            wider.as_primitive::<Decimal128Type>().value(0),
            12_340_000_000
        );
        let ns: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![1_000_000_000]));
        let us = Timestamp.conform(&ns).unwrap();
        assert_eq!(
            us.as_primitive::<TimestampMicrosecondType>().value(0),
            1_000_000
        );
        let words: ArrayRef = Arc::new(StringArray::from(vec!["x"]));
        assert!(BigInt.conform(&words).unwrap().is_null(0) || BigInt.conform(&words).is_err());
    }
}
