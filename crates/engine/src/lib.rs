//! The agnes sync engine.
//!
//! Plain Rust with no DuckDB types: the DuckDB face (`src/` of the extension)
//! and `da` call into it and render its reports.

/// The version of agnes, shared by the extension, `da` and the server.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
