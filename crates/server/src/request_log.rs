//! The request log that tests read through `GET /admin/requests`: which
//! paths were asked for, with which Authorization, If-None-Match and Range,
//! and what was answered. It holds raw Authorization values because tests
//! check them; it is never printed. With `--request-log FILE` each request
//! is also appended to FILE as one JSON line once its reply has been sent
//! (or given up), so that SQL tests can read it with `read_json`.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
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
    /// The client's address and port: requests on one kept-alive
    /// connection share it.
    peer: Option<String>,
    method: String,
    path: String,
    /// The raw query (`part=...` of a part download, a signed URL's).
    query: Option<String>,
    authorization: Option<String>,
    if_none_match: Option<String>,
    range: Option<String>,
    /// 0 until the reply's status is known.
    status: AtomicU16,
    /// The file name an upload came under (a reply extension sets it).
    upload: Mutex<Option<String>>,
    /// Body bytes handed to the connection; grows while a body streams.
    bytes_sent: AtomicU64,
    /// Whether its line went to the log file.
    written: AtomicBool,
    /// What a scan asked for (`/api/v2/scan`), as the handler read it.
    scan: ScanNote,
}

/// Where a scan handler notes the request body it read, for the log:
/// tests see which columns were asked for.
#[derive(Clone, Default)]
pub struct ScanNote(Arc<Mutex<Option<Value>>>);

impl ScanNote {
    pub fn set(&self, body: Value) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(body);
    }

    fn get(&self) -> Option<Value> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Entry {
    fn to_json(&self) -> Value {
        json!({
            "peer": self.peer,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "authorization": self.authorization,
            "if_none_match": self.if_none_match,
            "range": self.range,
            "status": self.status.load(Ordering::Relaxed),
            "upload": self.upload.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            "bytes_sent": self.bytes_sent.load(Ordering::Relaxed),
            "scan": self.scan.get(),
        })
    }
}

/// The `--request-log` file: one JSON line per request, appended with a
/// single write each, so a reader never sees half a line.
pub struct LogFile {
    file: Mutex<File>,
}

impl LogFile {
    /// Appends `entry`'s line, once; a failing disk is reported on stderr
    /// and never fails the request.
    fn append(&self, entry: &Entry) {
        if entry.written.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut line = entry.to_json().to_string().into_bytes();
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = file.write_all(&line).and_then(|_| file.flush()) {
            eprintln!("agnes-server: writing the request log: {e}");
        }
    }
}

/// Set by the upload handler on its reply: the name the file came under.
#[derive(Clone)]
pub struct UploadName(pub String);

#[derive(Default)]
pub struct RequestLog {
    entries: Mutex<VecDeque<Arc<Entry>>>,
    file: Option<Arc<LogFile>>,
}

impl RequestLog {
    /// A log that also appends to `path` (created if missing).
    pub fn appending_to(path: &Path) -> std::io::Result<RequestLog> {
        let file = File::options().create(true).append(true).open(path)?;
        Ok(RequestLog {
            entries: Mutex::default(),
            file: Some(Arc::new(LogFile {
                file: Mutex::new(file),
            })),
        })
    }

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
        Value::Array(self.lock().iter().map(|e| e.to_json()).collect())
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Logs every request but the admin API's own, in the order they arrive.
pub async fn record(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/admin/") || req.uri().path() == "/admin" {
        return next.run(req).await;
    }
    let headers = req.headers();
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.to_string());
    let entry = Arc::new(Entry {
        peer,
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().map(String::from),
        authorization: header(headers, "authorization"),
        if_none_match: header(headers, "if-none-match"),
        range: header(headers, "range"),
        status: AtomicU16::new(0),
        upload: Mutex::new(None),
        bytes_sent: AtomicU64::new(0),
        written: AtomicBool::new(false),
        scan: ScanNote::default(),
    });
    req.extensions_mut().insert(entry.scan.clone());
    app.requests.push(entry.clone());
    let resp = next.run(req).await;
    entry
        .status
        .store(resp.status().as_u16(), Ordering::Relaxed);
    if let Some(UploadName(name)) = resp.extensions().get::<UploadName>() {
        *entry.upload.lock().unwrap_or_else(|p| p.into_inner()) = Some(name.clone());
    }
    let (parts, body) = resp.into_parts();
    let file = app.requests.file.clone();
    if let Some(file) = file
        .as_ref()
        .filter(|_| http_body::Body::is_end_stream(&body))
    {
        // No body to wait for: logged before the client can see the reply.
        file.append(&entry);
    }
    Response::from_parts(
        parts,
        Body::new(Counted {
            inner: body,
            entry,
            file,
        }),
    )
}

/// Counts the body bytes on their way to the connection, and writes the
/// log line when the body ends: before its last bytes are handed over, so
/// that a client that has read the whole reply finds the line in the file.
struct Counted {
    inner: Body,
    entry: Arc<Entry>,
    file: Option<Arc<LogFile>>,
}

impl Counted {
    fn log(&self) {
        if let Some(file) = &self.file {
            file.append(&self.entry);
        }
    }
}

impl Drop for Counted {
    /// A reply cut short or abandoned is logged with what was sent.
    fn drop(&mut self) {
        self.log();
    }
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.entry
                        .bytes_sent
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                if self.inner.is_end_stream() {
                    self.log();
                }
            }
            Poll::Ready(_) => self.log(),
            Poll::Pending => {}
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
