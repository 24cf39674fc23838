//! The agnes sync engine.
//!
//! Plain Rust with no DuckDB types: the DuckDB face (`src/` of the extension)
//! and `da` call into it and render its reports. The database side of a sync
//! (views, parquet footers) comes in through the `Catalog` trait. Uploads
//! of transcripts and notes need no database at all.

pub mod cancel;
pub mod catalog;
pub mod config;
pub mod digest;
pub mod error;
pub mod hooks;
pub mod progress;
pub mod protocol;
pub mod secrets;
pub mod sync;
pub mod transfer;
pub mod upload;
pub mod workspace;

pub use cancel::Cancel;
pub use catalog::{Catalog, Existing, OlderRead, OlderView, ScanGuard};
pub use config::{Overrides, Settings};
pub use error::{Error, Result};
pub use progress::{NoProgress, Progress};
pub use sync::inspect::{inspect, ManifestRow};
pub use sync::offline::attach_local;
pub use sync::plan::{Scope, Status};
pub use sync::report::{Action, RulesOutcome, SyncReport, TableOutcome};
pub use sync::run::{sync, SyncOptions};
pub use sync::synced::{synced_tables, SyncedTable};
pub use transfer::http::Timeouts;
pub use upload::report::{Action as UploadAction, Kind as UploadKind, UploadOutcome, UploadReport};
pub use upload::run::{upload, UploadOptions};

/// The version of agnes, shared by the extension, `da` and the server.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
