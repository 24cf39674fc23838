//! What the server says, and how it is read: the manifest (`manifest.rs`,
//! lenient, for the full sync; `listing.rs`, strict and borrowed, for the
//! quick no-op), the memory bundle (`bundle.rs`), the `/api/v2` answers
//! (`v2.rs`), and which of the server's names may become file names and
//! SQL identifiers (`ids.rs`). Nothing here does I/O: it reads bytes that
//! `transfer/` fetched.

pub mod bundle;
pub mod ids;
pub mod listing;
pub mod manifest;
pub mod v2;
