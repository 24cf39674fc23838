//! Fault injection: ways to misbehave on purpose, so that the client's fault
//! handling is tested against real sockets.
//!
//! Faults come from three places, consulted in this order: the admin API
//! (`POST /admin/faults`, replaced as a whole), the catalog's `faults` key
//! (replaced, counters and all, whenever the catalog is re-read) and the
//! `--faults` file given at start-up. The first active fault that matches a
//! request is used, and its `times` counter goes down by one.

use std::sync::Mutex;

use axum::http::{HeaderValue, StatusCode};
use serde_json::{json, Value};

/// Which requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Download,
    Manifest,
    Bundle,
    Upload,
    /// `POST /api/v2/scan` and `/api/v2/scan/estimate`.
    Scan,
    /// `GET /api/v2/catalog` and `/api/v2/schema/{id}`.
    Schema,
    Any,
}

impl Endpoint {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(match text {
            "download" => Endpoint::Download,
            "manifest" => Endpoint::Manifest,
            "bundle" => Endpoint::Bundle,
            "upload" => Endpoint::Upload,
            "scan" => Endpoint::Scan,
            "schema" => Endpoint::Schema,
            "any" => Endpoint::Any,
            other => {
                return Err(format!(
                    "unknown endpoint {other:?} (download, manifest, bundle, upload, scan, schema, any)"
                ))
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Endpoint::Download => "download",
            Endpoint::Manifest => "manifest",
            Endpoint::Bundle => "bundle",
            Endpoint::Upload => "upload",
            Endpoint::Scan => "scan",
            Endpoint::Schema => "schema",
            Endpoint::Any => "any",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallAt {
    /// Before the status line and headers.
    Before,
    /// After half of the body.
    Middle,
}

/// What the server does instead of (or to) the normal reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Reply with this status: a JSON detail, or `body` when given.
    Status {
        status: StatusCode,
        body: Option<String>,
        content_type: Option<String>,
    },
    /// The normal headers (full Content-Length), then the connection is
    /// closed after `after_bytes` bytes of the body.
    Cut { after_bytes: u64 },
    /// The normal headers and length, but the 16 bytes from offset
    /// `len / 2` of the body (fewer if it ends first) are XORed with 0xFF:
    /// the leading and trailing `PAR1` of any body of 40 bytes or more stay.
    Corrupt,
    /// Sleep before the headers or after half the body.
    Stall { ms: u64, at: StallAt },
    /// The normal headers and length, then the body `bytes` at a time with
    /// `every_ms` between: a server (or link) that trickles.
    Trickle { bytes: u64, every_ms: u64 },
    /// A redirect (302 unless `status` says otherwise) to `location`.
    Redirect {
        location: String,
        status: StatusCode,
    },
    /// Reply `status` (200 unless given) with this body and content type
    /// instead: an HTML error page where parquet or JSON was expected.
    Body {
        body: String,
        content_type: String,
        status: StatusCode,
    },
}

/// One fault as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub endpoint: Endpoint,
    /// `None`: every table. A fault naming a table only matches downloads
    /// of that table.
    pub table: Option<String>,
    /// `None`: any download. A fault naming a part only matches downloads
    /// of that part (`?part=`) of a partitioned table.
    pub part: Option<String>,
    /// `None`: forever.
    pub times: Option<u64>,
    pub kind: FaultKind,
}

impl Fault {
    /// A JSON list of faults (the `--faults` file, the catalog's key, the
    /// admin body). The error names the position and the field.
    pub fn parse_list(value: &Value) -> Result<Vec<Fault>, String> {
        let items = value
            .as_array()
            .ok_or_else(|| format!("expected a JSON list of faults, got {value}"))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| Fault::parse(item).map_err(|e| format!("fault #{i}: {e}")))
            .collect()
    }

    /// One fault object. `null` counts as missing for every key, because
    /// DuckDB writes absent struct fields as `null`.
    pub fn parse(value: &Value) -> Result<Fault, String> {
        let obj = value
            .as_object()
            .ok_or_else(|| format!("expected an object, got {value}"))?;
        let get = |key: &str| obj.get(key).filter(|v| !v.is_null());
        let string = |key: &str| -> Result<Option<String>, String> {
            match get(key) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!("{key:?} must be a string, not {other}")),
            }
        };
        let number = |key: &str| -> Result<Option<u64>, String> {
            match get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| format!("{key:?} must be a non-negative integer, not {v}")),
            }
        };
        let status = |key: &str, default: Option<u16>| -> Result<StatusCode, String> {
            let code = number(key)?
                .or(default.map(u64::from))
                .ok_or_else(|| format!("{key:?} is required"))?;
            u16::try_from(code)
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .ok_or_else(|| format!("{key:?}: {code} is not an HTTP status"))
        };
        let endpoint = Endpoint::parse(string("endpoint")?.as_deref().unwrap_or("download"))?;
        let table = string("table")?.filter(|t| t != "*");
        let part = string("part")?;
        let times = number("times")?;
        let kind_name = string("kind")?.ok_or("\"kind\" is required")?;
        let kind = match kind_name.as_str() {
            "status" => FaultKind::Status {
                status: status("status", None)?,
                body: string("body")?,
                content_type: string("content_type")?,
            },
            "cut" => FaultKind::Cut {
                after_bytes: number("after_bytes")?.ok_or("\"after_bytes\" is required")?,
            },
            "corrupt" => FaultKind::Corrupt,
            "stall" => FaultKind::Stall {
                ms: number("ms")?.ok_or("\"ms\" is required")?,
                at: match string("at")?.as_deref() {
                    None | Some("before") => StallAt::Before,
                    Some("middle") => StallAt::Middle,
                    Some(other) => {
                        return Err(format!("\"at\" must be before or middle, not {other:?}"))
                    }
                },
            },
            "trickle" => FaultKind::Trickle {
                bytes: number("bytes")?.unwrap_or(1).max(1),
                every_ms: number("every_ms")?.ok_or("\"every_ms\" is required")?,
            },
            "redirect" => {
                let status = status("status", Some(302))?;
                if !status.is_redirection() {
                    return Err(format!("\"status\": {status} is not a redirect"));
                }
                let location = string("location")?.ok_or("\"location\" is required")?;
                if HeaderValue::from_str(&location).is_err() {
                    return Err(format!("\"location\": {location:?} is not a header value"));
                }
                FaultKind::Redirect { location, status }
            }
            "body" => FaultKind::Body {
                body: string("body")?.ok_or("\"body\" is required")?,
                content_type: string("content_type")?
                    .unwrap_or_else(|| "text/html; charset=utf-8".to_string()),
                status: status("status", Some(200))?,
            },
            other => {
                return Err(format!(
                    "unknown kind {other:?} (status, cut, corrupt, stall, trickle, redirect, body)"
                ))
            }
        };
        Ok(Fault {
            endpoint,
            table,
            part,
            times,
            kind,
        })
    }

    fn matches(&self, endpoint: Endpoint, table: Option<&str>, part: Option<&str>) -> bool {
        let endpoint_ok = self.endpoint == Endpoint::Any || self.endpoint == endpoint;
        let table_ok = match &self.table {
            None => true,
            Some(want) => endpoint == Endpoint::Download && table == Some(want.as_str()),
        };
        let part_ok = match &self.part {
            None => true,
            Some(want) => endpoint == Endpoint::Download && part == Some(want.as_str()),
        };
        endpoint_ok && table_ok && part_ok
    }

    /// The fault as the admin API shows it.
    fn to_json(&self, source: &str, remaining: Option<u64>) -> Value {
        let mut v = json!({
            "source": source,
            "endpoint": self.endpoint.name(),
            "table": self.table.as_deref().unwrap_or("*"),
            "part": self.part,
            "times": self.times,
            "remaining": remaining,
        });
        let extra = match &self.kind {
            FaultKind::Status {
                status,
                body,
                content_type,
            } => json!({"kind": "status", "status": status.as_u16(), "body": body,
                        "content_type": content_type}),
            FaultKind::Cut { after_bytes } => json!({"kind": "cut", "after_bytes": after_bytes}),
            FaultKind::Corrupt => json!({"kind": "corrupt"}),
            FaultKind::Stall { ms, at } => json!({"kind": "stall", "ms": ms,
                "at": if *at == StallAt::Before { "before" } else { "middle" }}),
            FaultKind::Trickle { bytes, every_ms } => {
                json!({"kind": "trickle", "bytes": bytes, "every_ms": every_ms})
            }
            FaultKind::Redirect { location, status } => {
                json!({"kind": "redirect", "location": location, "status": status.as_u16()})
            }
            FaultKind::Body {
                body,
                content_type,
                status,
            } => json!({"kind": "body", "body": body, "content_type": content_type,
                        "status": status.as_u16()}),
        };
        if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
            v.extend(extra);
        }
        v
    }
}

/// A fault with its countdown.
#[derive(Debug, Clone)]
struct Armed {
    fault: Fault,
    remaining: Option<u64>,
}

impl Armed {
    fn new(fault: Fault) -> Self {
        Armed {
            remaining: fault.times,
            fault,
        }
    }

    fn active(&self) -> bool {
        self.remaining != Some(0)
    }
}

#[derive(Default)]
struct Lists {
    admin: Vec<Armed>,
    catalog: Vec<Armed>,
    catalog_generation: Option<u64>,
    startup: Vec<Armed>,
}

/// All configured faults and their counters.
#[derive(Default)]
pub struct FaultBook {
    lists: Mutex<Lists>,
}

impl FaultBook {
    pub fn new(startup: Vec<Fault>) -> Self {
        FaultBook {
            lists: Mutex::new(Lists {
                startup: startup.into_iter().map(Armed::new).collect(),
                ..Lists::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lists> {
        self.lists.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_admin(&self, faults: Vec<Fault>) {
        self.lock().admin = faults.into_iter().map(Armed::new).collect();
    }

    /// Adopts the catalog's faults when the catalog was re-read since last time.
    pub fn sync_catalog(&self, generation: u64, faults: &[Fault]) {
        let mut lists = self.lock();
        if lists.catalog_generation != Some(generation) {
            lists.catalog = faults.iter().cloned().map(Armed::new).collect();
            lists.catalog_generation = Some(generation);
        }
    }

    /// The first active fault for this request, counted down.
    pub fn take(
        &self,
        endpoint: Endpoint,
        table: Option<&str>,
        part: Option<&str>,
    ) -> Option<FaultKind> {
        let mut lists = self.lock();
        let Lists {
            admin,
            catalog,
            startup,
            ..
        } = &mut *lists;
        let armed = admin
            .iter_mut()
            .chain(catalog.iter_mut())
            .chain(startup.iter_mut())
            .find(|a| a.active() && a.fault.matches(endpoint, table, part))?;
        if let Some(n) = armed.remaining.as_mut() {
            *n -= 1;
        }
        Some(armed.fault.kind.clone())
    }

    /// The faults that can still fire, for `GET /admin/faults`.
    pub fn active_json(&self) -> Value {
        let lists = self.lock();
        let mut out = Vec::new();
        for (source, list) in [
            ("admin", &lists.admin),
            ("catalog", &lists.catalog),
            ("startup", &lists.startup),
        ] {
            out.extend(
                list.iter()
                    .filter(|a| a.active())
                    .map(|a| a.fault.to_json(source, a.remaining)),
            );
        }
        Value::Array(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Fault>, String> {
        Fault::parse_list(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn parses_every_kind_with_defaults() {
        let faults = parse(
            r#"[{"kind":"status","status":503,"times":2},
                {"kind":"cut","after_bytes":10,"table":"orders"},
                {"kind":"corrupt","endpoint":"any","table":"*"},
                {"kind":"stall","ms":50,"at":"middle","endpoint":"manifest"},
                {"kind":"redirect","location":"http://127.0.0.2:1/x","status":307},
                {"kind":"body","body":"<html/>","status":null,"after_bytes":null}]"#,
        )
        .unwrap();
        assert_eq!(faults[0].endpoint, Endpoint::Download);
        assert_eq!(faults[0].times, Some(2));
        assert_eq!(faults[1].table.as_deref(), Some("orders"));
        assert_eq!(faults[2].table, None);
        assert_eq!(
            faults[3].kind,
            FaultKind::Stall {
                ms: 50,
                at: StallAt::Middle
            }
        );
        assert!(matches!(faults[4].kind, FaultKind::Redirect { status, .. } if status == 307));
        assert!(
            matches!(&faults[5].kind, FaultKind::Body { status, content_type, .. }
            if *status == 200 && content_type.starts_with("text/html"))
        );
    }

    #[test]
    fn errors_name_the_fault_and_field() {
        let err = parse(r#"[{"kind":"cut"}]"#).unwrap_err();
        assert!(err.contains("#0") && err.contains("after_bytes"), "{err}");
        let err = parse(r#"[{"kind":"status","status":99999}]"#).unwrap_err();
        assert!(err.contains("not an HTTP status"), "{err}");
        let err = parse(r#"[{"kind":"redirect","location":"x","status":200}]"#).unwrap_err();
        assert!(err.contains("not a redirect"), "{err}");
        let err = parse(r#"[{"kind":"redirect","location":"a\nb"}]"#).unwrap_err();
        assert!(err.contains("not a header value"), "{err}");
        assert!(parse(r#"[{"kind":"stall","ms":1,"at":"end"}]"#).is_err());
        assert!(parse(r#"[{"kind":"cut","after_bytes":-1}]"#).is_err());
        assert!(parse(r#"{"kind":"corrupt"}"#).is_err());
    }

    #[test]
    fn counts_down_and_orders_admin_first() {
        let book = FaultBook::new(parse(r#"[{"kind":"corrupt"}]"#).unwrap());
        book.set_admin(
            parse(r#"[{"kind":"status","status":503,"times":2,"table":"orders"}]"#).unwrap(),
        );
        let status = |k: Option<FaultKind>| matches!(k, Some(FaultKind::Status { .. }));
        assert!(status(book.take(Endpoint::Download, Some("orders"), None)));
        // another table falls through to the start-up fault
        assert_eq!(
            book.take(Endpoint::Download, Some("people"), None),
            Some(FaultKind::Corrupt)
        );
        assert!(status(book.take(Endpoint::Download, Some("orders"), None)));
        assert_eq!(
            book.take(Endpoint::Download, Some("orders"), None),
            Some(FaultKind::Corrupt)
        );
        // download faults do not touch the manifest
        assert_eq!(book.take(Endpoint::Manifest, None, None), None);
        assert_eq!(book.active_json().as_array().unwrap().len(), 1);
    }

    #[test]
    fn catalog_faults_restart_with_a_new_generation() {
        let book = FaultBook::default();
        let faults = parse(r#"[{"kind":"corrupt","endpoint":"any","times":1}]"#).unwrap();
        book.sync_catalog(1, &faults);
        assert!(book.take(Endpoint::Bundle, None, None).is_some());
        book.sync_catalog(1, &faults);
        assert!(book.take(Endpoint::Bundle, None, None).is_none());
        book.sync_catalog(2, &faults);
        assert!(book.take(Endpoint::Upload, None, None).is_some());
    }
}
