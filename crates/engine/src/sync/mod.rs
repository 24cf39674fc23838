//! The sync itself: what the server offers against what this workspace
//! holds (`plan.rs`), the verified downloads (`download_all.rs`,
//! `download.rs`, `previous.rs`), an older client's files and views taken
//! over (`adopt.rs`), the removals (`removals.rs`), the views
//! (`views.rs`; `scan_views.rs` for tables that stay on the server), the
//! rules (`rules.rs`), and the report (`report.rs`), run in that order by
//! `run.rs`. Beside the full sync: `inspect.rs` (`agnes_manifest()`),
//! `offline.rs` and `synced.rs` (what `LOAD` offers without the server),
//! and `quick/` (the hook's no-op without DuckDB).

pub mod adopt;
pub mod download;
pub mod download_all;
pub mod inspect;
pub mod names;
pub mod offline;
pub mod plan;
pub mod previous;
pub mod quick;
pub mod removals;
pub mod report;
pub mod rules;
pub mod run;
pub mod scan_views;
pub mod synced;
pub mod views;
