//! JSON replies and the `{"detail": ...}` error shape every endpoint shares.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A JSON body with a status. Compression, when the client asks for it, is
/// done later by the `gzip` middleware, so handlers never see headers for it.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(err) => {
            ApiError::internal(format!("could not encode the reply as JSON: {err}")).into_response()
        }
    }
}

/// An error reply: `{"detail": "<message>"}` with a status, as the real
/// server (FastAPI) sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }
}

#[derive(Serialize)]
struct Detail<'a> {
    detail: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            // Server-side failures are ours to see; client errors are not.
            eprintln!("agnes-server: {} {}", self.status.as_u16(), self.detail);
        }
        json(
            self.status,
            &Detail {
                detail: &self.detail,
            },
        )
    }
}

pub type ApiResult<T = Response> = Result<T, ApiError>;
