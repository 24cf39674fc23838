//! The object store of a 0.84 server: presigned direct downloads
//! (`signed_url`, CONTRACT.md §7) on a second port, without any token.
//!
//! A table whose catalog entry has `signed_url` gets a URL here in the
//! manifest. Variants let tests check a client's guard: `expired` (the
//! manifest says it expired an hour ago; the URL still works), `redirect`
//! (the store answers 302 to the API download) and `wrong_bytes` (the store
//! serves the file with 16 bytes flipped), and `localhost` (the store by
//! host name instead of address).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use md5::{Digest, Md5};

use crate::app::App;
use crate::isotime::utc_with_offset;
use crate::reply::ApiError;
use crate::request_log;
use crate::tables::is_valid_id;

/// Where the store and the API listen, known once both are bound.
pub struct ObjectStore {
    pub url: String,
    pub api_url: String,
    secret: String,
}

impl ObjectStore {
    pub fn new(url: String, api_url: String) -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let secret = format!(
            "{:x}",
            Md5::digest(format!("{nanos}:{}", std::process::id()))
        );
        ObjectStore {
            url,
            api_url,
            secret,
        }
    }

    fn signature(&self, id: &str) -> String {
        let digest = Md5::digest(format!("{}:{id}", self.secret).as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The manifest's `signed_url` and `signed_url_expires_at` for a table
    /// whose catalog says `variant`.
    pub fn signed(&self, id: &str, variant: &str, expires_at: Option<&str>) -> (String, String) {
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        let base = format!(
            "{}/objects/{id}?X-Agnes-Signature={}",
            self.url,
            self.signature(id)
        );
        let (url, expires) = match variant {
            "expired" => (base, now - hour),
            "redirect" => (format!("{base}&redirect=1"), now + hour),
            "wrong_bytes" => (format!("{base}&corrupt=1"), now + hour),
            // By name: the client resolves it itself and pins what it checked.
            "localhost" => (base.replacen("127.0.0.1", "localhost", 1), now + hour),
            literal if literal.contains("://") => (literal.to_string(), now + hour),
            _ => (base, now + hour),
        };
        let expires = expires_at
            .map(String::from)
            .unwrap_or_else(|| utc_with_offset(expires));
        (url, expires)
    }
}

/// The store's routes: `GET /objects/{id}`, logged in the API's request
/// log (tests check that no token ever reaches it).
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/objects/{id}", get(object))
        .fallback(|| async { ApiError::not_found("NoSuchKey").into_response() })
        .layer(from_fn_with_state(app.clone(), request_log::record))
        .with_state(app)
}

async fn object(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(store) = app.store.get() else {
        return ApiError::not_found("no object store").into_response();
    };
    let query = query.unwrap_or_default();
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(String::from)
    };
    if !is_valid_id(&id) || param("X-Agnes-Signature") != Some(store.signature(&id)) {
        return ApiError::new(StatusCode::FORBIDDEN, "SignatureDoesNotMatch").into_response();
    }
    if param("redirect").is_some() {
        let location = format!("{}/api/data/{id}/download", store.api_url);
        let mut resp = StatusCode::FOUND.into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return resp;
    }
    let path = app.data_dir.join(format!("{id}.parquet"));
    let mut bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(_) => return ApiError::not_found("NoSuchKey").into_response(),
    };
    if param("corrupt").is_some() {
        let from = bytes.len() / 2;
        let to = (from + 16).min(bytes.len());
        for b in &mut bytes[from..to] {
            *b ^= 0xff;
        }
    }
    let mut resp = Response::new(Body::from(bytes));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    resp
}
