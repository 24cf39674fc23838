//! Getting bytes safely: one HTTP exchange the caller can walk away from
//! at any moment (`exchange.rs`), the Agnes server's client with the token
//! in its `Authorization` header alone and transient failures retried
//! (`http.rs`), presigned URLs fetched by a client of their own, pinned to
//! checked addresses and without the token (`signed.rs`), and the server's
//! `/api/v2` scans (`remote.rs`). What the bytes mean is `protocol/`'s.

pub mod exchange;
pub mod http;
pub mod remote;
pub mod signed;
