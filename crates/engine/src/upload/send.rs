//! Sending one file: a transcript as a multipart POST to
//! `/api/upload/sessions`, read line by line into a scrubbed (and, when the
//! server takes it, gzipped) temporary copy, never loaded whole; the notes
//! as JSON to `/api/upload/local-md`, secrets removed as from transcripts.
//! Transient failures are retried; a `200` counts only with the server's
//! confirmation in its body.

use std::fs::File;
use std::io::Read;
use std::io::{BufRead, BufReader, Seek, Write};
use std::time::Duration;

use reqwest::blocking::multipart::{Form, Part};
use reqwest::header::CONTENT_TYPE;

use crate::digest::md5_hex;
use crate::error::Error;
use crate::protocol::ids::truncate;
use crate::transfer::exchange::Reply;
use crate::transfer::http::{retrying, Failure, ServerClient, Timeouts};
use crate::upload::files::{open_regular, over_limit, read_notes, Found, Hashing};
use crate::upload::ledger::Sent;
use crate::upload::report::Kind;
use crate::upload::transcripts;

const SESSIONS_PATH: &str = "/api/upload/sessions";
const LOCAL_MD_PATH: &str = "/api/upload/local-md";

/// The slowest uplink an upload is given time for, on top of the read
/// timeout: a request's time limit covers sending its whole body, and a
/// 50 MiB transcript must not be cut off at 30 s on a slow line.
const MIN_UPLOAD_RATE: f64 = 128.0 * 1024.0;

/// The gzip extras of a 0.84 server.
const SESSION_GZIP: &str = "session-gzip";

/// Why one file was not sent.
pub(super) enum Refused {
    Failed(String),
    /// The token was refused: nothing else will go either.
    Unauthorized(Error),
}

/// Sends files one by one, retrying transient failures.
pub(super) struct Sender {
    pub(super) client: ServerClient,
    pub(super) timeouts: Timeouts,
    /// Set once a file failed transiently after every retry: the server is
    /// down or broken, and the later files are not tried, so that a hook
    /// with the server unreachable ends in seconds.
    pub(super) down: Option<String>,
    /// The user's token, removed from transcripts before they are sent.
    pub(super) token: Option<String>,
    /// Whether the server takes gzipped transcripts; asked once.
    pub(super) gzip: Option<bool>,
}

impl Sender {
    pub(super) fn send(&mut self, f: &Found) -> std::result::Result<Sent, Refused> {
        if let Some(reason) = &self.down {
            return Err(Refused::Failed(format!("not sent: {reason}")));
        }
        let path = match f.kind {
            Kind::Session => SESSIONS_PATH,
            Kind::LocalMd => LOCAL_MD_PATH,
        };
        // A 401 is not transient: it comes back at once, not retried.
        let cancel = self.client.cancel().clone();
        let result = retrying(&cancel, || match f.kind {
            Kind::Session => {
                // Whether gzip is taken is asked once, before the first
                // transcript; a server that cannot be reached fails here,
                // with the reason (a streamed POST can hide it).
                if self.gzip.is_none() {
                    let accepts = self.client.accepts().map_err(|mut failure| {
                        failure.message =
                            format!("{}: {}", self.client.url(SESSIONS_PATH), failure.message);
                        failure
                    })?;
                    self.gzip = Some(accepts.iter().any(|a| a == SESSION_GZIP));
                }
                self.send_session(f)
            }
            Kind::LocalMd => self.send_notes(f),
        });
        match result {
            Ok(sent) => Ok(sent),
            Err(failure) if failure.status == Some(401) => {
                Err(Refused::Unauthorized(Error::Unauthorized {
                    url: self.client.url(path),
                    detail: failure.message,
                }))
            }
            Err(failure) => {
                if failure.transient {
                    self.down = Some(format!(
                        "the upload of {} failed before: {}",
                        f.name, failure.message
                    ));
                }
                Err(Refused::Failed(failure.message))
            }
        }
    }

    /// One multipart POST of a transcript: read line by line (hashed on the
    /// way, so that the state records the content that was sent even when
    /// the file grows meanwhile), secrets removed, into a temporary copy,
    /// gzipped when the server takes that.
    fn send_session(&self, f: &Found) -> std::result::Result<Sent, Failure> {
        let cannot_read =
            |e: std::io::Error| Failure::io(&format!("cannot read {}", f.path.display()), &e);
        let file = open_regular(&f.path).map_err(cannot_read)?;
        let size = file.metadata().map_err(cannot_read)?.len();
        if let Some(reason) = over_limit(&f.name, size) {
            return Err(refusal(reason));
        }
        let gzip = self.gzip == Some(true) && f.name.len() + 3 <= transcripts::MAX_NAME;
        let (mut copy, md5, read, removed) =
            scrubbed_copy(file.take(size), self.token.as_deref(), gzip).map_err(|e| {
                Failure::io(
                    &format!("cannot prepare {} for sending", f.path.display()),
                    &e,
                )
            })?;
        let length = copy
            .seek(std::io::SeekFrom::End(0))
            .and_then(|len| copy.rewind().map(|()| len))
            .map_err(cannot_read)?;
        let name = match gzip {
            true => format!("{}.gz", f.name),
            false => f.name.clone(),
        };
        let part = Part::reader_with_length(copy, length).file_name(name.clone());
        let request = self
            .client
            .post(SESSIONS_PATH)
            .timeout(self.time_limit(length))
            .multipart(Form::new().part("file", part));
        confirm(self.client.send(request)?)?;
        let mut notes = Vec::new();
        if removed > 0 {
            notes.push(format!("{removed} secret(s) removed before sending"));
        }
        if gzip {
            notes.push(format!("sent gzipped as {name} ({length} bytes)"));
        }
        Ok(Sent {
            md5,
            size: read,
            uploaded_at: Some(now()),
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        })
    }

    /// One JSON POST of the notes, their text as in the file with secrets
    /// removed, as from transcripts (CONTRACT.md §7.9): notes hold what
    /// the analyst pasted, tokens included.
    fn send_notes(&self, f: &Found) -> std::result::Result<Sent, Failure> {
        let content = read_notes(&f.path).map_err(refusal)?;
        let size = content.len() as u64;
        let md5 = md5_hex(content.as_bytes());
        let mut clean = Vec::with_capacity(content.len());
        let removed =
            crate::secrets::scrub::scrub(content.as_bytes(), self.token.as_deref(), &mut clean);
        // Marks are ASCII put where whole secrets were: still UTF-8.
        let clean = String::from_utf8_lossy(&clean);
        let request = self
            .client
            .post(LOCAL_MD_PATH)
            .timeout(self.time_limit(size))
            .header(CONTENT_TYPE, "application/json")
            .body(serde_json::json!({ "content": clean }).to_string());
        confirm(self.client.send(request)?)?;
        Ok(Sent {
            md5,
            size,
            uploaded_at: Some(now()),
            note: (removed > 0).then(|| format!("{removed} secret(s) removed before sending")),
        })
    }

    fn time_limit(&self, size: u64) -> Duration {
        self.timeouts.read + Duration::from_secs_f64(size as f64 / MIN_UPLOAD_RATE)
    }
}

/// A transcript's copy for sending: line by line, secrets removed, gzipped
/// when asked, in an anonymous temporary file (gone when closed). Returns it
/// with the MD5 and length of what was read, and how many secrets went.
fn scrubbed_copy(
    source: impl Read,
    token: Option<&str>,
    gzip: bool,
) -> std::io::Result<(File, String, u64, usize)> {
    let mut reader = BufReader::new(Hashing::new(source));
    let digest = reader.get_ref().digest.clone();
    let file = tempfile::tempfile()?;
    let (file, removed) = match gzip {
        true => {
            let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::default());
            let removed = copy_lines(&mut reader, token, &mut encoder)?;
            (encoder.finish()?, removed)
        }
        false => {
            let mut writer = std::io::BufWriter::new(file);
            let removed = copy_lines(&mut reader, token, &mut writer)?;
            (writer.into_inner().map_err(|e| e.into_error())?, removed)
        }
    };
    let (md5, read) = digest.finish();
    Ok((file, md5, read, removed))
}

/// Copies `reader` to `out` line by line, secrets removed; how many went.
fn copy_lines(
    reader: &mut impl BufRead,
    token: Option<&str>,
    out: &mut impl Write,
) -> std::io::Result<usize> {
    let (mut line, mut clean, mut removed) = (Vec::new(), Vec::new(), 0);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        clean.clear();
        removed += crate::secrets::scrub::scrub(&line, token, &mut clean);
        out.write_all(&clean)?;
    }
    out.flush()?;
    Ok(removed)
}

/// A reason not to send that no retry changes.
fn refusal(message: String) -> Failure {
    Failure {
        status: None,
        transient: false,
        message,
    }
}

/// A `200` whose body is the upload confirmation `{"status": "ok", ...}`;
/// anything else (a proxy's page, say) is not taken as stored.
fn confirm(mut response: Reply) -> std::result::Result<(), Failure> {
    let status = response.status();
    let mut body = Vec::new();
    let read = (&mut response).take(64 * 1024).read_to_end(&mut body);
    let confirmed = read.is_ok()
        && serde_json::from_slice::<serde_json::Value>(&body)
            .is_ok_and(|v| v.get("status").and_then(|s| s.as_str()) == Some("ok"));
    match (status.as_u16(), confirmed) {
        (200, true) => Ok(()),
        _ => Err(refusal(format!(
            "HTTP {status}, but the reply is not the server's upload confirmation: {:?}",
            truncate(String::from_utf8_lossy(&body).trim(), 120)
        ))),
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_sent_is_scrubbed_and_optionally_gzipped_but_the_digest_is_of_the_file() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtZSJ9.c2lnbmF0dXJlLXgtWQ";
        let text = format!("{{\"a\":\"{jwt}\"}}\n{{\"b\":\"my-secret-token\"}}\nlast");
        for gzip in [false, true] {
            let (mut file, md5, read, removed) =
                scrubbed_copy(text.as_bytes(), Some("my-secret-token"), gzip).unwrap();
            assert_eq!(
                (md5.as_str(), read, removed),
                (md5_hex(text.as_bytes()).as_str(), text.len() as u64, 2)
            );
            let mut raw = Vec::new();
            file.rewind().unwrap();
            file.read_to_end(&mut raw).unwrap();
            let sent = match gzip {
                true => {
                    let mut out = String::new();
                    flate2::read::GzDecoder::new(&raw[..])
                        .read_to_string(&mut out)
                        .unwrap();
                    out
                }
                false => String::from_utf8(raw).unwrap(),
            };
            assert_eq!(
                sent,
                "{\"a\":\"[REDACTED_JWT]\"}\n{\"b\":\"[REDACTED_AGNES_TOKEN]\"}\nlast"
            );
        }
    }
}
