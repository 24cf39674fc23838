//! Result rows for the table functions: declared once as columns, filled from
//! engine reports, emitted in chunks.
//!
//! Each table function does its work at the first call of its scan, once
//! per execution, and emits the result `STANDARD_VECTOR_SIZE` rows at a time.

use std::error::Error;
use std::sync::Mutex;

use agnes_engine::{Cancel, Settings};
use duckdb::core::{DataChunkHandle, Inserter, LogicalTypeHandle, LogicalTypeId};
use duckdb::vtab::{BindInfo, InitInfo, TableFunctionInfo};

use crate::host::Host;
use crate::interrupt;
use crate::params::{self, Parameter, Params};

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

/// What an agnes function gets to work with at execution.
pub struct Call {
    pub params: Params,
    pub host: Host,
    pub cancel: Cancel,
}

impl Call {
    /// Where this call goes (server, token, workspace); refused when the
    /// database forbids external access (src/access.rs).
    pub fn settings(&self) -> Result<Settings, String> {
        crate::access::check(&self.host)?;
        Settings::resolve(&self.params.overrides()).map_err(|e| e.to_string())
    }
}

/// The shape every agnes function has: parameters read at bind, all the work
/// done at execution (never at bind: DuckDB binds for `EXPLAIN`, `DESCRIBE`,
/// `PREPARE`, view definitions and Python relations, sometimes more than
/// once per query), once per execution. `Adapter<F>` turns it into a `VTab`.
pub trait RowFunction {
    const NAME: &'static str;
    const COLUMNS: &'static [(&'static str, Kind)];
    /// Named parameters, in groups (params.rs).
    const PARAMETERS: &'static [&'static [Parameter]] = &[];

    /// Does the work and returns the rows, each in `COLUMNS` order. Runs on
    /// a thread of its own; stops early when `call.cancel` is cancelled.
    fn run(call: Call) -> Result<Vec<Vec<Cell>>, String>;
}

/// What bind keeps: the parameters as given and the database's `Host`.
pub struct Bound {
    params: Params,
    host: Host,
}

/// One execution: its rows being emitted, or its error.
pub enum Execution {
    Rows { rows: Vec<Vec<Cell>>, next: usize },
    Failed(String),
}

/// What our bind returned, as DuckDB hands it to the init of the same
/// query; `None` where it hands nothing.
pub fn bind_data<T>(init: &InitInfo) -> Option<&T> {
    // SAFETY: when not null, this is the `T` our bind returned (the duckdb
    // crate keeps it boxed), owned by DuckDB until the query ends.
    unsafe { init.get_bind_data::<T>().as_ref() }
}

/// Runs `F` once, on a thread of its own that an interrupt can stop.
fn execute<F: RowFunction>(bound: &Bound) -> Execution {
    let (params, host) = (bound.params.clone(), bound.host.clone());
    match interrupt::run(move |cancel| {
        F::run(Call {
            params,
            host,
            cancel: cancel.clone(),
        })
    }) {
        Ok(rows) => Execution::Rows { rows, next: 0 },
        Err(e) => Execution::Failed(e),
    }
}

pub struct Adapter<F>(std::marker::PhantomData<F>);

impl<F: RowFunction> duckdb::vtab::VTab for Adapter<F> {
    type BindData = Bound;
    type InitData = Mutex<Execution>;

    fn bind(bind: &BindInfo) -> Result<Bound, Box<dyn Error>> {
        declare(bind, F::COLUMNS);
        // SAFETY: every agnes function is registered with a `Host` as its
        // extra info (functions::register), which lives as long as DuckDB's catalog.
        let host = unsafe { &*bind.get_extra_info::<Host>() }.clone();
        Ok(Bound {
            params: Params::read(bind, F::PARAMETERS),
            host,
        })
    }

    /// The work runs here, at execution: DuckDB calls the global init on
    /// the thread that runs the query, before any pipeline task exists. Run
    /// from `func`, the work landed on a worker thread about one call in
    /// six, and the query's own thread then spun in DuckDB's task loop for
    /// the whole sync: a core lost on a 2-core machine (docs/PERFORMANCE.md).
    fn init(init: &InitInfo) -> Result<Mutex<Execution>, Box<dyn Error>> {
        let bound = bind_data::<Bound>(init)
            .ok_or_else(|| format!("{}: no bind data at execution", F::NAME))?;
        Ok(Mutex::new(execute::<F>(bound)))
    }

    fn func(
        func: &TableFunctionInfo<Self>,
        output: &mut DataChunkHandle,
    ) -> Result<(), Box<dyn Error>> {
        let mut execution = func
            .get_init_data()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match &mut *execution {
            // Errors are raised here, by the scan, never at bind: DuckDB
            // quotes the query under a bind error ("LINE 1: ... token :=
            // '...'"), which would show a token passed as a parameter.
            Execution::Failed(e) => Err(e.clone().into()),
            Execution::Rows { rows, next } => {
                let start = (*next).min(rows.len());
                let end = (start + CHUNK_ROWS).min(rows.len());
                for (i, row) in rows[start..end].iter().enumerate() {
                    for (col, cell) in row.iter().enumerate() {
                        write_cell(output, col, i, cell);
                    }
                }
                output.set_len(end - start);
                *next = end;
                Ok(())
            }
        }
    }

    fn named_parameters() -> Option<Vec<(String, LogicalTypeHandle)>> {
        Some(params::named(F::PARAMETERS))
    }
}
