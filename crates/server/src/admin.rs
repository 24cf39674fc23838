//! The loopback-only admin API tests use to steer the server while it runs:
//! faults (`/admin/faults`) and the request log (`/admin/requests`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::app::App;
use crate::faults::Fault;
use crate::reply::{json, ApiError, ApiResult};

/// Whether a peer is on this machine: 127.0.0.0/8, ::1, or either mapped
/// into IPv6 (`::ffff:127.0.0.1`, as a dual-stack socket reports it).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Refuses the admin API to any peer that is not on this machine, even when
/// the server listens on a public address.
pub async fn loopback_only(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    if !is_loopback(peer.ip()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "The admin API answers only on loopback",
        )
        .into_response();
    }
    next.run(req).await
}

pub async fn get_faults(State(app): State<Arc<App>>) -> Response {
    // Catalog faults show as of the catalog on disk now.
    let loaded = app.catalog.load();
    if let Ok(catalog) = &loaded.catalog {
        app.faults.sync_catalog(loaded.generation, &catalog.faults);
    }
    json(StatusCode::OK, &app.faults.active_json())
}

/// Replaces the admin-set faults with the posted list.
pub async fn set_faults(State(app): State<Arc<App>>, body: Bytes) -> ApiResult {
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("expected a JSON list of faults: {e}")))?;
    let faults = Fault::parse_list(&value).map_err(ApiError::bad_request)?;
    let count = faults.len();
    app.faults.set_admin(faults);
    Ok(json(
        StatusCode::OK,
        &json!({"status": "ok", "faults": count}),
    ))
}

pub async fn clear_faults(State(app): State<Arc<App>>) -> Response {
    app.faults.set_admin(Vec::new());
    json(StatusCode::OK, &json!({"status": "ok", "faults": 0}))
}

pub async fn get_requests(State(app): State<Arc<App>>) -> Response {
    json(StatusCode::OK, &app.requests.to_json())
}

pub async fn clear_requests(State(app): State<Arc<App>>) -> Response {
    app.requests.clear();
    json(StatusCode::OK, &json!({"status": "ok"}))
}

/// `GET /admin/store`: where the object store listens (`url` is null on a
/// May server, which has none) and which generation this server is.
pub async fn get_store(State(app): State<Arc<App>>) -> Response {
    let url = app.store.get().map(|s| s.url.clone());
    let mode = match app.generation.is_current() {
        true => "0.84",
        false => "may2026",
    };
    json(StatusCode::OK, &json!({"url": url, "mode": mode}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_peers() {
        for ok in ["127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ok.parse().unwrap()), "{ok}");
        }
        for bad in [
            "10.0.0.1",
            "192.168.1.2",
            "0.0.0.0",
            "::",
            "::ffff:10.0.0.1",
            "fe80::1",
        ] {
            assert!(!is_loopback(bad.parse().unwrap()), "{bad}");
        }
    }
}
