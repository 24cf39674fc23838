//! Querying tables on the server (`/api/v2`, CONTRACT.md §8): a table's
//! schema, a scan's estimate, and the scan itself as a byte stream (Arrow
//! IPC) that the caller decodes as it arrives, each request sent once (a
//! scan costs the server, and a quota answer must reach the user). The
//! answers and their errors are read by `protocol/v2.rs`.

use std::io::{self, Read};

use reqwest::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_TYPE};
use reqwest::StatusCode;

use crate::cancel::Cancel;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::protocol::ids::{check_table_id, truncate};
use crate::protocol::v2::{
    plain_detail, server_error, Estimate, ScanRequest, TableSchema, ARROW_STREAM,
};
use crate::secrets::redact::Redactor;
use crate::transfer::exchange::{self, describe, Reply, SendError};
use crate::transfer::http::{ServerClient, Timeouts, MAX_JSON_BYTES};

/// The server as `agnes_scan` sees it.
pub struct Remote {
    client: ServerClient,
    redactor: Redactor,
}

impl Remote {
    pub fn new(settings: &Settings, timeouts: Timeouts, cancel: &Cancel) -> Result<Remote> {
        Ok(Remote {
            client: ServerClient::new(settings, timeouts, cancel)?,
            redactor: settings.redactor(),
        })
    }

    /// `GET /api/v2/schema/{id}`.
    pub fn schema(&self, table_id: &str) -> Result<TableSchema> {
        check_table_id(table_id).map_err(|e| Error::Config(format!("agnes_scan: {e}")))?;
        let path = format!("/api/v2/schema/{table_id}");
        let subject = format!("table '{table_id}'");
        let reply = self.send(self.client.get(&path), &path, &subject, "schema")?;
        let body = self.json_body(reply, &path)?;
        let schema: TableSchema = serde_json::from_slice(&body).map_err(|e| {
            Error::Redacted(format!(
                "the schema of {subject} from {} is not what the contract says: {e}",
                self.client.url(&path)
            ))
        })?;
        if schema.columns.is_empty() {
            return Err(Error::Redacted(format!(
                "the schema of {subject} from {} has no columns",
                self.client.url(&path)
            )));
        }
        Ok(schema)
    }

    /// `POST /api/v2/scan/estimate`.
    pub fn estimate(&self, request: &ScanRequest) -> Result<Estimate> {
        let path = "/api/v2/scan/estimate";
        let reply = self.send(
            self.post_json(path, request)?,
            path,
            &request.subject(),
            "estimate",
        )?;
        let body = self.json_body(reply, path)?;
        serde_json::from_slice(&body).map_err(|e| {
            Error::Redacted(format!(
                "the estimate from {} is not what the contract says: {e}",
                self.client.url(path)
            ))
        })
    }

    /// `POST /api/v2/scan`: the Arrow IPC stream, to be read as it comes
    /// (decompressed on the way when the server gzipped it).
    pub fn scan(&self, request: &ScanRequest) -> Result<Reply> {
        let path = "/api/v2/scan";
        let builder = self
            .post_json(path, request)?
            .header(ACCEPT, ARROW_STREAM)
            .header(ACCEPT_ENCODING, "gzip");
        let reply = self.send(builder, path, &request.subject(), "scan")?;
        let media = reply
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if !media.starts_with(ARROW_STREAM) {
            return Err(Error::Redacted(self.redactor.text(&format!(
                "the scan of {} from {} answered {:?}, not an Arrow stream",
                request.subject(),
                self.client.url(path),
                truncate(&media, 80)
            ))));
        }
        Ok(reply)
    }

    fn post_json(
        &self,
        path: &str,
        request: &ScanRequest,
    ) -> Result<reqwest::blocking::RequestBuilder> {
        let body = serde_json::to_vec(request)
            .map_err(|e| Error::Config(format!("cannot encode the scan request: {e}")))?;
        Ok(self
            .client
            .post(path)
            .header(CONTENT_TYPE, "application/json")
            .body(body))
    }

    /// Sends one request (no retries: a scan costs the server, and a quota
    /// answer must reach the user); a non-2xx answer is the server's error.
    fn send(
        &self,
        request: reqwest::blocking::RequestBuilder,
        path: &str,
        subject: &str,
        what: &str,
    ) -> Result<Reply> {
        let url = self.client.url(path);
        let reply = match exchange::send(request, self.client.cancel(), self.client.bounds(None)) {
            Ok(reply) => reply,
            Err(SendError::Stopped(exchange::Stop::Cancelled)) => return Err(Error::Interrupted),
            Err(SendError::Stopped(stop)) => {
                return Err(Error::Redacted(format!(
                    "{what} of {subject} from {url}: {stop}"
                )))
            }
            Err(SendError::Transport(e)) => {
                return Err(Error::Redacted(
                    self.redactor
                        .text(&format!("{what} of {subject} from {url} failed: {e}")),
                ))
            }
        };
        let status = reply.status();
        if status.is_success() {
            return Ok(reply);
        }
        let mut body = Vec::new();
        let _ = reply.take(64 * 1024).read_to_end(&mut body);
        let body = self.redactor.hide_bytes(body);
        if status == StatusCode::UNAUTHORIZED {
            return Err(Error::Unauthorized {
                url,
                detail: self.redactor.text(&plain_detail(&body)),
            });
        }
        let message = server_error(status, &body, subject, what);
        Err(Error::Redacted(
            self.redactor.text(&format!("{message} ({url})")),
        ))
    }

    fn json_body(&self, reply: Reply, path: &str) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        reply
            .take(MAX_JSON_BYTES + 1)
            .read_to_end(&mut body)
            .map_err(|e| read_error(&e, &self.client.url(path)))?;
        if body.len() as u64 > MAX_JSON_BYTES {
            return Err(Error::Redacted(format!(
                "the answer from {} is larger than {} MiB; refused",
                self.client.url(path),
                MAX_JSON_BYTES >> 20
            )));
        }
        Ok(self.redactor.hide_bytes(body))
    }
}

/// A read of a reply's body that failed: interrupted, or why.
pub fn read_error(e: &io::Error, url: &str) -> Error {
    match exchange::Stop::of(e) {
        Some(exchange::Stop::Cancelled) => Error::Interrupted,
        Some(stop) => Error::Redacted(format!("reading from {url}: {stop}")),
        None => Error::Redacted(format!("reading from {url}: {}", describe(e))),
    }
}
