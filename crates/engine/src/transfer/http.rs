//! HTTP to the Agnes server: one client per process, connections kept
//! alive and reused, the token only ever in the `Authorization` header, transient
//! failures retried with backoff (CONTRACT.md §4.4).

use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::header::{HeaderValue, ACCEPT_ENCODING, AUTHORIZATION, IF_NONE_MATCH};
use reqwest::StatusCode;

use crate::cancel::{Cancel, TICK};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::protocol::ids::truncate;
use crate::secrets::redact::Redactor;
use crate::secrets::token::Token;
use crate::transfer::exchange::{self, describe, Bounds, Reply, SendError, Stop};

/// Waits between attempts: 0.3 s, 1 s, 3 s (CONTRACT.md §4.4).
pub const BACKOFF: [Duration; 3] = [
    Duration::from_millis(300),
    Duration::from_millis(1000),
    Duration::from_millis(3000),
];

/// Runs `attempt` until it succeeds, fails for good, or the waits in
/// `BACKOFF` are spent; transient failures only are tried again. The last
/// failure's message says how many attempts were made. A cancelled run
/// stops waiting at once.
pub fn retrying<T>(
    cancel: &Cancel,
    mut attempt: impl FnMut() -> Result<T, Failure>,
) -> Result<T, Failure> {
    let mut tries = 0;
    loop {
        match attempt() {
            Ok(value) => return Ok(value),
            Err(f) if f.transient && tries < BACKOFF.len() => {
                if !pause(cancel, BACKOFF[tries]) {
                    return Err(Failure::interrupted());
                }
                tries += 1;
            }
            Err(mut f) => {
                if tries > 0 {
                    f.message = format!("{} (after {} attempts)", f.message, tries + 1);
                }
                return Err(f);
            }
        }
    }
}

/// Sleeps `wait` in steps of `TICK`; false when cancelled meanwhile.
pub fn pause(cancel: &Cancel, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    loop {
        if cancel.is_cancelled() {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(TICK));
    }
}

/// The largest manifest or memory bundle accepted, decompressed. A manifest
/// of 100 000 tables is about 10 MB; past this, a broken or hostile server
/// (an endless body, a gzip bomb) would exhaust the analyst's memory.
pub const MAX_JSON_BYTES: u64 = 256 << 20;

/// The longest `ETag` kept (real ones are an MD5 or a short version).
pub const MAX_ETAG_BYTES: usize = 256;

/// The HTTP client for `timeouts`, built once per process and kept.
/// Building one loads the system's root certificates (3 ms, a tenth of a
/// notebook's no-op sync), and a kept client keeps its connections, so the
/// next sync from the same session skips the TCP and TLS handshakes. A
/// forked child (Python's multiprocessing) builds its own: the parent's
/// client relies on a thread the child does not have.
///
/// `roots: false` gives a client that trusts no certificate, for a caller
/// that talks only to a plain `http://` server (the quick no-op): it costs
/// no certificate loading, and a redirect to `https://` fails with it.
fn shared_client(timeouts: Timeouts, roots: bool) -> Result<Client> {
    type Kept = (u32, (Duration, Duration, bool), Client);
    static KEPT: Mutex<Vec<Kept>> = Mutex::new(Vec::new());
    let pid = std::process::id();
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    if kept.iter().any(|(owner, ..)| *owner != pid) {
        // Inherited through a fork: never dropped, as dropping a client
        // joins its thread, which in this process would wait forever.
        let (mine, inherited) = std::mem::take(&mut *kept)
            .into_iter()
            .partition(|(owner, ..)| *owner == pid);
        std::mem::forget::<Vec<Kept>>(inherited);
        *kept = mine;
    }
    let key = (timeouts.connect, timeouts.read, roots);
    if let Some((.., client)) = kept.iter().find(|(_, k, _)| *k == key) {
        return Ok(client.clone());
    }
    let mut builder = Client::builder()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.read)
        .tcp_nodelay(true)
        // reqwest drops Authorization on a redirect to another host.
        .redirect(reqwest::redirect::Policy::limited(5))
        .user_agent(concat!("agnes/", env!("CARGO_PKG_VERSION")));
    if !roots {
        builder = builder.tls_certs_only(Vec::new());
    }
    let client = builder
        .build()
        .map_err(|e| Error::Config(format!("cannot set up HTTP: {}", describe(&e))))?;
    // A handful of timeout pairs at most; a caller varying them per call
    // does not grow the list without end.
    if kept.len() >= 8 {
        kept.remove(0);
    }
    kept.push((pid, key, client.clone()));
    Ok(client)
}

/// Timeouts and retry budget of a client.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Giving up on a TCP connect; an unreachable server must not hang a hook.
    pub connect: Duration,
    /// Giving up on a response or a body read that stalls this long.
    pub read: Duration,
    /// The manifest and bundle calls stop retrying when the next wait would
    /// end past this, so that a dead server costs seconds, not minutes.
    pub metadata_deadline: Duration,
    /// A manifest or bundle, all attempts and the whole body, takes at most
    /// this long: a server that trickles a byte at a time cannot hold a
    /// sync (or a hook) forever.
    pub metadata_total: Duration,
    /// A download slower than `min_rate` bytes/s over `rate_window` is
    /// given up and tried again, as curl's `--speed-limit`/`--speed-time`.
    pub min_rate: u64,
    pub rate_window: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_millis(1500),
            read: Duration::from_secs(30),
            metadata_deadline: Duration::from_secs(3),
            metadata_total: Duration::from_secs(60),
            min_rate: 1024,
            rate_window: Duration::from_secs(30),
        }
    }
}

/// A failed request, classified for the retry policy.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: Option<u16>,
    pub transient: bool,
    pub message: String,
}

impl Failure {
    /// Connect, read and timeout errors are all worth another try; a run
    /// that was interrupted is not.
    fn unsent(e: SendError) -> Failure {
        match e {
            SendError::Transport(message) => Failure {
                status: None,
                transient: true,
                message,
            },
            SendError::Stopped(stop) => Failure::stopped(stop),
        }
    }

    /// A request that failed in reqwest itself (a client of its own, as
    /// for signed URLs): connect, read and timeout errors are worth another
    /// try.
    pub fn transport(e: &reqwest::Error) -> Failure {
        Failure {
            status: None,
            transient: true,
            message: describe(e),
        }
    }

    /// This side gave up: the deadline or rate bounds are worth another
    /// try, an interruption is not.
    pub fn stopped(stop: Stop) -> Failure {
        Failure {
            status: None,
            transient: stop != Stop::Cancelled,
            message: stop.to_string(),
        }
    }

    pub fn interrupted() -> Failure {
        Failure::stopped(Stop::Cancelled)
    }

    pub fn io(action: &str, e: &std::io::Error) -> Failure {
        Failure {
            status: None,
            transient: false,
            message: format!("{action}: {e}"),
        }
    }

    pub fn from_status(status: StatusCode, response: Reply, redactor: &Redactor) -> Failure {
        let detail = error_detail(response, redactor);
        Failure {
            status: Some(status.as_u16()),
            transient: status.is_server_error(),
            message: match detail {
                Some(d) => format!("HTTP {status}: {d}"),
                None => format!("HTTP {status}"),
            },
        }
    }
}

/// The `detail` of a JSON error body, or an excerpt of any other body.
fn error_detail(response: Reply, redactor: &Redactor) -> Option<String> {
    let mut body = Vec::new();
    response.take(4096).read_to_end(&mut body).ok()?;
    // Hidden before the excerpt is cut: a cut token would no longer match.
    let body = redactor.hide_bytes(body);
    let text = String::from_utf8_lossy(&body);
    let detail = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("detail").map(|d| {
                d.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| d.to_string())
            })
        });
    let detail = detail.unwrap_or_else(|| text.trim().to_string());
    (!detail.is_empty()).then(|| truncate(&detail, 200))
}

/// The server, as seen by one sync, manifest or upload call.
pub struct ServerClient {
    client: Client,
    base: String,
    token: Token,
    timeouts: Timeouts,
    cancel: Cancel,
    redactor: Redactor,
}

impl ServerClient {
    /// A client whose every wait also ends when `cancel` is cancelled.
    pub fn new(settings: &Settings, timeouts: Timeouts, cancel: &Cancel) -> Result<ServerClient> {
        Self::with_roots(settings, timeouts, cancel, true)
    }

    /// A client for the server's own API alone (no signed URLs): for a
    /// plain `http://` server no root certificates are loaded.
    pub fn server_only(
        settings: &Settings,
        timeouts: Timeouts,
        cancel: &Cancel,
    ) -> Result<ServerClient> {
        let plain = settings.server.starts_with("http://");
        Self::with_roots(settings, timeouts, cancel, !plain)
    }

    fn with_roots(
        settings: &Settings,
        timeouts: Timeouts,
        cancel: &Cancel,
        roots: bool,
    ) -> Result<ServerClient> {
        let token = settings.require_token()?.clone();
        let client = shared_client(timeouts, roots)?;
        Ok(ServerClient {
            client,
            base: settings.server.clone(),
            token,
            timeouts,
            cancel: cancel.clone(),
            redactor: settings.redactor(),
        })
    }

    pub fn cancel(&self) -> &Cancel {
        &self.cancel
    }

    /// The bounds of one exchange: the client's stall and rate limits, and
    /// `deadline` for the whole of it.
    pub fn bounds(&self, deadline: Option<Instant>) -> Bounds {
        Bounds {
            deadline,
            stall: self.timeouts.read,
            min_rate: self.timeouts.min_rate,
            rate_window: self.timeouts.rate_window,
        }
    }

    /// Whether an `ETag` from the server may be stored and sent back: a
    /// short one without the token (a hostile 64 KiB one would bloat the
    /// state and every later request).
    pub fn keeps_etag(&self, etag: &str) -> bool {
        etag.len() <= MAX_ETAG_BYTES && !self.redactor.holds_token(etag)
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Hides this call's token in server text.
    pub(crate) fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The full URL of `path`; it never contains the token.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request to `path` carrying the token; the header is marked
    /// sensitive so that no debug output shows it.
    fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header(AUTHORIZATION, self.authorization())
    }

    fn authorization(&self) -> HeaderValue {
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.token.expose()))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid"));
        auth.set_sensitive(true);
        auth
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(reqwest::Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(reqwest::Method::POST, path)
    }

    /// GETs a JSON document (manifest, bundle), retrying transient failures
    /// within the metadata deadline. A 401 is `Error::Unauthorized`.
    pub fn get_json(&self, path: &str, what: &'static str) -> Result<Vec<u8>> {
        let url = self.url(path);
        let started = Instant::now();
        let bounds = self.bounds(Some(started + self.timeouts.metadata_total));
        let mut attempt = 0;
        loop {
            let request = self.get(path).header(ACCEPT_ENCODING, "gzip");
            let result = exchange::send(request, &self.cancel, bounds)
                .map_err(Failure::unsent)
                .and_then(|response| match response.status() {
                    StatusCode::OK => {
                        let announced = response.content_length();
                        read_capped(response, announced, MAX_JSON_BYTES)
                    }
                    status => Err(Failure::from_status(status, response, &self.redactor)),
                });
            match result {
                // A body that echoes the token (a proxy's error page, a
                // bundle) must not carry it into the state or the rules.
                Ok(body) => return Ok(self.redactor.hide_bytes(body)),
                Err(_) if self.cancel.is_cancelled() => return Err(Error::Interrupted),
                Err(f) if f.status == Some(401) => {
                    return Err(Error::Unauthorized {
                        url,
                        detail: f.message,
                    });
                }
                Err(f) => {
                    let wait = BACKOFF.get(attempt).copied();
                    match wait.filter(|w| {
                        f.transient && started.elapsed() + *w < self.timeouts.metadata_deadline
                    }) {
                        Some(wait) if pause(&self.cancel, wait) => {}
                        Some(_) => return Err(Error::Interrupted),
                        None => {
                            return Err(Error::Http {
                                what,
                                url,
                                reason: f.message,
                            })
                        }
                    }
                }
            }
            attempt += 1;
        }
    }

    /// One GET of a table's parquet; the caller reads and retries.
    pub fn download(&self, table_id: &str, if_none_match: Option<&str>) -> Result<Reply, Failure> {
        let mut request = self.get(&download_path(table_id));
        if let Some(etag) = if_none_match {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let response =
            exchange::send(request, &self.cancel, self.bounds(None)).map_err(Failure::unsent)?;
        match response.status() {
            StatusCode::OK | StatusCode::NOT_MODIFIED => Ok(response),
            status => Err(Failure::from_status(status, response, &self.redactor)),
        }
    }

    /// One GET of a partitioned table's part (`?part=<url-encoded path>`).
    pub fn download_part(&self, table_id: &str, part: &str) -> Result<Reply, Failure> {
        let mut url =
            reqwest::Url::parse(&self.url(&download_path(table_id))).map_err(|e| Failure {
                status: None,
                transient: false,
                message: format!("cannot make the URL of part {part}: {e}"),
            })?;
        url.query_pairs_mut().append_pair("part", part);
        let request = self
            .client
            .get(url)
            .header(AUTHORIZATION, self.authorization());
        let response =
            exchange::send(request, &self.cancel, self.bounds(None)).map_err(Failure::unsent)?;
        match response.status() {
            StatusCode::OK => Ok(response),
            status => Err(Failure::from_status(status, response, &self.redactor)),
        }
    }

    /// Asks the server (`/api/health`, no token) which extras it accepts
    /// (`X-Agnes-Accepts`, 0.84): empty when it says nothing or answers
    /// with an error. Only a server that cannot be reached is an error.
    pub fn accepts(&self) -> Result<Vec<String>, Failure> {
        let url = self.url("/api/health");
        let request = self.client.get(&url);
        let response = exchange::send(request, &self.cancel, self.bounds(None)).map_err(|e| {
            let mut f = Failure::unsent(e);
            f.message = format!("cannot reach {}: {}", self.base, f.message);
            f
        })?;
        Ok(response
            .headers()
            .get_all("x-agnes-accepts")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
            .collect())
    }

    /// Sends a request built by `build`, classifying failures.
    pub fn send(&self, request: RequestBuilder) -> Result<Reply, Failure> {
        let response =
            exchange::send(request, &self.cancel, self.bounds(None)).map_err(Failure::unsent)?;
        match response.status() {
            s if s.is_success() => Ok(response),
            status => Err(Failure::from_status(status, response, &self.redactor)),
        }
    }
}

/// Reads a whole JSON body, refusing one larger than `cap` bytes (announced
/// or actual, after decompression). A body cut short is worth another try.
fn read_capped(body: impl Read, announced: Option<u64>, cap: u64) -> Result<Vec<u8>, Failure> {
    let too_big = |size: String| Failure {
        status: None,
        transient: false,
        message: format!("{size}, over the {} MiB allowed; refused", cap >> 20),
    };
    // Only an uncompressed length is announced (reqwest drops it when it
    // decompresses).
    if let Some(len) = announced.filter(|len| *len > cap) {
        return Err(too_big(format!("the body announces {len} bytes")));
    }
    // Sized up front when the length is known: growing by doubling would
    // hold up to twice a big manifest for a moment (issue 13, case 15).
    let mut bytes = Vec::with_capacity(announced.unwrap_or(0).min(cap) as usize);
    body.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| match Stop::of(&e) {
            Some(stop) => Failure::stopped(stop.clone()),
            None => Failure {
                status: None,
                transient: true,
                message: format!(
                    "reading the body after {} bytes: {}",
                    bytes.len(),
                    describe(&e)
                ),
            },
        })?;
    if bytes.len() as u64 > cap {
        return Err(too_big(format!("the body goes on past {cap} bytes")));
    }
    Ok(bytes)
}

/// The download path of a table whose id passed `check_table_id` (so it
/// needs no escaping: letters, digits, `_`, `.`, `-`).
pub fn download_path(table_id: &str) -> String {
    format!("/api/data/{table_id}/download")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_are_capped() {
        let body = |n: u64| std::io::repeat(b' ').take(n);
        assert_eq!(read_capped(body(100), None, 100).unwrap().len(), 100);
        // An endless body stops at the cap, whatever the server announced.
        let endless = read_capped(std::io::repeat(b' '), None, 1 << 20).unwrap_err();
        assert!(!endless.transient && endless.message.contains("over the 1 MiB allowed"));
        let announced = read_capped(body(10), Some(5 << 20), 1 << 20).unwrap_err();
        assert!(
            announced.message.contains("5242880 bytes"),
            "{}",
            announced.message
        );
    }
}
