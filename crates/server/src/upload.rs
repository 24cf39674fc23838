//! `POST /api/upload/sessions` (a session transcript, multipart) and
//! `POST /api/upload/local-md` (personal notes, JSON), stored per user under
//! the uploads folder.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::app::App;
use crate::auth::authenticate;
use crate::pydantic;
use crate::reply::{json, ApiError, ApiResult};

/// The real server's limit on one session file.
pub const MAX_UPLOAD: u64 = 50 * 1024 * 1024;

/// The last path component of an uploaded file name (either separator), or
/// `None` when nothing usable is left.
pub fn base_name(name: &str) -> Option<&str> {
    let base = name.rsplit(['/', '\\']).next()?.trim();
    (!base.is_empty() && base != "." && base != "..").then_some(base)
}

/// The name a 0.29 server stores a session under: the last path component,
/// or `upload_<8 hex>` when that is empty or starts with a dot.
fn may2026_name(raw: &str) -> String {
    match base_name(raw) {
        Some(base) if !base.starts_with('.') => base.to_string(),
        _ => {
            let seq = UPLOAD_SEQ.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            format!(
                "upload_{:08x}",
                (nanos ^ (seq as u32).wrapping_mul(0x9e37_79b9))
            )
        }
    }
}

/// The real server's words for a session name it refuses (0.84).
const NAME_RULE: &str = "filename must match [A-Za-z0-9._-]{1,200}";

/// Whether a 0.84 server takes this session file name:
/// `[A-Za-z0-9._-]{1,200}`, checked on the name as sent.
pub fn is_accepted_name(name: &str) -> bool {
    (1..=200).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The folder of a user's uploads: the user name made safe as one path
/// component.
fn user_dir(uploads: &Path, user: &str) -> PathBuf {
    let safe: String = user
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c == '\0' {
                '_'
            } else {
                c
            }
        })
        .collect();
    let safe = match safe.as_str() {
        "" | "." | ".." => "_".to_string(),
        _ => safe,
    };
    uploads.join(safe)
}

/// Distinguishes the temporary files of concurrent uploads.
static UPLOAD_SEQ: AtomicU64 = AtomicU64::new(0);

pub async fn sessions(State(app): State<Arc<App>>, req: Request) -> ApiResult {
    let catalog = app.catalog()?;
    let user = match authenticate(req.headers(), &catalog) {
        Ok(user) => user,
        Err(refused) => return Err(after_body(req.into_body(), refused).await),
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let current = app.generation.is_current();
    let no_file = || {
        json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"detail": pydantic::field_required("file", Value::Null, current)}),
        )
    };
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return Ok(no_file());
    };
    let mut form = multer::Multipart::new(req.into_body().into_data_stream(), boundary);
    let bad_form = |e: multer::Error| ApiError::bad_request(format!("reading the form: {e}"));

    let dir = user_dir(&app.uploads_dir, &user.name).join("sessions");
    while let Some(mut field) = form.next_field().await.map_err(bad_form)? {
        if field.name() != Some("file") {
            continue;
        }
        let raw_name = field.file_name().unwrap_or("").to_string();
        if current {
            let gzip_ok = crate::generation::accepts(&app)
                .iter()
                .any(|a| a == crate::generation::DEFAULT_ACCEPTS);
            let refusal = if !is_accepted_name(&raw_name) {
                Some(NAME_RULE.to_string())
            } else if raw_name
                .strip_suffix(".gz")
                .is_some_and(|stem| !is_accepted_name(stem))
            {
                Some(format!("{NAME_RULE} before .gz"))
            } else if raw_name.ends_with(".gz") && !gzip_ok {
                // Not the real server (it always unpacks): a catalog that
                // takes `session-gzip` off the header checks clients ask first.
                Some("gzipped sessions are not accepted by this server".to_string())
            } else {
                None
            };
            if let Some(refusal) = refusal {
                while field.chunk().await.map_err(bad_form)?.is_some() {}
                drop(field);
                while let Some(mut f) = form.next_field().await.map_err(bad_form)? {
                    while f.chunk().await.map_err(bad_form)?.is_some() {}
                }
                return Err(ApiError::bad_request(refusal));
            }
        }
        let name = match current {
            true => raw_name.clone(),
            false => may2026_name(&raw_name),
        };
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| ApiError::internal(format!("creating {}: {e}", dir.display())))?;
        let seq = UPLOAD_SEQ.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{name}.{}.{seq}.part", std::process::id()));
        let target = dir.join(&name);
        let written = receive(&mut field, &temp).await;
        let size = match written {
            Ok(Some(size)) => size,
            Ok(None) => {
                let _ = tokio::fs::remove_file(&temp).await;
                // The contract's server answers 413 only once the whole body
                // is in: read the rest so the client sees the reply.
                while field.chunk().await.map_err(bad_form)?.is_some() {}
                drop(field);
                while let Some(mut f) = form.next_field().await.map_err(bad_form)? {
                    while f.chunk().await.map_err(bad_form)?.is_some() {}
                }
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "File too large (max 50MB)",
                ));
            }
            Err(err) => {
                let _ = tokio::fs::remove_file(&temp).await;
                return Err(err);
            }
        };
        // A gzipped transcript (0.84) is stored as the transcript it holds;
        // the reply names that and counts its bytes.
        let (name, size) = match name.strip_suffix(".gz") {
            Some(plain) if current => {
                let plain_target = dir.join(plain);
                let result = gunzip(&temp, &plain_target).await;
                let _ = tokio::fs::remove_file(&temp).await;
                match result {
                    Ok(unpacked) => (plain.to_string(), unpacked),
                    Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
                        return Err(ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "Decompressed content too large (max 50MB)",
                        ))
                    }
                    Err(_) => return Err(ApiError::bad_request("invalid_gzip")),
                }
            }
            _ => {
                tokio::fs::rename(&temp, &target).await.map_err(|e| {
                    ApiError::internal(format!("storing {}: {e}", target.display()))
                })?;
                (name, size)
            }
        };
        let mut resp = json(
            StatusCode::OK,
            &json!({"status": "ok", "filename": name, "size": size}),
        );
        // For the request log: the name the file came under.
        resp.extensions_mut()
            .insert(crate::request_log::UploadName(raw_name));
        return Ok(resp);
    }
    Ok(no_file())
}

/// Decompresses the gzip file `from` into `to` through a temporary file;
/// the bytes it held. Past the upload limit it stops with `FileTooLarge`
/// (no gzip bomb fills the disk); anything but one whole gzip member is
/// an error.
async fn gunzip(from: &Path, to: &Path) -> std::io::Result<u64> {
    let (from, to) = (from.to_path_buf(), to.to_path_buf());
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let temp = to.with_extension("gunzip.part");
        let result = (|| {
            let input = std::fs::File::open(&from)?;
            let mut decoder = flate2::read::GzDecoder::new(input).take(MAX_UPLOAD + 1);
            let mut out = std::fs::File::create(&temp)?;
            let n = std::io::copy(&mut decoder, &mut out)?;
            if n > MAX_UPLOAD {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::FileTooLarge,
                    "it unpacks to more than 50 MiB",
                ));
            }
            std::fs::rename(&temp, &to)?;
            Ok(n)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Reads the rest of a refused request's body, then gives the refusal: a
/// reply while the client is still sending would reset the connection under
/// it, and the client would see a network failure instead of the answer.
async fn after_body(body: Body, refusal: ApiError) -> ApiError {
    let _ = axum::body::to_bytes(body, 2 * MAX_UPLOAD as usize).await;
    refusal
}

/// Streams one form field into `temp`; `Ok(None)` once it passes the limit.
async fn receive(field: &mut multer::Field<'_>, temp: &Path) -> ApiResult<Option<u64>> {
    let io_err = |e: std::io::Error| ApiError::internal(format!("writing {}: {e}", temp.display()));
    let mut out = tokio::fs::File::create(temp).await.map_err(io_err)?;
    let mut size = 0u64;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the form: {e}")))?
    {
        size += chunk.len() as u64;
        if size > MAX_UPLOAD {
            return Ok(None);
        }
        out.write_all(&chunk).await.map_err(io_err)?;
    }
    out.flush().await.map_err(io_err)?;
    Ok(Some(size))
}

#[derive(Deserialize)]
struct LocalMd {
    content: String,
}

pub async fn local_md(State(app): State<Arc<App>>, req: Request) -> ApiResult {
    let catalog = app.catalog()?;
    let user = match authenticate(req.headers(), &catalog) {
        Ok(user) => user,
        Err(refused) => return Err(after_body(req.into_body(), refused).await),
    };
    let body = read_body(req.into_body()).await?;
    let current = app.generation.is_current();
    let note: LocalMd = match serde_json::from_slice::<Value>(&body) {
        Ok(value) => match serde_json::from_value(value.clone()) {
            Ok(note) => note,
            Err(_) => {
                return Ok(json(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!({"detail": pydantic::field_required("content", value, current)}),
                ))
            }
        },
        Err(e) => {
            return Ok(json(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({"detail": pydantic::json_invalid(e.column().saturating_sub(1), &e.to_string(), current)}),
            ))
        }
    };
    let dir = user_dir(&app.uploads_dir, &user.name);
    let target = dir.join("CLAUDE.local.md");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", dir.display())))?;
    tokio::fs::write(&target, note.content.as_bytes())
        .await
        .map_err(|e| ApiError::internal(format!("writing {}: {e}", target.display())))?;
    // Characters, not bytes: the real server reports Python's len(content).
    let size = note.content.chars().count();
    Ok(json(
        StatusCode::OK,
        &json!({"status": "ok", "user": user.name, "size": size}),
    ))
}

async fn read_body(body: Body) -> ApiResult<bytes::Bytes> {
    axum::body::to_bytes(body, MAX_UPLOAD as usize)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("reading the body (limit {MAX_UPLOAD} bytes): {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_their_last_component() {
        assert_eq!(base_name("s1.jsonl"), Some("s1.jsonl"));
        assert_eq!(base_name("../../etc/passwd"), Some("passwd"));
        assert_eq!(base_name("C:\\Users\\a\\s.jsonl"), Some("s.jsonl"));
        assert_eq!(base_name("dir/"), None);
        assert_eq!(base_name(".."), None);
        assert_eq!(base_name(""), None);
    }

    #[test]
    fn the_084_name_rule() {
        for ok in ["s1.jsonl", "a-b_c.jsonl.gz", &"x".repeat(200)] {
            assert!(is_accepted_name(ok), "{ok}");
        }
        for bad in ["", "a b.jsonl", "../x.jsonl", "é.jsonl", &"x".repeat(201)] {
            assert!(!is_accepted_name(bad), "{bad}");
        }
    }

    #[test]
    fn user_names_stay_one_component() {
        let root = Path::new("/u");
        assert_eq!(user_dir(root, "analyst"), Path::new("/u/analyst"));
        assert_eq!(user_dir(root, "../x"), Path::new("/u/.._x"));
        assert_eq!(user_dir(root, ".."), Path::new("/u/_"));
    }
}
