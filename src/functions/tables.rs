//! `agnes_tables()`: the tables this workspace has synced, each queryable by
//! its name in this session (through agnes's view, or when there is none,
//! the replacement scan of names.rs). Reads only the local sync state, and
//! not even that when the database forbids external access (src/access.rs).

use crate::rows::{Call, Cell, Kind, RowFunction};

pub struct Tables;

impl RowFunction for Tables {
    const NAME: &'static str = "agnes_tables";
    const COLUMNS: &'static [(&'static str, Kind)] = &[
        ("table_id", Kind::Text),
        ("rows", Kind::BigInt),
        ("size_bytes", Kind::BigInt),
        ("hash", Kind::Text),
        ("parquet", Kind::Text),
    ];

    fn run(call: Call) -> Result<Vec<Vec<Cell>>, String> {
        crate::access::check(&call.host)?;
        Ok(call
            .host
            .names
            .list()
            .into_iter()
            .map(|t| {
                vec![
                    t.id.into(),
                    t.rows.into(),
                    t.size_bytes.into(),
                    (!t.hash.is_empty()).then_some(t.hash).into(),
                    t.parquet.to_string_lossy().into_owned().into(),
                ]
            })
            .collect())
    }
}
