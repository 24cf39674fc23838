//! `agnes-server`: a local Agnes-compatible server over a folder of parquet
//! files, for the demo, the tests and the benchmarks (see README.md).

mod admin;
mod app;
mod auth;
mod bundle;
mod catalog;
mod compress;
mod download;
mod fault_layer;
mod faults;
mod generation;
mod hive;
mod isotime;
mod manifest;
mod parquet_footer;
mod predicate;
mod pydantic;
mod reply;
mod request_log;
mod scan_data;
mod store;
mod tables;
mod upload;
mod v2;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use crate::app::App;
use crate::faults::Fault;
use crate::generation::Generation;
use crate::request_log::RequestLog;
use crate::store::ObjectStore;

/// Serve DIR's parquet files with the Agnes sync contract.
#[derive(Parser, Debug)]
#[command(name = "agnes-server", version)]
struct Args {
    /// Folder of tables: every DIR/*.parquet, plus an optional DIR/catalog.json.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    addr: IpAddr,
    /// Port to listen on; 0 picks a free one (printed on stdout).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where uploads are stored [default: DIR/_uploads].
    #[arg(long, value_name = "DIR")]
    uploads: Option<PathBuf>,
    /// JSON list of faults active from the start (crates/server/README.md).
    #[arg(long, value_name = "FILE.json")]
    faults: Option<PathBuf>,
    /// Also append every logged request to FILE, one JSON line each (the
    /// fields of GET /admin/requests, raw Authorization included).
    #[arg(long, value_name = "FILE")]
    request_log: Option<PathBuf>,
    /// Which Agnes server to behave as: today's (0.84) or May 2026's.
    #[arg(long, value_enum, default_value = "0.84")]
    mode: Generation,
    /// Port of the object store that signed URLs point at (0.84 only);
    /// 0 picks a free one (GET /admin/store says which).
    #[arg(long, default_value_t = 0)]
    store_port: u16,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match try_main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("agnes-server: error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn try_main(args: Args) -> Result<(), String> {
    if !args.data.is_dir() {
        return Err(format!("--data {}: not a folder", args.data.display()));
    }
    let data_dir = std::fs::canonicalize(&args.data)
        .map_err(|e| format!("--data {}: {e}", args.data.display()))?;
    let uploads_dir = args.uploads.unwrap_or_else(|| data_dir.join("_uploads"));
    let startup_faults = match &args.faults {
        None => Vec::new(),
        Some(path) => read_faults(path)?,
    };
    let mut app = App::new(data_dir, uploads_dir, startup_faults);
    app.generation = args.mode;
    if let Some(path) = &args.request_log {
        app.requests = RequestLog::appending_to(path)
            .map_err(|e| format!("--request-log {}: {e}", path.display()))?;
    }
    let app = Arc::new(app);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))?;
    let store = args
        .mode
        .is_current()
        .then(|| SocketAddr::new(args.addr, args.store_port));
    runtime.block_on(serve(app, SocketAddr::new(args.addr, args.port), store))
}

fn read_faults(path: &PathBuf) -> Result<Vec<Fault>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--faults {}: {e}", path.display()))?;
    let value =
        serde_json::from_str(&text).map_err(|e| format!("--faults {}: {e}", path.display()))?;
    Fault::parse_list(&value).map_err(|e| format!("--faults {}: {e}", path.display()))
}

async fn serve(
    app: Arc<App>,
    addr: SocketAddr,
    store_addr: Option<SocketAddr>,
) -> Result<(), String> {
    use axum::serve::ListenerExt;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("listening on {addr}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("reading the bound address: {e}"))?;
    if let Some(store_addr) = store_addr {
        let store_listener = tokio::net::TcpListener::bind(store_addr)
            .await
            .map_err(|e| format!("listening on {store_addr} (object store): {e}"))?;
        let store_bound = store_listener
            .local_addr()
            .map_err(|e| format!("reading the bound address: {e}"))?;
        let _ = app.store.set(ObjectStore::new(
            format!("http://{store_bound}"),
            format!("http://{bound}"),
        ));
        let service =
            store::router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(store_listener, service).await {
                eprintln!("agnes-server: object store on {store_bound}: {e}");
            }
        });
    }
    // The one line on stdout: test helpers read the port from it.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{bound}")
        .and_then(|_| stdout.flush())
        .map_err(|e| format!("writing to stdout: {e}"))?;
    drop(stdout);
    let service = app::router(app).into_make_service_with_connect_info::<SocketAddr>();
    // Without TCP_NODELAY a small response sent in two writes (headers, then
    // body) waits for the client's delayed ACK: 40 ms per small download.
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    axum::serve(listener, service)
        .await
        .map_err(|e| format!("serving on {bound}: {e}"))
}
