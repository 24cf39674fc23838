//! The token, and keeping it and other secrets out of every text: the
//! token itself (`token.rs`), whose `Debug` hides it; every text agnes
//! shows or stores with the token replaced and control characters escaped
//! (`redact.rs`); and session transcripts and notes with every JWT and the
//! token removed before they leave the machine (`scrub.rs`). Where the
//! token may go (the `Authorization` header of the Agnes server alone) is
//! `transfer/http.rs`'s to keep.

pub mod redact;
pub mod scrub;
pub mod token;
