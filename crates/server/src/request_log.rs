//! The request log that tests read through `GET /admin/requests`: which
//! paths were asked for, with which Authorization, If-None-Match and Range,
//! and what was answered. It holds raw Authorization values because tests
//! check them; it lives only in memory and is never printed.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use serde_json::{json, Value};

use crate::app::App;

/// Oldest entries are dropped past this many, so a benchmark cannot grow
/// the server without bound.
const CAPACITY: usize = 100_000;

struct Entry {
    method: String,
    path: String,
    authorization: Option<String>,
    if_none_match: Option<String>,
    range: Option<String>,
    /// 0 until the reply's status is known.
    status: AtomicU16,
    /// Body bytes handed to the connection; grows while a body streams.
    bytes_sent: AtomicU64,
}

#[derive(Default)]
pub struct RequestLog {
    entries: Mutex<VecDeque<Arc<Entry>>>,
}

impl RequestLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Entry>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, entry: Arc<Entry>) {
        let mut entries = self.lock();
        if entries.len() == CAPACITY {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The entries in arrival order.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.lock()
                .iter()
                .map(|e| {
                    json!({
                        "method": e.method,
                        "path": e.path,
                        "authorization": e.authorization,
                        "if_none_match": e.if_none_match,
                        "range": e.range,
                        "status": e.status.load(Ordering::Relaxed),
                        "bytes_sent": e.bytes_sent.load(Ordering::Relaxed),
                    })
                })
                .collect(),
        )
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Logs every request but the admin API's own, in the order they arrive.
pub async fn record(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/admin/") || req.uri().path() == "/admin" {
        return next.run(req).await;
    }
    let headers = req.headers();
    let entry = Arc::new(Entry {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        authorization: header(headers, "authorization"),
        if_none_match: header(headers, "if-none-match"),
        range: header(headers, "range"),
        status: AtomicU16::new(0),
        bytes_sent: AtomicU64::new(0),
    });
    app.requests.push(entry.clone());
    let resp = next.run(req).await;
    entry
        .status
        .store(resp.status().as_u16(), Ordering::Relaxed);
    let (parts, body) = resp.into_parts();
    Response::from_parts(parts, Body::new(Counted { inner: body, entry }))
}

/// Counts the body bytes on their way to the connection.
struct Counted {
    inner: Body,
    entry: Arc<Entry>,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.entry
                    .bytes_sent
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
