//! Result rows for the table functions: declared once as columns, filled from
//! engine reports, emitted in chunks.
//!
//! Each table function builds its whole result in bind (the work happens
//! there, DESIGN.md) and streams it out here, `STANDARD_VECTOR_SIZE` rows at a
//! time.

use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};

use duckdb::core::{DataChunkHandle, Inserter, LogicalTypeHandle, LogicalTypeId};
use duckdb::vtab::BindInfo;

/// DuckDB's vector size: a chunk never holds more rows.
const CHUNK_ROWS: usize = 2048;

/// The SQL type of a result column.
#[derive(Clone, Copy)]
pub enum Kind {
    Text,
    BigInt,
}

/// One value of a result row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    BigInt(i64),
    Null,
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(s.to_string())
    }
}
impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(s)
    }
}
impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Cell::BigInt(v)
    }
}
impl From<u64> for Cell {
    fn from(v: u64) -> Self {
        Cell::BigInt(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Self {
        v.map_or(Cell::Null, Into::into)
    }
}

/// Declares `columns` as the function's result.
pub fn declare(bind: &BindInfo, columns: &[(&str, Kind)]) {
    for (name, kind) in columns {
        let id = match kind {
            Kind::Text => LogicalTypeId::Varchar,
            Kind::BigInt => LogicalTypeId::Bigint,
        };
        bind.add_result_column(name, LogicalTypeHandle::from(id));
    }
}

/// A finished result, emitted chunk by chunk, or the error to raise instead.
pub struct Rows {
    rows: Vec<Vec<Cell>>,
    error: Option<String>,
}

impl Rows {
    pub fn new(rows: Vec<Vec<Cell>>) -> Self {
        Rows { rows, error: None }
    }

    /// A call that failed: the scan raises `error`.
    pub fn failed(error: String) -> Self {
        Rows {
            rows: Vec::new(),
            error: Some(error),
        }
    }

    /// Writes the next chunk from `cursor` on; an empty chunk ends the scan.
    pub fn emit(
        &self,
        cursor: &AtomicUsize,
        output: &mut DataChunkHandle,
    ) -> Result<(), Box<dyn Error>> {
        if let Some(error) = &self.error {
            return Err(error.clone().into());
        }
        let start = cursor.load(Ordering::Relaxed).min(self.rows.len());
        let end = (start + CHUNK_ROWS).min(self.rows.len());
        for (i, row) in self.rows[start..end].iter().enumerate() {
            for (col, cell) in row.iter().enumerate() {
                write_cell(output, col, i, cell);
            }
        }
        output.set_len(end - start);
        cursor.store(end, Ordering::Relaxed);
        Ok(())
    }
}

fn write_cell(output: &mut DataChunkHandle, col: usize, row: usize, cell: &Cell) {
    let mut vector = output.flat_vector(col);
    match cell {
        Cell::Text(s) => vector.insert(row, s.as_str()),
        // SAFETY: the column was declared BIGINT in bind, so the vector's
        // storage is i64, and row < CHUNK_ROWS <= its capacity.
        Cell::BigInt(v) => unsafe { vector.as_mut_slice::<i64>()[row] = *v },
        Cell::Null => vector.set_null(row),
    }
}

/// A table function whose whole result is computed in bind: the shape every
/// agnes function has. `Adapter<F>` turns it into a DuckDB `VTab`.
pub trait RowFunction {
    const NAME: &'static str;
    const COLUMNS: &'static [(&'static str, Kind)];

    fn named_parameters() -> Vec<(String, duckdb::core::LogicalTypeHandle)> {
        Vec::new()
    }

    /// Does the work and returns the rows, each in `COLUMNS` order.
    fn run(bind: &BindInfo, host: &crate::host::Host) -> Result<Vec<Vec<Cell>>, Box<dyn Error>>;
}

pub struct Adapter<F>(std::marker::PhantomData<F>);

impl<F: RowFunction> duckdb::vtab::VTab for Adapter<F> {
    type BindData = Rows;
    type InitData = AtomicUsize;

    fn bind(bind: &BindInfo) -> Result<Rows, Box<dyn Error>> {
        declare(bind, F::COLUMNS);
        // SAFETY: every agnes function is registered with a `Host` as its
        // extra info (functions::register), which lives as long as DuckDB's catalog.
        let host = unsafe { &*bind.get_extra_info::<crate::host::Host>() };
        // A failure is raised by the scan, not here: DuckDB quotes the query
        // under a bind error ("LINE 1: ... token := '...'"), which would
        // show a token passed as a parameter (CONTRACT.md §2).
        Ok(match F::run(bind, host) {
            Ok(rows) => Rows::new(rows),
            Err(e) => Rows::failed(e.to_string()),
        })
    }

    fn init(_: &duckdb::vtab::InitInfo) -> Result<AtomicUsize, Box<dyn Error>> {
        Ok(AtomicUsize::new(0))
    }

    fn func(
        func: &duckdb::vtab::TableFunctionInfo<Self>,
        output: &mut DataChunkHandle,
    ) -> Result<(), Box<dyn Error>> {
        func.get_bind_data().emit(func.get_init_data(), output)
    }

    fn named_parameters() -> Option<Vec<(String, duckdb::core::LogicalTypeHandle)>> {
        Some(F::named_parameters())
    }
}
