pub mod run;
pub mod transcripts;

pub use run::*;
