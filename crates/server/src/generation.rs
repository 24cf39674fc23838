//! Which Agnes server this one behaves as: today's (0.84, CONTRACT.md §7,
//! the default) or May 2026's (0.29, sections 1-6), so that clients are
//! tested against both.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::app::App;

/// The server generation, `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generation {
    /// 0.84 (August 2026): partitioned and server-only tables, signed URLs,
    /// subscriptions, `X-Agnes-*` headers, the upload name rule, gzip uploads.
    #[value(name = "0.84", alias = "current")]
    Current,
    /// 0.29 (May 2026): the flat manifest, any upload name, no extras.
    #[value(name = "may2026", alias = "0.29")]
    May2026,
}

impl Generation {
    pub fn is_current(self) -> bool {
        self == Generation::Current
    }
}

/// What the server advertises in `X-Agnes-Latest-Version`.
pub const LATEST_VERSION: &str = "0.84.8";
/// And in `X-Agnes-Min-Version` (advisory; what 0.84.8 sends).
pub const MIN_VERSION: &str = "0.0.0";

/// What `X-Agnes-Accepts` says by default.
pub const DEFAULT_ACCEPTS: &str = "session-gzip";

/// The extras the server accepts now (the catalog's `accepts`, else
/// `session-gzip`); nothing on a May server.
pub fn accepts(app: &App) -> Vec<String> {
    if !app.generation.is_current() {
        return Vec::new();
    }
    match app.catalog().ok().and_then(|c| c.accepts.clone()) {
        Some(list) => list,
        None => vec![DEFAULT_ACCEPTS.to_string()],
    }
}

/// Adds the 0.84 version headers to every reply of a current server.
pub async fn headers(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    if app.generation.is_current() {
        let h = resp.headers_mut();
        h.insert(
            "x-agnes-latest-version",
            HeaderValue::from_static(LATEST_VERSION),
        );
        h.insert("x-agnes-min-version", HeaderValue::from_static(MIN_VERSION));
        let accepts = accepts(&app).join(", ");
        if let Ok(v) = HeaderValue::from_str(&accepts) {
            if !accepts.is_empty() {
                h.insert("x-agnes-accepts", v);
            }
        }
    }
    resp
}
