//! The server's shared state and its routes.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::routing::post;
use axum::Router;
use serde_json::json;

use crate::catalog::{Catalog, CatalogFile};
use crate::faults::{Fault, FaultBook};
use crate::generation::{self, Generation};
use crate::reply::{json, ApiError, ApiResult};
use crate::request_log::RequestLog;
use crate::store::ObjectStore;
use crate::tables::FactCache;
use crate::{admin, bundle, compress, download, fault_layer, manifest, request_log, upload, v2};

/// Everything the handlers share.
pub struct App {
    pub data_dir: PathBuf,
    pub uploads_dir: PathBuf,
    pub catalog: CatalogFile,
    pub facts: FactCache,
    pub faults: FaultBook,
    pub requests: RequestLog,
    /// Which server this one behaves as (`--mode`).
    pub generation: Generation,
    /// The object store of a 0.84 server, once bound.
    pub store: OnceLock<ObjectStore>,
    pub quotas: v2::Quotas,
}

impl App {
    pub fn new(data_dir: PathBuf, uploads_dir: PathBuf, startup_faults: Vec<Fault>) -> Self {
        App {
            catalog: CatalogFile::new(&data_dir),
            data_dir,
            uploads_dir,
            facts: FactCache::default(),
            faults: FaultBook::new(startup_faults),
            requests: RequestLog::default(),
            generation: Generation::Current,
            store: OnceLock::new(),
            quotas: v2::Quotas::default(),
        }
    }

    /// The catalog as on disk now; a broken one is a 500 naming the file.
    pub fn catalog(&self) -> ApiResult<Arc<Catalog>> {
        self.catalog.load().catalog.map_err(ApiError::internal)
    }
}

/// The contract's routes, the admin API, and the middleware around them:
/// request log (outermost), faults, gzip.
pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/api/health", get(health))
        .route("/api/sync/manifest", get(manifest::handler))
        .route(
            "/api/data/{id}/download",
            // Explicit, or axum would answer HEAD with the GET handler.
            get(download::handler).head(head_not_allowed),
        )
        .route("/api/memory/bundle", get(bundle::handler))
        .route("/api/upload/sessions", post(upload::sessions))
        .route("/api/upload/local-md", post(upload::local_md))
        .route("/api/v2/catalog", get(v2::catalog))
        .route("/api/v2/schema/{id}", get(v2::schema))
        .route("/api/v2/scan", post(v2::scan))
        .route("/api/v2/scan/estimate", post(v2::estimate))
        .layer(from_fn(compress::gzip_json))
        .layer(from_fn_with_state(app.clone(), fault_layer::inject))
        .layer(from_fn_with_state(app.clone(), generation::headers));
    let admin = Router::new()
        .route(
            "/admin/faults",
            get(admin::get_faults)
                .post(admin::set_faults)
                .delete(admin::clear_faults),
        )
        .route(
            "/admin/requests",
            get(admin::get_requests).delete(admin::clear_requests),
        )
        .route("/admin/store", get(admin::get_store))
        .layer(from_fn(admin::loopback_only));
    api.merge(admin)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(app.clone(), request_log::record))
        .with_state(app)
}

/// The real servers' health document (their database schema versions:
/// 121 on 0.84.8, 19 on 0.29).
async fn health(axum::extract::State(app): axum::extract::State<Arc<App>>) -> Response {
    let body = match app.generation.is_current() {
        true => json!({"status": "ok", "vault_key_configured": false, "db_schema": "ok",
                       "current": 121, "expected": 121}),
        false => json!({"status": "ok", "db_schema": "ok", "current": 19, "expected": 19}),
    };
    json(StatusCode::OK, &body)
}

async fn not_found() -> Response {
    ApiError::not_found("Not Found").into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed").into_response()
}

async fn head_not_allowed() -> Response {
    let mut resp = method_not_allowed().await;
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    resp
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::body::Body;
    use axum::extract::connect_info::MockConnectInfo;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    /// The status the whole router gives `method path` from `peer`.
    async fn status_from(peer: &str, method: &str, path: &str) -> StatusCode {
        let dir = std::env::temp_dir();
        let app = Arc::new(App::new(dir.clone(), dir.join("_uploads"), Vec::new()));
        let peer = SocketAddr::new(peer.parse().unwrap(), 50_000);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::from("[]"))
            .unwrap();
        router(app)
            .layer(MockConnectInfo(peer))
            .oneshot(req)
            .await
            .unwrap()
            .status()
    }

    #[tokio::test]
    async fn admin_answers_only_loopback_peers() {
        for (method, path) in [
            ("GET", "/admin/faults"),
            ("POST", "/admin/faults"),
            ("DELETE", "/admin/faults"),
            ("GET", "/admin/requests"),
            ("DELETE", "/admin/requests"),
        ] {
            assert_eq!(status_from("127.0.0.1", method, path).await, StatusCode::OK);
            assert_eq!(status_from("::1", method, path).await, StatusCode::OK);
            for outsider in ["10.1.2.3", "192.168.0.7", "2001:db8::1"] {
                assert_eq!(
                    status_from(outsider, method, path).await,
                    StatusCode::FORBIDDEN,
                    "{method} {path} from {outsider}"
                );
            }
        }
        // The contract's own API is not restricted to loopback.
        assert_eq!(
            status_from("10.1.2.3", "GET", "/api/health").await,
            StatusCode::OK
        );
    }
}
