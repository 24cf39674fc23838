//! One HTTP exchange that the caller can walk away from at any moment.
//!
//! A blocking `reqwest` call cannot be stopped from outside: a stalled read
//! waits for its whole timeout, and a read timeout alone does not bound a
//! server that trickles a byte every few seconds. So the request is sent and
//! its body read on a thread of its own, which hands the body over in chunks;
//! the caller waits on those chunks in short steps and checks, each step, its
//! `Cancel`, how long the body has stalled, the overall deadline and the
//! minimum rate (as curl's `--speed-limit`/`--speed-time`). When it gives
//! up, it just stops listening: the thread ends at its next read, within
//! reqwest's own timeout, holding no file.
//!
//! A reading thread whose exchange ran to its end is kept for the calling
//! thread's next one, with its buffers: a thread started per exchange was
//! one per table of a sync (issue 25). Kept threads end after a few idle
//! seconds, so none lingers in the host.

use std::cell::RefCell;
use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use reqwest::blocking::RequestBuilder;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use crate::cancel::{Cancel, TICK};

/// Size of the chunks the reading thread hands over: large enough that a
/// fast link is not limited by hand-overs.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// Chunks in flight between the reading thread and the caller.
const IN_FLIGHT: usize = 4;

/// How long a kept reading thread waits for its next exchange.
const IDLE_FOR: Duration = Duration::from_secs(5);

/// How long after its last exchange a kept reader is handed another. Well
/// inside `IDLE_FOR`, whose wait starts only after that exchange's end
/// reached the caller: a job is never sent to a thread about to time out,
/// which would drop it unanswered.
const REUSE_WITHIN: Duration = Duration::from_secs(3);

/// A reading thread: it takes exchanges one after another.
struct Reader {
    jobs: Sender<Job>,
    /// Buffers handed back, kept across its exchanges.
    recycle: SyncSender<Vec<u8>>,
    /// When its last exchange ended.
    kept: Instant,
    #[cfg(test)]
    thread: thread::ThreadId,
}

/// A request to send, and where its events go.
type Job = (RequestBuilder, SyncSender<Event>);

thread_local! {
    /// The calling thread's reading thread, idle between exchanges.
    static IDLE: RefCell<Option<Reader>> = const { RefCell::new(None) };
}

impl Reader {
    fn start() -> io::Result<Reader> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (recycle, recycled) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT + 1);
        let _handle = thread::Builder::new()
            .name("agnes-http".into())
            .spawn(move || {
                while let Ok((request, events)) = queue.recv_timeout(IDLE_FOR) {
                    exchange(request, events, &recycled);
                }
            })?;
        Ok(Reader {
            jobs,
            recycle,
            kept: Instant::now(),
            #[cfg(test)]
            thread: _handle.thread().id(),
        })
    }

    /// Hands `job` to the calling thread's idle reader while it surely
    /// still waits, or to a new one.
    fn take(job: Job) -> io::Result<Reader> {
        let idle = IDLE
            .with(|r| r.borrow_mut().take())
            .filter(|r| r.kept.elapsed() < REUSE_WITHIN);
        let job = match idle {
            Some(reader) => match reader.jobs.send(job) {
                Ok(()) => return Ok(reader),
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        let reader = Reader::start()?;
        reader
            .jobs
            .send(job)
            .map_err(|_| io::Error::other("the reading thread ended at once"))?;
        Ok(reader)
    }

    /// Keeps this reader for the calling thread's next exchange.
    fn keep(mut self) {
        self.kept = Instant::now();
        IDLE.with(|r| *r.borrow_mut() = Some(self));
    }
}

/// How long an exchange may take, beyond the client's own timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The whole exchange, headers and body, ends by then.
    pub deadline: Option<Instant>,
    /// A body that brings no byte for this long is given up.
    pub stall: Duration,
    /// A body slower than `min_rate` bytes/s over `rate_window` is given up.
    pub min_rate: u64,
    pub rate_window: Duration,
}

/// Why an exchange was given up by this side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    Cancelled,
    Deadline(Duration),
    Stalled(Duration),
    TooSlow {
        rate: u64,
        min_rate: u64,
        window: Duration,
    },
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Cancelled => write!(f, "interrupted"),
            Stop::Deadline(d) => write!(
                f,
                "timed out: not done within {:.1} s in all",
                d.as_secs_f64()
            ),
            Stop::Stalled(d) => write!(f, "timed out: no data for {:.1} s", d.as_secs_f64()),
            Stop::TooSlow {
                rate,
                min_rate,
                window,
            } => write!(
                f,
                "{rate} bytes/s over the last {:.0} s, below the minimum of {min_rate} bytes/s",
                window.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for Stop {}

impl Stop {
    /// The `Stop` an `io::Error` from `Reply::read` carries, if any.
    pub fn of(e: &io::Error) -> Option<&Stop> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<Stop>())
    }

    fn into_io(self) -> io::Error {
        let kind = match self {
            Stop::Cancelled => io::ErrorKind::Other,
            _ => io::ErrorKind::TimedOut,
        };
        io::Error::new(kind, self)
    }
}

/// Whether a body read failed on reqwest's own read timeout.
fn is_timeout(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::TimedOut {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> =
        e.get_ref().map(|inner| inner as _);
    while let Some(err) = source {
        if err
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
        {
            return true;
        }
        source = err.source();
    }
    false
}

/// An error's message with its chain of causes, which hold the useful part
/// ("connection refused", "operation timed out"). Also for the `io::Error`
/// a response body's `read` wraps reqwest's in.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = cause.source();
    }
    message
}

enum Event {
    Head(StatusCode, HeaderMap),
    Chunk(Chunk),
    End,
    SendFailed(String),
    ReadFailed(io::Error),
}

/// A piece of a body: the first `len` bytes of a buffer that keeps its
/// full size, so that handing it back for the next read costs no zeroing
/// (a body decompressed on the way comes in many small reads).
pub struct Chunk {
    buf: Vec<u8>,
    len: usize,
}

impl std::ops::Deref for Chunk {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// How sending failed, before any response.
#[derive(Debug)]
pub enum SendError {
    /// Connecting or sending failed, or the server sent no response in time:
    /// the message with its causes.
    Transport(String),
    /// This side gave up.
    Stopped(Stop),
}

/// A response whose body is read through the bounds and the `Cancel`.
pub struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    events: Receiver<Event>,
    /// Its reading thread, kept for another exchange once this one ends.
    reader: Option<Reader>,
    cancel: Cancel,
    bounds: Bounds,
    /// The chunk being read by `Read`, and how far.
    current: Option<(Chunk, usize)>,
    finished: bool,
    started: Instant,
    last_data: Instant,
    window_start: Instant,
    window_bytes: u64,
}

/// Sends `request` on a thread of its own and waits for the response head.
pub fn send(request: RequestBuilder, cancel: &Cancel, bounds: Bounds) -> Result<Reply, SendError> {
    let (events_tx, events) = mpsc::sync_channel(IN_FLIGHT);
    let reader = Reader::take((request, events_tx))
        .map_err(|e| SendError::Transport(format!("cannot start a thread: {e}")))?;
    let started = Instant::now();
    loop {
        if cancel.is_cancelled() {
            return Err(SendError::Stopped(Stop::Cancelled));
        }
        let wait = remaining(bounds.deadline).min(TICK);
        if wait.is_zero() {
            return Err(SendError::Stopped(Stop::Deadline(started.elapsed())));
        }
        match events.recv_timeout(wait) {
            Ok(Event::Head(status, headers)) => {
                let now = Instant::now();
                return Ok(Reply {
                    status,
                    headers,
                    events,
                    reader: Some(reader),
                    cancel: cancel.clone(),
                    bounds,
                    current: None,
                    finished: false,
                    started,
                    last_data: now,
                    window_start: now,
                    window_bytes: 0,
                });
            }
            Ok(Event::SendFailed(e)) => return Err(SendError::Transport(e)),
            Ok(_) | Err(RecvTimeoutError::Disconnected) => {
                return Err(SendError::Transport(
                    "the HTTP exchange ended without a response".into(),
                ))
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

fn remaining(deadline: Option<Instant>) -> Duration {
    deadline.map_or(Duration::MAX, |d| {
        d.saturating_duration_since(Instant::now())
    })
}

/// The reading thread: sends the request, then hands the body over chunk by
/// chunk until it ends, fails, or nobody listens any more.
fn exchange(request: RequestBuilder, events: SyncSender<Event>, recycled: &Receiver<Vec<u8>>) {
    let mut response = match request.send() {
        Ok(r) => r,
        Err(e) => {
            let _ = events.send(Event::SendFailed(describe(&e)));
            return;
        }
    };
    if events
        .send(Event::Head(response.status(), response.headers().clone()))
        .is_err()
    {
        return;
    }
    loop {
        // A buffer handed back is full size already; only a new one is zeroed.
        let mut buf = recycled.try_recv().unwrap_or_else(|_| vec![0; CHUNK_BYTES]);
        let event = match response.read(&mut buf) {
            Ok(0) => Event::End,
            Ok(len) => Event::Chunk(Chunk { buf, len }),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Event::ReadFailed(e),
        };
        let last = !matches!(event, Event::Chunk(_));
        if events.send(event).is_err() || last {
            return;
        }
    }
}

impl Reply {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The length the server announced for the body, as received (none when
    /// the body is decompressed on the way).
    pub fn content_length(&self) -> Option<u64> {
        self.headers
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
    }

    /// The next chunk of the body, `None` at its end. Give the chunk back
    /// with `recycle` to spare an allocation.
    pub fn next_chunk(&mut self) -> io::Result<Option<Chunk>> {
        if let Some((mut chunk, pos)) = self.current.take() {
            if pos < chunk.len {
                chunk.buf.copy_within(pos..chunk.len, 0);
                chunk.len -= pos;
                return Ok(Some(chunk));
            }
        }
        if self.finished {
            return Ok(None);
        }
        loop {
            self.check_bounds()?;
            let wait = remaining(self.bounds.deadline).min(TICK);
            match self.events.recv_timeout(wait) {
                Ok(Event::Chunk(chunk)) => {
                    self.last_data = Instant::now();
                    self.window_bytes += chunk.len as u64;
                    return Ok(Some(chunk));
                }
                Ok(Event::End) => {
                    self.finished = true;
                    if let Some(reader) = self.reader.take() {
                        reader.keep();
                    }
                    return Ok(None);
                }
                Ok(Event::ReadFailed(e)) => {
                    self.finished = true;
                    // reqwest's read timeout is the stall bound (`http.rs`):
                    // the same stall, worded as when this side saw it first.
                    if is_timeout(&e) {
                        return Err(Stop::Stalled(self.bounds.stall).into_io());
                    }
                    return Err(e);
                }
                Ok(Event::Head(..)) | Ok(Event::SendFailed(_)) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.finished = true;
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the HTTP exchange ended mid-body",
                    ));
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Hands a chunk's buffer back to the reading thread.
    pub fn recycle(&self, chunk: Chunk) {
        if let Some(reader) = &self.reader {
            let _ = reader.recycle.try_send(chunk.buf);
        }
    }

    /// Whether to give up now: interrupted, past the deadline, stalled, or
    /// too slow over the last window.
    fn check_bounds(&mut self) -> io::Result<()> {
        if self.cancel.is_cancelled() {
            return Err(Stop::Cancelled.into_io());
        }
        let now = Instant::now();
        if let Some(deadline) = self.bounds.deadline {
            if now >= deadline {
                return Err(Stop::Deadline(now.duration_since(self.started)).into_io());
            }
        }
        let quiet = now.duration_since(self.last_data);
        if quiet >= self.bounds.stall {
            return Err(Stop::Stalled(quiet).into_io());
        }
        let window = now.duration_since(self.window_start);
        if self.bounds.min_rate > 0 && window >= self.bounds.rate_window {
            let rate = (self.window_bytes as f64 / window.as_secs_f64()) as u64;
            if rate < self.bounds.min_rate {
                return Err(Stop::TooSlow {
                    rate,
                    min_rate: self.bounds.min_rate,
                    window,
                }
                .into_io());
            }
            (self.window_start, self.window_bytes) = (now, 0);
        }
        Ok(())
    }
}

impl Read for Reply {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (chunk, pos) = match self.current.take() {
            Some((chunk, pos)) if pos < chunk.len => (chunk, pos),
            used => {
                // A chunk read to its end goes back to the reading thread:
                // dropped, each new one would be a 256 KiB buffer zeroed
                // (13% of a gzipped scan's CPU, measured).
                if let Some((chunk, _)) = used {
                    self.recycle(chunk);
                }
                match self.next_chunk()? {
                    Some(chunk) => (chunk, 0),
                    None => return Ok(0),
                }
            }
        };
        let n = buf.len().min(chunk.len() - pos);
        buf[..n].copy_from_slice(&chunk[pos..pos + n]);
        self.current = Some((chunk, pos + n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// A one-request HTTP server on loopback that sends a `len`-byte body
    /// `piece` bytes at a time, `every` apart; returns its URL.
    fn server(len: usize, piece: usize, every: Duration) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut out = stream;
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
            let _ = out.write_all(head.as_bytes());
            let mut sent = 0;
            while sent < len {
                thread::sleep(every);
                let n = piece.min(len - sent);
                if out.write_all(&vec![b'x'; n]).is_err() {
                    return;
                }
                sent += n;
            }
        });
        url
    }

    fn bounds() -> Bounds {
        Bounds {
            deadline: None,
            stall: Duration::from_secs(10),
            min_rate: 0,
            rate_window: Duration::from_secs(30),
        }
    }

    fn read_all(url: &str, cancel: &Cancel, bounds: Bounds) -> (io::Result<usize>, Duration) {
        let started = Instant::now();
        let client = reqwest::blocking::Client::new();
        let mut reply = send(client.get(url), cancel, bounds)
            .map_err(|e| format!("{e:?}"))
            .unwrap();
        let mut body = Vec::new();
        (reply.read_to_end(&mut body), started.elapsed())
    }

    fn stop_of(result: io::Result<usize>) -> Stop {
        Stop::of(&result.unwrap_err()).expect("a Stop").clone()
    }

    #[test]
    fn a_body_within_its_bounds_arrives_whole() {
        let url = server(600_000, 200_000, Duration::from_millis(10));
        let (read, _) = read_all(&url, &Cancel::new(), bounds());
        assert_eq!(read.unwrap(), 600_000);
    }

    #[test]
    fn a_trickle_below_the_minimum_rate_is_given_up() {
        let url = server(1_000_000, 10, Duration::from_millis(50));
        let limits = Bounds {
            min_rate: 1000,
            rate_window: Duration::from_millis(300),
            ..bounds()
        };
        let (read, took) = read_all(&url, &Cancel::new(), limits);
        assert!(matches!(
            stop_of(read),
            Stop::TooSlow { min_rate: 1000, .. }
        ));
        assert!(took < Duration::from_secs(3), "{took:?}");
    }

    #[test]
    fn the_deadline_ends_a_body_that_keeps_coming() {
        let url = server(1_000_000, 100, Duration::from_millis(20));
        let limits = Bounds {
            deadline: Some(Instant::now() + Duration::from_millis(300)),
            ..bounds()
        };
        let (read, took) = read_all(&url, &Cancel::new(), limits);
        assert!(matches!(stop_of(read), Stop::Deadline(_)));
        assert!(took < Duration::from_secs(3), "{took:?}");
    }

    #[test]
    fn a_stalled_body_is_given_up() {
        let url = server(100, 100, Duration::from_secs(30));
        let limits = Bounds {
            stall: Duration::from_millis(300),
            ..bounds()
        };
        let (read, _) = read_all(&url, &Cancel::new(), limits);
        assert!(matches!(stop_of(read), Stop::Stalled(_)));
    }

    fn idle_reader() -> Option<thread::ThreadId> {
        IDLE.with(|r| r.borrow().as_ref().map(|r| r.thread))
    }

    #[test]
    fn a_reading_thread_is_kept_only_after_a_whole_exchange() {
        let url = server(300_000, 300_000, Duration::ZERO);
        assert_eq!(read_all(&url, &Cancel::new(), bounds()).0.unwrap(), 300_000);
        let kept = idle_reader().expect("a reading thread kept after a whole body");
        let url = server(1000, 1000, Duration::ZERO);
        assert_eq!(read_all(&url, &Cancel::new(), bounds()).0.unwrap(), 1000);
        assert_eq!(
            idle_reader(),
            Some(kept),
            "the same thread took the next one"
        );
        // Given up mid-body, its thread still reads: it is not kept.
        let url = server(100, 100, Duration::from_secs(30));
        let limits = Bounds {
            stall: Duration::from_millis(200),
            ..bounds()
        };
        assert!(matches!(
            stop_of(read_all(&url, &Cancel::new(), limits).0),
            Stop::Stalled(_)
        ));
        assert_eq!(idle_reader(), None);
        let url = server(10, 10, Duration::ZERO);
        assert_eq!(read_all(&url, &Cancel::new(), bounds()).0.unwrap(), 10);
        let fresh = idle_reader().expect("kept after a whole body");
        assert_ne!(fresh, kept, "a new thread after it");
        // One idle too long may be timing out: not handed another job.
        IDLE.with(|r| {
            if let Some(r) = r.borrow_mut().as_mut() {
                r.kept -= REUSE_WITHIN;
            }
        });
        let url = server(10, 10, Duration::ZERO);
        assert_eq!(read_all(&url, &Cancel::new(), bounds()).0.unwrap(), 10);
        assert!(
            idle_reader().is_some_and(|t| t != fresh),
            "not the aged one"
        );
    }

    #[test]
    fn a_cancel_ends_a_stalled_read_at_once() {
        let url = server(100, 100, Duration::from_secs(30));
        let cancel = Cancel::new();
        let canceller = cancel.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(200));
            canceller.cancel();
        });
        let (read, took) = read_all(&url, &cancel, bounds());
        assert_eq!(stop_of(read), Stop::Cancelled);
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
}
