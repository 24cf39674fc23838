//! A table's parquet file, or the parts of a partitioned one (0.84), as
//! Arrow: its columns with the type names the schema endpoint gives (DuckDB
//! or BigQuery flavour), and a scan of it (projection, filter, order,
//! limit) written as an Arrow IPC stream, cut at the result cap like the
//! real server's: silently. A partitioned table's hive partition columns
//! (`month=1/` folders) are columns too, read from the parts' paths.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::compute::{concat_batches, filter_record_batch, lexsort_to_indices, take, SortColumn};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::ipc::writer::StreamWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use crate::hive::Hive;
use crate::predicate::Expr;
use crate::tables::TableFile;

/// Rows per batch read and written: large enough that per-batch costs
/// (IPC headers, kernel calls) vanish next to the data.
const BATCH_ROWS: usize = 64 * 1024;

/// The Arrow schema of a table (no data read): its file's, or the one its
/// parts share followed by its hive partition columns. Parts that disagree
/// are an error naming the table and the part, never a silent union.
pub fn schema(table: &TableFile) -> Result<SchemaRef, String> {
    Ok(Hive::of(table).table_schema(files_schema(table)?))
}

/// The hive partition columns of a table, in the table's order: the schema endpoint's
/// `partition_by`.
pub fn partition_by(table: &TableFile) -> Vec<String> {
    Hive::of(table).names()
}

/// The columns stored in a table's files: its file's, or its parts' shared
/// ones.
fn files_schema(table: &TableFile) -> Result<SchemaRef, String> {
    let Some(parts) = &table.parts else {
        return file_schema(&table.path);
    };
    let Some((first, rest)) = parts.split_first() else {
        return Err(format!("table '{}' has no parts", table.id));
    };
    let mut schema = file_schema(&first.file.path)?;
    for part in rest {
        let other = file_schema(&part.file.path)?;
        schema = shared(&schema, &other).map_err(|why| {
            format!(
                "table '{}': part '{}' does not match part '{}': {why}",
                table.id, part.path, first.path
            )
        })?;
    }
    Ok(schema)
}

/// The Arrow schema of one parquet file.
fn file_schema(path: &Path) -> Result<SchemaRef, String> {
    let file = File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("reading the footer of {}: {e}", path.display()))?;
    Ok(builder.schema().clone())
}

/// The schema of two parts read as one table: the same columns in the same
/// order with the same types, each nullable when it is in either part
/// (writers differ on that, and a wider column loses nothing).
fn shared(table: &Schema, part: &Schema) -> Result<SchemaRef, String> {
    let names =
        |s: &Schema| -> Vec<String> { s.fields().iter().map(|f| f.name().clone()).collect() };
    if names(table) != names(part) {
        return Err(format!(
            "its columns are {:?}, not {:?}",
            names(part),
            names(table)
        ));
    }
    let mut fields = Vec::with_capacity(table.fields().len());
    for (a, b) in table.fields().iter().zip(part.fields()) {
        if a.data_type() != b.data_type() {
            return Err(format!(
                "its column '{}' is {}, not {}",
                b.name(),
                b.data_type(),
                a.data_type()
            ));
        }
        fields.push(
            a.as_ref()
                .clone()
                .with_nullable(a.is_nullable() || b.is_nullable()),
        );
    }
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        table.metadata().clone(),
    )))
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

/// Runs `plan` over the table's parquet file, or over all the parts of a
/// partitioned one as one table (the filter per row, the order and the
/// limit across parts), and writes the result as an Arrow IPC stream.
/// Blocking.
pub fn run(table: &TableFile, plan: &Plan) -> Result<Output, String> {
    // Checked again here: a part may have changed since the request's check.
    let hive = Hive::of(table);
    let schema = hive.table_schema(files_schema(table)?);
    let needed = needed_columns(plan);
    // The columns read, in the table's order, as the parquet reader gives them.
    let read_schema = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .filter(|f| needed.contains(f.name()))
            .cloned()
            .collect::<Vec<_>>(),
    ));
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

    let mut kept = Kept::default();
    for (part, path) in files(table).into_iter().enumerate() {
        let source = Source {
            table,
            path,
            part,
            hive: &hive,
        };
        read_file(&source, &read_schema, plan, &mut kept)?;
        if kept.enough(plan) {
            break;
        }
    }
    let ordered = order(kept.batches, &read_schema, plan)?;
    write_stream(ordered, &out_indices, &out_schema, plan)
}

/// The columns the output, the filter and the order need.
fn needed_columns(plan: &Plan) -> Vec<String> {
    let mut needed = plan.select.clone();
    if let Some(f) = &plan.filter {
        f.columns(&mut needed);
    }
    for o in &plan.order {
        if !needed.contains(&o.column) {
            needed.push(o.column.clone());
        }
    }
    needed
}

/// The files a table is read from, in order: its one file, or its parts
/// sorted by relative path.
fn files(table: &TableFile) -> Vec<&Path> {
    match &table.parts {
        None => vec![table.path.as_path()],
        Some(parts) => parts.iter().map(|p| p.file.path.as_path()).collect(),
    }
}

/// The filtered rows read so far, from every file.
#[derive(Default)]
struct Kept {
    batches: Vec<RecordBatch>,
    rows: usize,
}

impl Kept {
    /// Without an order, a limit stops the read early: the first rows are
    /// the answer, wherever they come from.
    fn enough(&self, plan: &Plan) -> bool {
        plan.order.is_empty() && plan.limit.is_some_and(|n| self.rows >= n)
    }
}

/// One file of a table being read: which part it is, for its partition
/// values and for errors that name it.
struct Source<'a> {
    table: &'a TableFile,
    path: &'a Path,
    /// Its index in the table's parts (0 for a single file).
    part: usize,
    hive: &'a Hive,
}

impl Source<'_> {
    /// How errors name this file: `part '<relative path>'`, or its path.
    fn name(&self) -> String {
        match self.table.parts.as_ref().and_then(|p| p.get(self.part)) {
            Some(part) => format!("part '{}'", part.path),
            None => self.path.display().to_string(),
        }
    }

    /// The columns of `read_schema` for one batch read from this file:
    /// the file's, and the partition columns' values from the path.
    fn columns(&self, read_schema: &Schema, batch: &RecordBatch) -> Result<Vec<ArrayRef>, String> {
        read_schema
            .fields()
            .iter()
            .map(|f| {
                if let Some(values) = self.hive.column(self.part, f.name(), batch.num_rows()) {
                    return Ok(values);
                }
                batch.column_by_name(f.name()).cloned().ok_or_else(|| {
                    format!(
                        "table '{}': {} has no column '{}'",
                        self.table.id,
                        self.name(),
                        f.name()
                    )
                })
            })
            .collect()
    }
}

/// Reads the columns of `read_schema` from one file (a partition column
/// from its path, never from the file), keeps the rows that pass the
/// filter, and stops once `kept` is enough.
fn read_file(
    source: &Source,
    read_schema: &SchemaRef,
    plan: &Plan,
    kept: &mut Kept,
) -> Result<(), String> {
    let path = source.path;
    let file = File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    let indices: Vec<usize> = builder
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            read_schema.field_with_name(f.name()).is_ok() && !source.hive.has(f.name())
        })
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    for batch in reader {
        let batch = batch.map_err(|e| format!("reading {}: {e}", path.display()))?;
        // The table's schema: a column nullable in any part is nullable here.
        let columns = source.columns(read_schema, &batch)?;
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        let batch = RecordBatch::try_new_with_options(read_schema.clone(), columns, &options)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
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
        kept.rows += batch.num_rows();
        kept.batches.push(batch);
        if kept.enough(plan) {
            break;
        }
    }
    Ok(())
}

/// The kept rows in the plan's order (all of them together, so that the
/// order and a limit apply across files), in batches of `BATCH_ROWS`.
fn order(
    kept: Vec<RecordBatch>,
    read_schema: &SchemaRef,
    plan: &Plan,
) -> Result<Vec<RecordBatch>, String> {
    if plan.order.is_empty() {
        return Ok(kept);
    }
    let all = concat_batches(read_schema, &kept).map_err(|e| e.to_string())?;
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
    let sorted = RecordBatch::try_new(read_schema.clone(), taken).map_err(|e| e.to_string())?;
    Ok((0..sorted.num_rows())
        .step_by(BATCH_ROWS)
        .map(|at| sorted.slice(at, BATCH_ROWS.min(sorted.num_rows() - at)))
        .collect())
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
    use std::path::PathBuf;

    use arrow::array::{Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, TimeUnit};
    use arrow::ipc::reader::StreamReader;
    use parquet::arrow::ArrowWriter;

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

    /// One part of a test table: its relative path, ids and labels.
    type TestPart<'a> = (&'a str, Vec<Option<i64>>, &'a [&'a str]);

    /// A partitioned table `events` in a fresh folder.
    fn events(name: &str, parts: &[TestPart]) -> (PathBuf, TableFile) {
        let dir = std::env::temp_dir().join(format!("agnes-parts-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (rel, ids, labels) in parts {
            let nullable = ids.iter().any(Option::is_none);
            let schema = Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int64, nullable),
                Field::new("label", DataType::Utf8, true),
            ]));
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(ids.clone())),
                    Arc::new(StringArray::from(labels.to_vec())),
                ],
            )
            .unwrap();
            write_part(&dir.join("events").join(rel), &batch);
        }
        let table = crate::tables::find(&dir, "events", true).unwrap().unwrap();
        (dir, table)
    }

    fn write_part(path: &Path, batch: &RecordBatch) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = File::create(path).unwrap();
        let mut writer = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        writer.write(batch).unwrap();
        writer.close().unwrap();
    }

    fn plan(filter: Option<&str>, order: &[(&str, bool)], limit: Option<usize>) -> Plan {
        Plan {
            select: vec!["id".into(), "label".into()],
            filter: filter.map(|f| crate::predicate::parse(f).unwrap()),
            order: order
                .iter()
                .map(|&(column, descending)| Order {
                    column: column.into(),
                    descending,
                })
                .collect(),
            limit,
            cap_bytes: u64::MAX,
        }
    }

    /// The ids a scan sent, in order.
    fn ids(table: &TableFile, mut plan: Plan) -> Vec<Option<i64>> {
        let table_schema = schema(table).unwrap();
        if let Some(f) = plan.filter.as_mut() {
            f.resolve(&table_schema).unwrap();
        }
        let out = run(table, &plan).unwrap();
        let reader = StreamReader::try_new(out.body.as_slice(), None).unwrap();
        let mut ids = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            let column = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            ids.extend(column.iter());
        }
        assert_eq!(ids.len() as u64, out.rows);
        ids
    }

    fn some(ids: &[i64]) -> Vec<Option<i64>> {
        ids.iter().copied().map(Some).collect()
    }

    #[test]
    fn the_parts_of_a_partitioned_table_are_read_as_one_table() {
        let (dir, table) = events(
            "one",
            &[
                ("a.parquet", some(&[1, 2, 3]), &["a", "a", "a"]),
                ("y=2/b.parquet", some(&[4, 5, 6]), &["b", "b", "b"]),
                ("c.parquet", some(&[7, 8, 9]), &["c", "c", "c"]),
            ],
        );
        // Parts in the order of their paths: a, c, y=2/b.
        assert_eq!(
            ids(&table, plan(None, &[], None)),
            some(&[1, 2, 3, 7, 8, 9, 4, 5, 6])
        );
        // Order and limit across parts, not per part.
        let top = plan(None, &[("id", true)], Some(4));
        assert_eq!(ids(&table, top), some(&[9, 8, 7, 6]));
        // Without an order, the limit takes the first rows, across parts.
        assert_eq!(
            ids(&table, plan(None, &[], Some(5))),
            some(&[1, 2, 3, 7, 8])
        );
        let filtered = plan(
            Some("id IN (2, 4, 6, 8) AND label <> 'a'"),
            &[("id", false)],
            None,
        );
        assert_eq!(ids(&table, filtered), some(&[4, 6, 8]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_column_nullable_in_one_part_is_nullable_in_the_table() {
        let (dir, table) = events(
            "nullable",
            &[
                ("a.parquet", some(&[2, 1]), &["a", "a"]),
                ("b.parquet", vec![None, Some(3)], &["b", "b"]),
            ],
        );
        assert!(schema(&table).unwrap().field(0).is_nullable());
        let ordered = plan(None, &[("id", false)], None);
        assert_eq!(ids(&table, ordered), [Some(1), Some(2), Some(3), None]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The Int64 column `column` a scan of `select` sent, in order.
    fn int64s(
        table: &TableFile,
        select: &[&str],
        mut plan: Plan,
        column: &str,
    ) -> Vec<Option<i64>> {
        plan.select = select.iter().map(|c| c.to_string()).collect();
        let table_schema = schema(table).unwrap();
        if let Some(f) = plan.filter.as_mut() {
            f.resolve(&table_schema).unwrap();
        }
        let out = run(table, &plan).unwrap();
        let reader = StreamReader::try_new(out.body.as_slice(), None).unwrap();
        let names: Vec<String> = reader
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, select, "the columns sent");
        let mut values = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            let array = batch.column_by_name(column).unwrap();
            values.extend(array.as_any().downcast_ref::<Int64Array>().unwrap().iter());
        }
        values
    }

    /// Parts under `month=…/day=…/` folders, one without a day.
    fn hive_events(name: &str) -> (PathBuf, TableFile) {
        events(
            name,
            &[
                (
                    "month=1/day=2026-01-02/a.parquet",
                    some(&[1, 2]),
                    &["a", "a"],
                ),
                ("month=2/day=2026-01-03/b.parquet", some(&[3]), &["b"]),
                ("month=10/c.parquet", some(&[4]), &["c"]),
            ],
        )
    }

    #[test]
    fn hive_folders_are_columns_after_the_files_columns() {
        let (dir, table) = hive_events("hive");
        let schema = schema(&table).unwrap();
        let described: Vec<(String, DataType)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        assert_eq!(
            described,
            [
                ("id".to_string(), DataType::Int64),
                ("label".to_string(), DataType::Utf8),
                // By name, as DuckDB orders them, not in folder order.
                ("day".to_string(), DataType::Date32),
                ("month".to_string(), DataType::Int64),
            ]
        );
        assert!(schema.field(2).is_nullable());
        assert_eq!(partition_by(&table), ["day", "month"]);
        // Parts in path order: month=1, month=10, month=2.
        let all = plan(None, &[], None);
        assert_eq!(
            int64s(&table, &["id", "month"], all, "month"),
            some(&[1, 1, 10, 2])
        );
        // Only partition columns: no file column is read, the rows still count.
        let desc = plan(None, &[("month", true)], Some(3));
        assert_eq!(int64s(&table, &["month"], desc, "month"), some(&[10, 2, 1]));
        let where_month = plan(Some("month = 1 OR month > 5"), &[("id", true)], None);
        assert_eq!(int64s(&table, &["id"], where_month, "id"), some(&[4, 2, 1]));
        let later = plan(Some("day >= DATE '2026-01-03'"), &[], None);
        assert_eq!(int64s(&table, &["id"], later, "id"), some(&[3]));
        // The part without a `day=` folder has a NULL day.
        let no_day = plan(Some("day IS NULL"), &[], None);
        assert_eq!(int64s(&table, &["id", "day"], no_day, "id"), some(&[4]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_partition_column_inside_the_files_keeps_its_place_and_takes_the_path() {
        // As DuckDB: the file says label, the path says label=x; the path wins.
        let (dir, table) = events(
            "inside",
            &[
                ("label=7/a.parquet", some(&[1]), &["a"]),
                ("label=8/b.parquet", some(&[2]), &["b"]),
            ],
        );
        let schema = schema(&table).unwrap();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["id", "label"]);
        assert_eq!(schema.field(1).data_type(), &DataType::Int64);
        let all = plan(None, &[("label", true)], None);
        assert_eq!(
            int64s(&table, &["id", "label"], all, "label"),
            some(&[8, 7])
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn folders_without_key_value_names_add_no_column() {
        let (dir, table) = events(
            "plain",
            &[
                ("2026/a.parquet", some(&[1]), &["a"]),
                ("b.parquet", some(&[2]), &["b"]),
            ],
        );
        assert_eq!(schema(&table).unwrap().fields().len(), 2);
        assert!(partition_by(&table).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parts_that_disagree_are_an_error_naming_the_table_and_the_part() {
        let (dir, _) = events("differ", &[("a.parquet", some(&[1]), &["a"])]);
        let other = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("label", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            other,
            vec![
                Arc::new(StringArray::from(vec!["1"])),
                Arc::new(StringArray::from(vec!["b"])),
            ],
        )
        .unwrap();
        write_part(&dir.join("events/sub/b.parquet"), &batch);
        let table = crate::tables::find(&dir, "events", true).unwrap().unwrap();
        let err = schema(&table).unwrap_err();
        assert_eq!(
            err,
            "table 'events': part 'sub/b.parquet' does not match part 'a.parquet': \
             its column 'id' is Utf8, not Int64"
        );
        assert_eq!(run(&table, &plan(None, &[], None)).err(), Some(err));

        let renamed = batch.project(&[1]).unwrap();
        write_part(&dir.join("events/sub/b.parquet"), &renamed);
        let table = crate::tables::find(&dir, "events", true).unwrap().unwrap();
        let err = schema(&table).unwrap_err();
        assert!(
            err.contains("part 'sub/b.parquet'")
                && err.contains(r#"its columns are ["label"], not ["id", "label"]"#),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
