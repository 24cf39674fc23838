pub mod adopt;
pub mod download;
pub mod names;
pub mod plan;
pub mod quick;
pub mod run;
pub mod scan_views;
pub mod synced;

pub use run::*;
