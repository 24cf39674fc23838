//! gzip for JSON replies over 1 KiB when the client offers it, as the real
//! server does. Parquet is never compressed (it already is, and clients
//! verify the bytes they receive).

use std::io::Write;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::reply::ApiError;

/// Bodies up to this size go out as they are.
const MIN_SIZE: u64 = 1024;

/// Whether `Accept-Encoding` offers gzip with a non-zero quality.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let zero_q = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            coding.eq_ignore_ascii_case("gzip") && !zero_q
        })
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
}

/// Compresses the JSON reply when the request offered gzip and it is big
/// enough to be worth it.
pub async fn gzip_json(req: Request, next: Next) -> Response {
    let wants_gzip = accepts_gzip(req.headers());
    let resp = next.run(req).await;
    let size = http_body::Body::size_hint(resp.body()).exact();
    if !wants_gzip
        || !is_json(&resp)
        || resp.headers().contains_key(header::CONTENT_ENCODING)
        || size.is_none_or(|n| n <= MIN_SIZE)
    {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let plain = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(err) => {
            return ApiError::internal(format!("reading the reply to compress it: {err}"))
                .into_response()
        }
    };
    let mut encoder = GzEncoder::new(Vec::with_capacity(plain.len() / 4), Compression::fast());
    let packed = match encoder.write_all(&plain).and_then(|_| encoder.finish()) {
        Ok(packed) => packed,
        Err(err) => return ApiError::internal(format!("gzip: {err}")).into_response(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts
        .headers
        .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    Response::from_parts(parts, Body::from(packed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(value: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        accepts_gzip(&h)
    }

    #[test]
    fn reads_accept_encoding() {
        assert!(offer("gzip"));
        assert!(offer("gzip, deflate, br"));
        assert!(offer("br;q=1.0, GZIP;q=0.5"));
        assert!(!offer("gzip;q=0"));
        assert!(!offer("deflate, identity"));
        assert!(!offer("x-gzip2"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
