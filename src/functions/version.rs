//! `agnes_version()`: the extension's version and the DuckDB it runs in.

use std::error::Error;
use std::sync::atomic::AtomicUsize;

use duckdb::core::DataChunkHandle;
use duckdb::vtab::{BindInfo, InitInfo, TableFunctionInfo, VTab};

use crate::host::Host;
use crate::rows::{declare, Kind, Rows};

pub struct Version;

impl VTab for Version {
    type BindData = Rows;
    type InitData = AtomicUsize;

    fn bind(bind: &BindInfo) -> Result<Rows, Box<dyn Error>> {
        declare(bind, &[("extension_version", Kind::Text), ("duckdb_version", Kind::Text)]);
        // SAFETY: registered with a `Host` as extra info (functions::register).
        let host = unsafe { &*bind.get_extra_info::<Host>() };
        let duckdb_version = host.connection().version()?;
        Ok(Rows::new(vec![vec![agnes_engine::VERSION.into(), duckdb_version.into()]]))
    }

    fn init(_: &InitInfo) -> Result<AtomicUsize, Box<dyn Error>> {
        Ok(AtomicUsize::new(0))
    }

    fn func(func: &TableFunctionInfo<Self>, output: &mut DataChunkHandle) -> Result<(), Box<dyn Error>> {
        func.get_bind_data().emit(func.get_init_data(), output)
    }
}
