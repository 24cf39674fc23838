//! A table's parquet file as Arrow: its columns with the type names the
//! schema endpoint gives (DuckDB or BigQuery flavour), and a scan of it
//! (projection, filter, order, limit) written as an Arrow IPC stream, cut
//! at the result cap like the real server's: silently.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchReader};
use arrow::compute::{concat_batches, filter_record_batch, lexsort_to_indices, take, SortColumn};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::ipc::writer::StreamWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use crate::predicate::Expr;

/// Rows per batch read and written: large enough that per-batch costs
/// (IPC headers, kernel calls) vanish next to the data.
const BATCH_ROWS: usize = 64 * 1024;

/// The Arrow schema of a parquet file (no data read).
pub fn schema(path: &Path) -> Result<SchemaRef, String> {
    let file = File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("reading the footer of {}: {e}", path.display()))?;
    Ok(builder.schema().clone())
}

/// The name of `t` in a table's SQL flavour, as the schema endpoint says it.
pub fn type_name(t: &DataType, bigquery: bool) -> String {
    match bigquery {
        false => duckdb_name(t),
        true => bigquery_name(t),
    }
}

fn duckdb_name(t: &DataType) -> String {
    match t {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "UTINYINT".into(),
        DataType::UInt16 => "USMALLINT".into(),
        DataType::UInt32 => "UINTEGER".into(),
        DataType::UInt64 => "UBIGINT".into(),
        DataType::Float16 | DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "BLOB".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("DECIMAL({p},{s})"),
        DataType::List(f) | DataType::LargeList(f) => format!("{}[]", duckdb_name(f.data_type())),
        other => other.to_string(),
    }
}

fn bigquery_name(t: &DataType) -> String {
    match t {
        DataType::Boolean => "BOOL".into(),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => "INT64".into(),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "FLOAT64".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "BYTES".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(_, None) => "DATETIME".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP".into(),
        DataType::Decimal128(p, s) if *p <= 38 && *s <= 9 => "NUMERIC".into(),
        DataType::Decimal128(..) | DataType::Decimal256(..) => "BIGNUMERIC".into(),
        DataType::List(f) | DataType::LargeList(f) => {
            format!("ARRAY<{}>", bigquery_name(f.data_type()))
        }
        other => other.to_string(),
    }
}

/// One ordering term of `order_by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub column: String,
    pub descending: bool,
}

/// A checked scan: every column named exists in the file's schema.
pub struct Plan {
    /// Output columns, in order.
    pub select: Vec<String>,
    pub filter: Option<Expr>,
    pub order: Vec<Order>,
    pub limit: Option<usize>,
    /// A stream longer than this many bytes ends there (silently).
    pub cap_bytes: u64,
}

/// What a scan produced.
pub struct Output {
    pub body: Vec<u8>,
    pub rows: u64,
    /// Whether the cap cut it.
    pub cut: bool,
}

/// Runs `plan` over the parquet at `path` and writes the result as an
/// Arrow IPC stream. Blocking.
pub fn run(path: &Path, plan: &Plan) -> Result<Output, String> {
    let file = File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    let file_schema = builder.schema().clone();
    // Read only what the output, the filter and the order need.
    let mut needed = plan.select.clone();
    if let Some(f) = &plan.filter {
        f.columns(&mut needed);
    }
    for o in &plan.order {
        if !needed.contains(&o.column) {
            needed.push(o.column.clone());
        }
    }
    let indices: Vec<usize> = file_schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| needed.contains(f.name()))
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    let read_schema = reader.schema();
    let out_indices: Vec<usize> = plan
        .select
        .iter()
        .map(|c| read_schema.index_of(c).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let out_schema = Arc::new(
        read_schema
            .project(&out_indices)
            .map_err(|e| e.to_string())?,
    );

    let mut kept: Vec<RecordBatch> = Vec::new();
    let mut kept_rows = 0usize;
    // Without an order, a limit stops the read early.
    let early_limit = plan.limit.filter(|_| plan.order.is_empty());
    for batch in reader {
        let batch = batch.map_err(|e| format!("reading {}: {e}", path.display()))?;
        let batch = match &plan.filter {
            None => batch,
            Some(f) => {
                let keep = f.evaluate(&batch)?;
                filter_record_batch(&batch, &keep).map_err(|e| e.to_string())?
            }
        };
        if batch.num_rows() == 0 {
            continue;
        }
        kept_rows += batch.num_rows();
        kept.push(batch);
        if early_limit.is_some_and(|n| kept_rows >= n) {
            break;
        }
    }

    let ordered: Vec<RecordBatch> = match plan.order.is_empty() {
        true => kept,
        false => {
            let all = concat_batches(&read_schema, &kept).map_err(|e| e.to_string())?;
            drop(kept);
            let columns: Vec<SortColumn> = plan
                .order
                .iter()
                .map(|o| -> Result<SortColumn, String> {
                    let values = all
                        .column_by_name(&o.column)
                        .ok_or_else(|| format!("column {} was not read", o.column))?
                        .clone();
                    Ok(SortColumn {
                        values,
                        options: Some(arrow::compute::SortOptions {
                            descending: o.descending,
                            // As DuckDB and BigQuery: NULLs last ascending, first descending.
                            nulls_first: o.descending,
                        }),
                    })
                })
                .collect::<Result<_, _>>()?;
            let order = lexsort_to_indices(&columns, plan.limit).map_err(|e| e.to_string())?;
            let taken: Vec<ArrayRef> = all
                .columns()
                .iter()
                .map(|c| take(c.as_ref(), &order, None).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?;
            let sorted =
                RecordBatch::try_new(read_schema.clone(), taken).map_err(|e| e.to_string())?;
            (0..sorted.num_rows())
                .step_by(BATCH_ROWS)
                .map(|at| sorted.slice(at, BATCH_ROWS.min(sorted.num_rows() - at)))
                .collect()
        }
    };
    write_stream(ordered, &out_indices, &out_schema, plan)
}

/// Writes the batches, projected and limited, as an IPC stream; once the
/// stream has reached `cap_bytes`, the rest is left out and the stream is
/// ended as if that were all (the real server's silent cut).
fn write_stream(
    batches: Vec<RecordBatch>,
    out_indices: &[usize],
    out_schema: &SchemaRef,
    plan: &Plan,
) -> Result<Output, String> {
    let mut writer = StreamWriter::try_new(Vec::new(), out_schema).map_err(|e| e.to_string())?;
    let mut rows = 0u64;
    let mut cut = false;
    let limit = plan.limit.map_or(u64::MAX, |n| n as u64);
    for batch in batches {
        if rows >= limit {
            break;
        }
        if writer.get_ref().len() as u64 >= plan.cap_bytes {
            cut = true;
            break;
        }
        let batch = batch.project(out_indices).map_err(|e| e.to_string())?;
        let batch = match limit - rows {
            left if (batch.num_rows() as u64) > left => batch.slice(0, left as usize),
            _ => batch,
        };
        rows += batch.num_rows() as u64;
        writer.write(&batch).map_err(|e| e.to_string())?;
    }
    writer.finish().map_err(|e| e.to_string())?;
    let body = writer.into_inner().map_err(|e| e.to_string())?;
    Ok(Output { body, rows, cut })
}

/// The columns of `schema` as the schema endpoint lists them.
pub fn columns_json(schema: &Schema, bigquery: bool) -> Vec<serde_json::Value> {
    schema
        .fields()
        .iter()
        .map(|f| {
            serde_json::json!({
                "name": f.name(),
                "type": type_name(f.data_type(), bigquery),
                "nullable": f.is_nullable(),
                "description": "",
            })
        })
        .collect()
}

/// Whether a column type can be compared or sorted by this server.
pub fn sortable(t: &DataType) -> bool {
    !matches!(
        t,
        DataType::List(_)
            | DataType::LargeList(_)
            | DataType::Struct(_)
            | DataType::Map(..)
            | DataType::Union(..)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, TimeUnit};

    const TIMESTAMP: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

    #[test]
    fn type_names_in_both_flavours() {
        let cases = [
            (DataType::Int64, "BIGINT", "INT64"),
            (DataType::Int32, "INTEGER", "INT64"),
            (DataType::Float64, "DOUBLE", "FLOAT64"),
            (DataType::Boolean, "BOOLEAN", "BOOL"),
            (DataType::Utf8, "VARCHAR", "STRING"),
            (DataType::Utf8View, "VARCHAR", "STRING"),
            (DataType::Binary, "BLOB", "BYTES"),
            (DataType::Date32, "DATE", "DATE"),
            (TIMESTAMP, "TIMESTAMP", "DATETIME"),
            (
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                "TIMESTAMP WITH TIME ZONE",
                "TIMESTAMP",
            ),
            (DataType::Decimal128(12, 2), "DECIMAL(12,2)", "NUMERIC"),
            (DataType::Decimal128(38, 20), "DECIMAL(38,20)", "BIGNUMERIC"),
            (
                DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
                "BIGINT[]",
                "ARRAY<INT64>",
            ),
        ];
        for (t, duck, bq) in cases {
            assert_eq!(type_name(&t, false), duck, "{t}");
            assert_eq!(type_name(&t, true), bq, "{t}");
        }
    }
}
