//! `agnes_scan('<table id>', ...)` and `agnes_query('SELECT ...')`: a table,
//! or a raw query (0.84's `from_query`), on the server, queried from the
//! session. Columns and types come at bind from the schema endpoint; rows
//! come at execution from the scan endpoint, an Arrow IPC stream decoded
//! batch by batch straight into DuckDB vectors, so the result is never held
//! whole. Only the columns the query uses are asked for.
//!
//! Unlike the other agnes functions this one has typed columns and streams,
//! so it is a `VTab` of its own rather than a `RowFunction`.

use std::error::Error;
use std::io::{self, BufReader, Read};
use std::sync::Mutex;

use agnes_engine::protocol::v2::{ScanRequest, SERVER_RESULT_CAP};
use agnes_engine::transfer::exchange::Reply;
use agnes_engine::transfer::remote::Remote;
use agnes_engine::Settings;
use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamReader;
use duckdb::core::{DataChunkHandle, LogicalTypeHandle, LogicalTypeId};
use duckdb::ffi;
use duckdb::vtab::{BindInfo, InitInfo, TableFunctionInfo, VTab};

use crate::host::Host;
use crate::interrupt::{self, CancelOnSigint};
use crate::params::{self, Parameter, Params};
use crate::scan_types::ColType;

const OWN: &[Parameter] = &[
    // `where` is a reserved word: `"where" := '...'`, or the alias `filter`.
    ("where", LogicalTypeId::Varchar),
    ("filter", LogicalTypeId::Varchar),
    ("limit", LogicalTypeId::Bigint),
    // Set by agnes's views: a scan without `where`/`limit` of more rows
    // than this is refused; `known_rows` is the manifest's count, used
    // when the server cannot estimate (local tables).
    ("max_rows", LogicalTypeId::Bigint),
    ("known_rows", LogicalTypeId::Bigint),
    // The server's result cap; a result that comes within one batch of
    // it is refused as possibly cut.
    ("result_cap", LogicalTypeId::Bigint),
];

const GROUPS: &[&[Parameter]] = &[params::CONNECTION, params::TIMEOUTS, OWN];

/// Rows per DuckDB chunk.
fn vector_size() -> usize {
    // SAFETY: a plain getter of the C API's v1.2.0 band.
    let n = unsafe { ffi::duckdb_vector_size() } as usize;
    n.clamp(1, 1 << 20)
}

/// What bind learned, and what execution needs.
pub struct Bound {
    host: Host,
    params: Params,
    order_by: Option<Vec<String>>,
    /// The table id, or `None` for a raw query.
    table: Option<String>,
    query: Option<String>,
    columns: Vec<(String, ColType)>,
    /// Why bind could not learn the columns: raised at execution, never
    /// at bind (DuckDB quotes the query under a bind error, token and all).
    failed: Option<String>,
}

/// The two forms share everything but their positional parameter.
pub struct Scan<const BY_QUERY: bool>;

pub type ScanTable = Scan<false>;
pub type ScanQuery = Scan<true>;

pub const NAME: &str = "agnes_scan";
pub const QUERY_NAME: &str = "agnes_query";

impl<const BY_QUERY: bool> Scan<BY_QUERY> {
    fn request(bound: &Bound) -> Result<ScanRequest, String> {
        let p = &bound.params;
        let mut r = ScanRequest {
            table_id: bound.table.clone(),
            where_: p
                .text("where")
                .or_else(|| p.text("filter"))
                .filter(|w| !w.trim().is_empty()),
            order_by: bound.order_by.clone().filter(|o| !o.is_empty()),
            from_query: bound.query.clone(),
            ..Default::default()
        };
        match p.whole("limit") {
            None => {}
            Some(n) if n >= 1 => r.limit = Some(n as u64),
            Some(n) => return Err(format!("agnes_scan: \"limit\" must be 1 or more, got {n}")),
        }
        if r.from_query.is_some() {
            if r.where_.is_some() || r.limit.is_some() || r.order_by.is_some() {
                return Err(
                    "agnes_query takes no where, limit or order_by: put them in the query".into(),
                );
            }
            r.table_id = None;
        }
        Ok(r)
    }

    /// The columns of the table (schema endpoint) or of the query (the
    /// schema message of its stream; the server runs a raw query to say).
    fn learn_columns(bound: &Bound) -> Result<Vec<(String, ColType)>, String> {
        crate::access::check_at_bind(&bound.host)?;
        let settings = Settings::resolve(&bound.params.overrides()).map_err(|e| e.to_string())?;
        let timeouts = bound.params.timeouts()?;
        let request = Self::request(bound)?;
        let table = bound.table.clone();
        interrupt::run(move |cancel| {
            let remote = Remote::new(&settings, timeouts, cancel).map_err(|e| e.to_string())?;
            match table {
                Some(id) => {
                    let schema = remote.schema(&id).map_err(|e| e.to_string())?;
                    let bigquery = schema.sql_flavor.as_deref() == Some("bigquery");
                    Ok(schema
                        .columns
                        .into_iter()
                        .map(|c| {
                            let t = ColType::from_name(&c.type_name, bigquery);
                            (c.name, t)
                        })
                        .collect())
                }
                None => {
                    let reply = remote.scan(&request).map_err(|e| e.to_string())?;
                    let reader =
                        StreamReader::try_new(BufReader::new(reply), None).map_err(|e| {
                            format!(
                                "the answer to {} is not an Arrow stream: {e}",
                                request.subject()
                            )
                        })?;
                    Ok(reader
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| (f.name().clone(), ColType::from_arrow(f.data_type())))
                        .collect())
                }
            }
        })
    }
}

impl<const BY_QUERY: bool> VTab for Scan<BY_QUERY> {
    type BindData = Bound;
    type InitData = Mutex<Execution>;

    fn bind(bind: &BindInfo) -> Result<Bound, Box<dyn Error>> {
        // SAFETY: registered with a `Host` as extra info (functions::register).
        let host = unsafe { &*bind.get_extra_info::<Host>() }.clone();
        let params = Params::read(bind, GROUPS);
        let order_by = bind
            .get_named_parameter("order_by")
            .filter(|v| !v.is_null())
            .and_then(|v| v.to_list())
            .map(|items| {
                items
                    .iter()
                    .filter(|v| !v.is_null())
                    .map(|v| v.to_string())
                    .collect()
            });
        // A NULL read as text throws in DuckDB, through Rust: the host aborts.
        let first = bind.get_parameter(0);
        let first = (!first.is_null()).then(|| first.to_string());
        let null_argument = first.is_none().then(|| match BY_QUERY {
            false => format!("{NAME}: the table id is NULL; name a table: {NAME}('orders')"),
            true => format!(
                "{QUERY_NAME}: the query is NULL; give its text: {QUERY_NAME}('SELECT ...')"
            ),
        });
        let first = first.unwrap_or_default();
        let (table, query) = match BY_QUERY {
            false => (Some(first), None),
            true => (None, Some(first)),
        };
        let mut bound = Bound {
            host,
            params,
            order_by,
            table,
            query,
            columns: Vec::new(),
            failed: null_argument,
        };
        if bound.failed.is_none() {
            match Self::learn_columns(&bound) {
                Ok(columns) if !columns.is_empty() => bound.columns = columns,
                Ok(_) => bound.failed = Some("agnes_scan: the server gave no columns".into()),
                Err(e) => bound.failed = Some(e),
            }
        }
        match &bound.failed {
            // One placeholder column: the error comes when the scan runs.
            Some(_) => {
                bind.add_result_column("error", LogicalTypeHandle::from(LogicalTypeId::Varchar))
            }
            None => {
                for (name, t) in &bound.columns {
                    bind.add_result_column(name, t.logical_type());
                }
            }
        }
        Ok(bound)
    }

    fn init(init: &InitInfo) -> Result<Mutex<Execution>, Box<dyn Error>> {
        // With one task, whichever DuckDB thread takes it scans, and when a
        // worker does, the query's own thread spins in DuckDB's task loop
        // for the whole scan (seen in 5 runs of 6 in the duckdb CLI: half
        // of a 2-core machine). With two, the query's thread takes one and
        // waits on the stream's lock instead; the chunks then come in
        // either thread's turn, so a scan whose order matters keeps one.
        let ordered = BY_QUERY
            || crate::rows::bind_data::<Bound>(init)
                .is_none_or(|b| b.order_by.as_ref().is_some_and(|o| !o.is_empty()));
        init.set_max_threads(if ordered { 1 } else { 2 });
        let projection = init
            .get_column_indices()
            .into_iter()
            .map(|i| usize::try_from(i).unwrap_or(usize::MAX))
            .collect();
        Ok(Mutex::new(Execution::Pending { projection }))
    }

    fn func(
        func: &TableFunctionInfo<Self>,
        output: &mut DataChunkHandle,
    ) -> Result<(), Box<dyn Error>> {
        let mut execution = func
            .get_init_data()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Execution::Pending { projection } = &*execution {
            let bound = func.get_bind_data();
            *execution = match start::<BY_QUERY>(bound, projection) {
                Ok(stream) => Execution::Streaming(Box::new(stream)),
                Err(e) => Execution::Failed(e),
            };
        }
        let result = match &mut *execution {
            Execution::Pending { .. } | Execution::Done => {
                output.set_len(0);
                return Ok(());
            }
            Execution::Failed(e) => return Err(e.clone().into()),
            Execution::Streaming(stream) => stream.fill(output),
        };
        match result {
            Ok(true) => Ok(()),
            Ok(false) => {
                *execution = Execution::Done;
                output.set_len(0);
                Ok(())
            }
            Err(e) => {
                *execution = Execution::Failed(e.clone());
                Err(e.into())
            }
        }
    }

    fn supports_pushdown() -> bool {
        true
    }

    fn parameters() -> Option<Vec<LogicalTypeHandle>> {
        Some(vec![LogicalTypeHandle::from(LogicalTypeId::Varchar)])
    }

    fn named_parameters() -> Option<Vec<(String, LogicalTypeHandle)>> {
        let mut named = params::named(GROUPS);
        let text = LogicalTypeHandle::from(LogicalTypeId::Varchar);
        named.push(("order_by".into(), LogicalTypeHandle::list(&text)));
        Some(named)
    }
}

/// One execution of a scan.
pub enum Execution {
    Pending { projection: Vec<usize> },
    Streaming(Box<Stream>),
    Done,
    Failed(String),
}

/// Counts the bytes of the stream and keeps its last four: a stream that
/// ends without its end-of-stream marker (zeros) was cut on the way.
struct Counting {
    inner: Reply,
    bytes: u64,
    tail: [u8; 4],
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        if n >= 4 {
            self.tail.copy_from_slice(&buf[n - 4..n]);
        } else {
            for &b in &buf[..n] {
                self.tail.rotate_left(1);
                self.tail[3] = b;
            }
        }
        Ok(n)
    }
}

/// A scan under way: the decoder over the reply, the batch being emitted.
pub struct Stream {
    reader: StreamReader<BufReader<Counting>>,
    /// For each output column, its column in the stream's batches, or
    /// `None` for a column DuckDB does not read (the row id of `count(*)`).
    sources: Vec<Option<(usize, ColType)>>,
    batch: Option<(RecordBatch, usize)>,
    /// Largest batch so far, in stream bytes, for the cap check.
    largest: u64,
    last_bytes: u64,
    cap: u64,
    subject: String,
    url: String,
    /// Ends a blocked read on Ctrl-C; dropped with the stream.
    _sigint: CancelOnSigint,
}

impl Stream {
    fn bytes(&self) -> u64 {
        self.reader.get_ref().get_ref().bytes
    }

    /// Fills `output` with the next rows; false at the end.
    fn fill(&mut self, output: &mut DataChunkHandle) -> Result<bool, String> {
        loop {
            if let Some((batch, at)) = &self.batch {
                if *at < batch.num_rows() {
                    break;
                }
            }
            match self.reader.next() {
                None => {
                    self.finish()?;
                    return Ok(false);
                }
                Some(Err(e)) => {
                    return Err(self.stream_error(e));
                }
                Some(Ok(batch)) => {
                    let now = self.bytes();
                    self.largest = self.largest.max(now - self.last_bytes);
                    self.last_bytes = now;
                    self.check_cap()?;
                    self.batch = Some((batch, 0));
                }
            }
        }
        let Some((batch, at)) = &mut self.batch else {
            return Ok(false);
        };
        let n = (batch.num_rows() - *at).min(vector_size());
        for (out_col, source) in self.sources.iter().enumerate() {
            let Some((col, t)) = source else { continue };
            let array = batch.column(*col).slice(*at, n);
            let array = t.conform(&array).map_err(|e| {
                format!(
                    "agnes_scan of {}: column {}: {e}",
                    self.subject,
                    batch.schema().field(*col).name()
                )
            })?;
            // SAFETY: the output chunk's column `out_col` was declared as
            // `t` at bind and holds a vector's worth of rows (n is at most
            // the vector size).
            unsafe {
                let vector = ffi::duckdb_data_chunk_get_vector(output.get_ptr(), out_col as u64);
                crate::scan_types::write(*t, array.as_ref(), vector)?;
            }
        }
        *at += n;
        output.set_len(n);
        Ok(true)
    }

    /// A result that comes within a batch of the cap may have been cut by
    /// the server, which says nothing when it cuts: an error, never a
    /// quietly short answer.
    fn check_cap(&self) -> Result<(), String> {
        if self.bytes() + self.largest >= self.cap {
            return Err(format!(
                "agnes_scan of {}: the result reached the server's result cap ({} bytes); the server cuts such results \
                 without saying so, so it is refused rather than returned short. Narrow it: fewer columns, \
                 a \"where\" := condition, or \"limit\" := N",
                self.subject, self.cap
            ));
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), String> {
        self.check_cap()?;
        let counting = self.reader.get_ref().get_ref();
        if counting.tail != [0; 4] {
            return Err(format!(
                "agnes_scan of {}: the stream from {} ended without its end-of-stream marker after {} bytes; \
                 the result is incomplete",
                self.subject, self.url, counting.bytes
            ));
        }
        Ok(())
    }

    fn stream_error(&self, e: arrow_schema::ArrowError) -> String {
        if let arrow_schema::ArrowError::IoError(_, io) = &e {
            if agnes_engine::transfer::exchange::Stop::of(io)
                == Some(&agnes_engine::transfer::exchange::Stop::Cancelled)
            {
                return agnes_engine::Error::Interrupted.to_string();
            }
            return format!(
                "agnes_scan of {}: {}; the result is incomplete",
                self.subject,
                agnes_engine::transfer::remote::read_error(io, &self.url)
            );
        }
        format!(
            "agnes_scan of {}: the Arrow stream from {} could not be read after {} bytes: {e}",
            self.subject,
            self.url,
            self.bytes()
        )
    }
}

/// Starts the scan: checks, the view's guard, the request with the used
/// columns only, and the stream's schema.
fn start<const BY_QUERY: bool>(bound: &Bound, projection: &[usize]) -> Result<Stream, String> {
    if let Some(e) = &bound.failed {
        return Err(e.clone());
    }
    crate::access::check(&bound.host)?;
    let p = &bound.params;
    let settings = Settings::resolve(&p.overrides()).map_err(|e| e.to_string())?;
    let timeouts = p.timeouts()?;
    let mut request = Scan::<BY_QUERY>::request(bound)?;
    let sigint = CancelOnSigint::new();
    let remote = Remote::new(&settings, timeouts, &sigint.cancel).map_err(|e| e.to_string())?;

    // Only the columns DuckDB reads; at least one, for the row count.
    let used: Vec<usize> = projection
        .iter()
        .copied()
        .filter(|&i| i < bound.columns.len())
        .collect();
    if !BY_QUERY {
        let names: Vec<String> = match used.is_empty() {
            true => vec![bound.columns[0].0.clone()],
            false => used.iter().map(|&i| bound.columns[i].0.clone()).collect(),
        };
        let mut unique: Vec<String> = Vec::new();
        for n in names {
            if !unique.contains(&n) {
                unique.push(n);
            }
        }
        request.select = Some(unique);
        guard(bound, &remote, &request)?;
    }

    let subject = request.subject();
    let url = format!("{}/api/v2/scan", settings.server);
    let reply = remote.scan(&request).map_err(|e| e.to_string())?;
    let counting = Counting {
        inner: reply,
        bytes: 0,
        tail: [0xFF; 4],
    };
    let reader =
        StreamReader::try_new(BufReader::with_capacity(1 << 20, counting), None).map_err(|e| {
            format!("agnes_scan of {subject}: the answer from {url} is not an Arrow stream: {e}")
        })?;
    let schema = reader.schema();
    let mut sources = Vec::with_capacity(projection.len());
    for &i in projection {
        let Some((name, t)) = bound.columns.get(i) else {
            sources.push(None);
            continue;
        };
        let found = schema
            .fields()
            .iter()
            .position(|f| f.name() == name)
            .or_else(|| {
                schema
                    .fields()
                    .iter()
                    .position(|f| f.name().eq_ignore_ascii_case(name))
            })
            .ok_or_else(|| {
                format!("agnes_scan of {subject}: the server's stream has no column {name:?}")
            })?;
        sources.push(Some((found, *t)));
    }
    let cap = match p.whole("result_cap") {
        None => SERVER_RESULT_CAP,
        Some(n) if n >= 1 => n as u64,
        Some(n) => {
            return Err(format!(
                "agnes_scan: result_cap must be 1 or more bytes, got {n}"
            ))
        }
    };
    let last_bytes = reader.get_ref().get_ref().bytes;
    Ok(Stream {
        reader,
        sources,
        batch: None,
        largest: 0,
        last_bytes,
        cap,
        subject,
        url,
        _sigint: sigint,
    })
}

/// A view's guard: DuckDB cannot hand a `WHERE` or `LIMIT` to a table
/// function, so a view over a large remote table would fetch all of it.
fn guard(bound: &Bound, remote: &Remote, request: &ScanRequest) -> Result<(), String> {
    let p = &bound.params;
    let Some(max_rows) = p.whole("max_rows") else {
        return Ok(());
    };
    if request.where_.is_some() || request.limit.is_some() {
        return Ok(());
    }
    let estimate = remote.estimate(request).map_err(|e| e.to_string())?;
    let known = p.whole("known_rows").and_then(|n| u64::try_from(n).ok());
    let rows = estimate
        .estimated_result_rows
        .filter(|n| *n > 0)
        .or(known)
        .unwrap_or(0);
    if rows > max_rows.max(0) as u64 {
        let id = bound.table.as_deref().unwrap_or("?");
        return Err(format!(
            "table '{id}' has about {rows} rows on the server, more than the {max_rows} a view scans whole \
             (agnes_sync(scan_max_rows := N) sets that). A view cannot pass WHERE or LIMIT to the server; \
             ask for what you need instead: SELECT * FROM agnes_scan('{id}', \"where\" := '<condition>', \"limit\" := 1000)"
        ));
    }
    Ok(())
}
