//! `GET /api/data/{id}/download`: a table's parquet file, streamed from disk
//! through a bounded buffer, with ETag / If-None-Match and single ranges.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::sync::mpsc;

use crate::app::App;
use crate::auth::authenticate;
use crate::isotime::epoch_nanos;
use crate::reply::{ApiError, ApiResult};
use crate::tables::{self, is_valid_id};

/// Bytes per read, and chunks in flight: a download holds at most about
/// (CHUNKS + 2) * CHUNK bytes of the file in memory, whatever its size.
const CHUNK: usize = 256 * 1024;
const CHUNKS: usize = 4;

/// The part of the file a request wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    Whole,
    /// Inclusive byte range, within the file.
    Part {
        first: u64,
        last: u64,
    },
    /// A range that starts past the end: 416.
    Unsatisfiable,
}

/// Reads a `Range` header for a file of `len` bytes. Only one `bytes=`
/// range is honoured (`a-b`, `a-`, `-n`); anything else is ignored and the
/// whole file is sent, which RFC 9110 allows.
pub fn parse_range(header: Option<&str>, len: u64) -> Wanted {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| s.parse::<u64>().ok();
    match (a.is_empty(), b.is_empty()) {
        // suffix: the last n bytes
        (true, false) => match num(b) {
            Some(0) => Wanted::Unsatisfiable,
            Some(_) if len == 0 => Wanted::Unsatisfiable,
            Some(n) => Wanted::Part {
                first: len.saturating_sub(n),
                last: len - 1,
            },
            None => Wanted::Whole,
        },
        (false, _) => {
            let Some(first) = num(a) else {
                return Wanted::Whole;
            };
            let last = if b.is_empty() { Some(u64::MAX) } else { num(b) };
            match last {
                None => Wanted::Whole,
                Some(last) if last < first => Wanted::Whole,
                Some(_) if first >= len => Wanted::Unsatisfiable,
                Some(last) => Wanted::Part {
                    first,
                    last: last.min(len - 1),
                },
            }
        }
        (true, true) => Wanted::Whole,
    }
}

/// Parts up to this size carry `X-Agnes-Content-MD5` (as on 0.84).
const CONTENT_MD5_MAX: u64 = 8 << 20;

/// The `part` of a download's query (`?part=<url-encoded path>`), decoded.
pub fn part_of(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let value = kv.strip_prefix("part=")?;
        Some(crate::fault_layer::percent_decode(&value.replace('+', " ")))
    })
}

/// The file of part `part` of the partitioned table in `folder`, if the
/// part path stays inside the folder and names a regular file there.
fn part_file(folder: &std::path::Path, part: &str) -> Option<PathBuf> {
    let relative = std::path::Path::new(part);
    let plain = is_servable_part(part)
        && !part.contains('\\')
        && relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !plain {
        return None;
    }
    let root = std::fs::canonicalize(folder).ok()?;
    let file = std::fs::canonicalize(folder.join(relative)).ok()?;
    (file.starts_with(&root) && file.is_file()).then_some(file)
}

/// The 403 of a table the caller may not read (for a non-admin, also one
/// that does not exist), in each generation's words.
pub fn not_in_stack(id: &str, current: bool) -> String {
    match current {
        true => format!(
            "Table '{id}' is not in your stack. Ask an admin to add it to a Data Package \
             you have access to (Required or in your stack), then run `agnes pull` to refresh."
        ),
        false => "Access denied to this table".to_string(),
    }
}

/// Whether the 0.84 server serves a part path: every `/`-separated segment
/// matches `^[A-Za-z0-9_][A-Za-z0-9_.=-]*$`.
fn is_servable_part(part: &str) -> bool {
    part.split('/').all(|segment| {
        let mut bytes = segment.bytes();
        bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'=' | b'-'))
    })
}

pub async fn handler(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    // The real server's checks, in its order (CONTRACT.md §7.1): the id's
    // pattern, access (by id), distribution, the file (by name).
    if !is_valid_id(&id) {
        return Err(ApiError::not_found("Table not found"));
    }
    let catalog = app.catalog()?;
    let user = authenticate(&headers, &catalog)?;
    let current = app.generation.is_current();
    if !user.grant.allows(&id) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            not_in_stack(&id, current),
        ));
    }
    let not_found = || ApiError::not_found(format!("Table '{id}' not found"));
    // The registry row: by id, as the server looks it up.
    let meta = catalog
        .name_of(&id)
        .and_then(|name| catalog.table(&name).cloned())
        .or_else(|| catalog.table(&id).cloned())
        .unwrap_or_default();
    if meta.is_remote() {
        return Err(match current {
            true => ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "table '{id}' has query_mode='remote' and is not distributed; \
                     query it with `agnes query` instead of downloading it"
                ),
            ),
            false => not_found(),
        });
    }
    let mut path = app.data_dir.join(format!("{id}.parquet"));
    let mut is_part = false;
    if current {
        if meta.server_only {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "table '{id}' is server_only — it is kept fresh on the server and not \
                     distributed; query it with `agnes query` instead of downloading it"
                ),
            ));
        }
        let folder = (!path.is_file())
            .then(|| tables::table_folder(&app.data_dir, &id))
            .flatten();
        if let Some(folder) = folder {
            let part = part_of(query.as_deref()).ok_or_else(not_found)?;
            path =
                part_file(&folder, &part).ok_or_else(|| ApiError::not_found("Part not found"))?;
            is_part = true;
        }
    }
    let attachment = is_part
        .then(|| path.file_name().and_then(|n| n.to_str()).map(String::from))
        .flatten();
    let opened = tokio::task::spawn_blocking(move || {
        let opened = open(path.clone())?;
        // What the 0.84 server says of small parts: the MD5 of the bytes sent.
        let md5 = match &opened {
            Some((_, len, _)) if is_part && *len <= CONTENT_MD5_MAX => {
                Some(crate::tables::md5_file(&path)?)
            }
            _ => None,
        };
        Ok::<_, io::Error>(opened.map(|(f, len, mtime)| (f, len, mtime, md5)))
    })
    .await
    .map_err(|e| ApiError::internal(format!("opening table '{id}': {e}")))?;
    let (file, len, mtime_ns, content_md5) = match opened {
        Ok(Some(found)) => found,
        Ok(None) => return Err(ApiError::not_found(format!("Table '{id}' not found"))),
        Err(err) => return Err(ApiError::internal(format!("opening table '{id}': {err}"))),
    };

    let etag = format!("\"{mtime_ns}\"");
    let etag_value = HeaderValue::from_str(&etag).map_err(|e| ApiError::internal(e.to_string()))?;
    let if_none_match = headers.get(header::IF_NONE_MATCH).map(|v| v.as_bytes());
    if if_none_match == Some(etag.as_bytes()) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
    }

    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, first, count, content_range) = match parse_range(range, len) {
        Wanted::Whole => (StatusCode::OK, 0, len, None),
        Wanted::Part { first, last } => (
            StatusCode::PARTIAL_CONTENT,
            first,
            last - first + 1,
            Some(format!("bytes {first}-{last}/{len}")),
        ),
        Wanted::Unsatisfiable => {
            let mut resp = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("Range not satisfiable for a file of {len} bytes"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(resp);
        }
    };

    let mut resp = Response::new(Body::new(FileBody::spawn(file, first, count)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(header::ETAG, etag_value);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // The id passed the pattern, so it needs no quoting inside the quotes;
    // a part is named by the last segment of its path (which passed too).
    let filename = attachment.unwrap_or_else(|| format!("{id}.parquet"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(cr) = content_range.and_then(|cr| HeaderValue::from_str(&cr).ok()) {
        h.insert(header::CONTENT_RANGE, cr);
    }
    if let Some(md5) = content_md5.filter(|_| status == StatusCode::OK) {
        if let Ok(v) = HeaderValue::from_str(&md5) {
            h.insert("x-agnes-content-md5", v);
        }
    }
    Ok(resp)
}

/// The open file with its length and mtime (ns), taken from the open handle
/// so that headers and bytes describe the same file; `None` when absent.
fn open(path: PathBuf) -> io::Result<Option<(File, u64, u128)>> {
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    Ok(Some((file, meta.len(), epoch_nanos(meta.modified()?))))
}

/// A body fed by a blocking reader thread through a bounded channel: the
/// reader waits while the client is slow, and stops when it goes away.
struct FileBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    remaining: u64,
}

impl FileBody {
    fn spawn(mut file: File, first: u64, count: u64) -> Self {
        let (tx, rx) = mpsc::channel(CHUNKS);
        tokio::task::spawn_blocking(move || {
            let result = (|| -> io::Result<()> {
                file.seek(SeekFrom::Start(first))?;
                let mut left = count;
                while left > 0 {
                    let want = CHUNK.min(usize::try_from(left).unwrap_or(CHUNK));
                    let mut buf = BytesMut::zeroed(want);
                    let n = file.read(&mut buf)?;
                    if n == 0 {
                        // The file shrank under us: end short, and hyper
                        // closes the connection instead of lying.
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "table file shrank while it was being sent",
                        ));
                    }
                    buf.truncate(n);
                    left -= n as u64;
                    if tx.blocking_send(Ok(buf.freeze())).is_err() {
                        return Ok(()); // client gone
                    }
                }
                Ok(())
            })();
            if let Err(err) = result {
                let _ = tx.blocking_send(Err(err));
            }
        });
        FileBody {
            rx,
            remaining: count,
        }
    }
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                self.remaining = self.remaining.saturating_sub(bytes.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_queries_are_decoded_and_part_paths_stay_in_the_folder() {
        assert_eq!(
            part_of(Some("part=month%3D1%2Fdata_0.parquet")).as_deref(),
            Some("month=1/data_0.parquet")
        );
        assert_eq!(
            part_of(Some("x=1&part=a+b.parquet")).as_deref(),
            Some("a b.parquet")
        );
        assert_eq!(part_of(Some("x=1")), None);
        assert_eq!(part_of(None), None);

        let dir = std::env::temp_dir().join(format!("agnes-parts-{}", std::process::id()));
        let table = dir.join("events");
        std::fs::create_dir_all(table.join("m=1")).unwrap();
        std::fs::write(table.join("m=1/a.parquet"), b"x").unwrap();
        std::fs::write(dir.join("secret.parquet"), b"s").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.join("secret.parquet"), table.join("link.parquet")).unwrap();
        assert!(part_file(&table, "m=1/a.parquet").is_some());
        for hostile in [
            "../secret.parquet",
            "/etc/passwd",
            "m=1/../../secret.parquet",
            "link.parquet",
            "",
            "m=1",
            "m=1\\a.parquet",
            "m=1/.a.parquet",
            "m=1/%61.parquet",
        ] {
            assert_eq!(part_file(&table, hostile), None, "{hostile}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ranges() {
        let p = |h: &str| parse_range(Some(h), 100);
        assert_eq!(parse_range(None, 100), Wanted::Whole);
        assert_eq!(p("bytes=0-9"), Wanted::Part { first: 0, last: 9 });
        assert_eq!(
            p("bytes=90-"),
            Wanted::Part {
                first: 90,
                last: 99
            }
        );
        assert_eq!(
            p("bytes=90-500"),
            Wanted::Part {
                first: 90,
                last: 99
            }
        );
        assert_eq!(
            p("bytes=-10"),
            Wanted::Part {
                first: 90,
                last: 99
            }
        );
        assert_eq!(p("bytes=-1000"), Wanted::Part { first: 0, last: 99 });
        assert_eq!(p("bytes=100-"), Wanted::Unsatisfiable);
        assert_eq!(p("bytes=-0"), Wanted::Unsatisfiable);
        for ignored in [
            "bytes=0-1,5-6",
            "bytes=5-1",
            "bytes=x-",
            "items=0-1",
            "bytes=-",
            "bytes=1",
        ] {
            assert_eq!(p(ignored), Wanted::Whole, "{ignored}");
        }
        assert_eq!(parse_range(Some("bytes=0-"), 0), Wanted::Unsatisfiable);
    }
}
