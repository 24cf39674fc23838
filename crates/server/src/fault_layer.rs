//! The middleware that applies a matching fault to a request, and the body
//! wrapper that cuts, corrupts or stalls a reply already under way.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

use crate::app::App;
use crate::faults::{Endpoint, FaultKind, StallAt};
use crate::reply::ApiError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which fault endpoint a path belongs to, and the table of a download.
pub fn classify(path: &str) -> Option<(Endpoint, Option<String>)> {
    match path {
        "/api/sync/manifest" => return Some((Endpoint::Manifest, None)),
        "/api/memory/bundle" => return Some((Endpoint::Bundle, None)),
        _ => {}
    }
    if path.starts_with("/api/upload/") {
        return Some((Endpoint::Upload, None));
    }
    if path.starts_with("/api/v2/scan") {
        return Some((Endpoint::Scan, None));
    }
    if path.starts_with("/api/v2/") {
        return Some((Endpoint::Schema, None));
    }
    let id = path.strip_prefix("/api/data/")?.strip_suffix("/download")?;
    Some((Endpoint::Download, Some(percent_decode(id))))
}

/// `%XX` decoding, as the router does for path parameters; invalid escapes
/// stay as they are.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Applies the first matching fault, if any, to this request.
pub async fn inject(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let Some((endpoint, table)) = classify(req.uri().path()) else {
        return next.run(req).await;
    };
    let loaded = app.catalog.load();
    if let Ok(catalog) = &loaded.catalog {
        app.faults.sync_catalog(loaded.generation, &catalog.faults);
    }
    let part = crate::download::part_of(req.uri().query());
    let Some(kind) = app.faults.take(endpoint, table.as_deref(), part.as_deref()) else {
        return next.run(req).await;
    };
    // An upload's body is read before a fault answers, as a server or proxy
    // reading the request first would: a reply while the client is still
    // sending makes the connection reset under it, a different fault.
    let replaces_reply = matches!(
        kind,
        FaultKind::Status { .. } | FaultKind::Body { .. } | FaultKind::Redirect { .. }
    );
    let req = match (endpoint, replaces_reply) {
        (Endpoint::Upload, true) => {
            let (parts, body) = req.into_parts();
            let _ = axum::body::to_bytes(body, 64 << 20).await;
            Request::from_parts(parts, Body::empty())
        }
        _ => req,
    };
    match kind {
        FaultKind::Status {
            status, body: None, ..
        } => ApiError::new(status, format!("injected fault: HTTP {}", status.as_u16()))
            .into_response(),
        FaultKind::Status {
            status,
            body: Some(body),
            content_type,
        } => raw(
            status,
            body,
            content_type.as_deref().unwrap_or("text/plain"),
        ),
        FaultKind::Body {
            body,
            content_type,
            status,
        } => raw(status, body, &content_type),
        FaultKind::Redirect { location, status } => {
            let mut resp = raw(status, String::new(), "text/plain");
            match HeaderValue::try_from(location) {
                Ok(value) => {
                    resp.headers_mut().insert(header::LOCATION, value);
                    resp
                }
                Err(err) => ApiError::internal(format!("redirect fault: bad location: {err}"))
                    .into_response(),
            }
        }
        FaultKind::Stall {
            ms,
            at: StallAt::Before,
        } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            next.run(req).await
        }
        FaultKind::Stall {
            ms,
            at: StallAt::Middle,
        } => {
            let resp = next.run(req).await;
            let half = body_len(&resp) / 2;
            wrap(resp, Mode::Stall { at: half, ms })
        }
        FaultKind::Trickle { bytes, every_ms } => {
            wrap(next.run(req).await, Mode::Trickle { bytes, every_ms })
        }
        FaultKind::Cut { after_bytes } => {
            wrap(next.run(req).await, Mode::Cut { after: after_bytes })
        }
        FaultKind::Corrupt => {
            let resp = next.run(req).await;
            let from = body_len(&resp) / 2;
            wrap(
                resp,
                Mode::Corrupt {
                    from,
                    to: from + CORRUPT_LEN,
                },
            )
        }
    }
}

/// How many bytes `corrupt` flips.
pub const CORRUPT_LEN: u64 = 16;

/// How long a cut connection stays open after its last byte, so that the
/// bytes before the cut are flushed to the socket before it is closed.
const LINGER: Duration = Duration::from_millis(30);

fn raw(status: StatusCode, body: String, content_type: &str) -> Response {
    let mut resp = (status, body).into_response();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    resp
}

/// The body length the client was promised: Content-Length, else the body's
/// exact size; 0 when neither is known.
fn body_len(resp: &Response) -> u64 {
    resp.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .or_else(|| http_body::Body::size_hint(resp.body()).exact())
        .unwrap_or(0)
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Cut { after: u64 },
    Corrupt { from: u64, to: u64 },
    Stall { at: u64, ms: u64 },
    Trickle { bytes: u64, every_ms: u64 },
}

fn wrap(resp: Response, mode: Mode) -> Response {
    let (parts, body) = resp.into_parts();
    Response::from_parts(
        parts,
        Body::new(FaultBody {
            inner: body,
            mode,
            pos: 0,
            held: None,
            sleep: None,
            stalled: false,
            failing: false,
        }),
    )
}

/// A reply body misbehaving as `mode` says. It keeps the inner size hint, so
/// the promised Content-Length is the honest one.
struct FaultBody {
    inner: Body,
    mode: Mode,
    /// Body bytes handed on so far.
    pos: u64,
    /// Data to send after the current sleep (the second half of a stall).
    held: Option<Bytes>,
    sleep: Option<Pin<Box<Sleep>>>,
    stalled: bool,
    /// Cut: the next wake-up ends the body with an error, which makes hyper
    /// close the connection short of its Content-Length.
    failing: bool,
}

impl FaultBody {
    fn sleep_for(&mut self, d: Duration) {
        self.sleep = Some(Box::pin(tokio::time::sleep(d)));
    }

    /// Passes one data chunk through the fault; returns what to send now.
    fn transform(&mut self, data: Bytes) -> Option<Bytes> {
        let start = self.pos;
        let end = start + data.len() as u64;
        match self.mode {
            Mode::Cut { after } => {
                if end <= after {
                    return Some(data);
                }
                self.failing = true;
                self.sleep_for(LINGER);
                let keep = after.saturating_sub(start) as usize;
                (keep > 0).then(|| data.slice(..keep))
            }
            Mode::Corrupt { from, to } => {
                if end <= from || start >= to {
                    return Some(data);
                }
                let mut bytes = BytesMut::from(&data[..]);
                let lo = from.max(start) - start;
                let hi = to.min(end) - start;
                for b in &mut bytes[lo as usize..hi as usize] {
                    *b ^= 0xff;
                }
                Some(bytes.freeze())
            }
            Mode::Stall { at, ms } => {
                if self.stalled || end <= at {
                    return Some(data);
                }
                self.stalled = true;
                self.sleep_for(Duration::from_millis(ms));
                let split = (at - start.min(at)) as usize;
                let mut data = data;
                let rest = data.split_off(split);
                self.held = Some(rest);
                (!data.is_empty()).then_some(data)
            }
            Mode::Trickle { bytes, every_ms } => {
                let mut data = data;
                let rest = data.split_off((bytes as usize).min(data.len()));
                self.held = (!rest.is_empty()).then_some(rest);
                self.sleep_for(Duration::from_millis(every_ms));
                (!data.is_empty()).then_some(data)
            }
        }
    }
}

impl http_body::Body for FaultBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(sleep) = this.sleep.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                this.sleep = None;
            }
            if this.failing {
                return Poll::Ready(Some(Err("fault: connection cut".into())));
            }
            if let Some(rest) = this.held.take() {
                // A trickle hands on its held data a piece at a time too.
                let out = match this.mode {
                    Mode::Trickle { .. } => this.transform(rest),
                    _ => Some(rest),
                };
                if let Some(out) = out {
                    this.pos += out.len() as u64;
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
                continue;
            }
            let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                None => return Poll::Ready(None),
                Some(Err(err)) => return Poll::Ready(Some(Err(err.into()))),
                Some(Ok(frame)) => frame,
            };
            let data = match frame.into_data() {
                Ok(data) => data,
                Err(frame) => return Poll::Ready(Some(Ok(frame))),
            };
            if let Some(out) = this.transform(data) {
                this.pos += out.len() as u64;
                return Poll::Ready(Some(Ok(Frame::data(out))));
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn classifies_paths() {
        assert_eq!(
            classify("/api/data/in.c-crm.people/download"),
            Some((Endpoint::Download, Some("in.c-crm.people".into())))
        );
        assert_eq!(
            classify("/api/data/a%2Fb/download"),
            Some((Endpoint::Download, Some("a/b".into())))
        );
        assert_eq!(
            classify("/api/sync/manifest"),
            Some((Endpoint::Manifest, None))
        );
        assert_eq!(
            classify("/api/upload/local-md"),
            Some((Endpoint::Upload, None))
        );
        assert_eq!(classify("/api/health"), None);
        assert_eq!(classify("/admin/faults"), None);
    }

    #[test]
    fn percent_decoding_keeps_bad_escapes() {
        assert_eq!(percent_decode("a%2fb%"), "a/b%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%41"), "A");
    }

    async fn run(mode: Mode, chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let owned: Vec<Result<Bytes, std::io::Error>> = chunks
            .iter()
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let body = Body::from_stream(futures_stream(owned));
        let resp = wrap(Response::new(body), mode);
        let mut body = resp.into_body();
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => out.extend_from_slice(&f.into_data().unwrap()),
                Err(_) => return (out, true),
            }
        }
        (out, false)
    }

    fn futures_stream(
        items: Vec<Result<Bytes, std::io::Error>>,
    ) -> impl futures_core::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        struct It(std::vec::IntoIter<Result<Bytes, std::io::Error>>);
        impl futures_core::Stream for It {
            type Item = Result<Bytes, std::io::Error>;
            fn poll_next(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Self::Item>> {
                Poll::Ready(self.0.next())
            }
        }
        It(items.into_iter())
    }

    #[tokio::test]
    async fn cut_sends_exactly_k_bytes_then_fails() {
        let (out, failed) = run(Mode::Cut { after: 5 }, &[b"abc", b"defgh", b"ij"]).await;
        assert_eq!(out, b"abcde");
        assert!(failed);
        let (out, failed) = run(Mode::Cut { after: 0 }, &[b"abc"]).await;
        assert!(out.is_empty() && failed);
        let (out, failed) = run(Mode::Cut { after: 99 }, &[b"abc"]).await;
        assert_eq!((out.as_slice(), failed), (&b"abc"[..], false));
    }

    #[tokio::test]
    async fn corrupt_flips_only_the_window_across_chunks() {
        let (out, failed) = run(Mode::Corrupt { from: 2, to: 5 }, &[b"abc", b"defg"]).await;
        assert!(!failed);
        let want: Vec<u8> = b"abcdefg"
            .iter()
            .enumerate()
            .map(|(i, b)| if (2..5).contains(&i) { b ^ 0xff } else { *b })
            .collect();
        assert_eq!(out, want);
    }

    #[tokio::test]
    async fn trickle_sends_every_byte_a_piece_at_a_time() {
        let started = std::time::Instant::now();
        let (out, failed) = run(
            Mode::Trickle {
                bytes: 3,
                every_ms: 20,
            },
            &[b"abcdefgh", b"ij"],
        )
        .await;
        assert_eq!((out.as_slice(), failed), (&b"abcdefghij"[..], false));
        // Four pieces (abc, def, gh, ij), each followed by a wait.
        assert!(started.elapsed() >= Duration::from_millis(80));
    }

    #[tokio::test]
    async fn stall_in_the_middle_delays_the_second_half() {
        let started = std::time::Instant::now();
        let (out, _) = run(Mode::Stall { at: 4, ms: 120 }, &[b"abcdefgh"]).await;
        assert_eq!(out, b"abcdefgh");
        assert!(started.elapsed() >= Duration::from_millis(120));
    }
}
