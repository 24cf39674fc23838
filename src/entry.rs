//! The C entry point, written out by hand so that agnes can only ever call
//! the C API functions every DuckDB it loads in has.
//!
//! DuckDB hands an extension a table of function pointers. The `duckdb`
//! crate copies every slot of the newest table it knows (DuckDB 1.5.6's),
//! whatever the host; a DuckDB 1.3 or 1.4 host has only the v1.2.0 band, so
//! the later slots are garbage there, and the crate's own query path calls
//! some of them (a segfault of the analyst's whole process). Here the table
//! is cut to the v1.2.0 band before the crate sees it: every later slot is
//! null, so a call that strays past the band is a caught panic (a SQL
//! error), never a jump into garbage. The footer declares v1.2.0 as well
//! (scripts/stamp_extension.py): the two must agree.

use std::ffi::{c_char, c_void, CStr, CString};
use std::mem::{offset_of, size_of, MaybeUninit};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Mutex;

use duckdb::ffi::{self, duckdb_ext_api_v1, duckdb_extension_access, duckdb_extension_info};
use duckdb::Connection;

/// The C API version agnes is written against, as the footer declares it.
pub const C_API_VERSION: &CStr = c"v1.2.0";

/// The oldest DuckDB agnes runs in. The C API band is older, but agnes must
/// see when the user has closed every connection (src/host.rs), and only
/// DuckDB 1.4 and later can say (`duckdb_connection_count()`); in 1.3 a
/// reopen of the same file in Python would hang. So older hosts are refused
/// at `LOAD`, with this said.
pub const MIN_DUCKDB: (u64, u64, u64) = (1, 4, 0);

/// Bytes of the function table that the v1.2.0 band covers: every slot
/// before the first function DuckDB added after it.
const STABLE_BAND_BYTES: usize = offset_of!(duckdb_ext_api_v1, duckdb_create_instance_cache);

/// The cut-down table being handed to the crate; the lock also keeps two
/// databases that load agnes at once from interleaving.
static INIT: Mutex<()> = Mutex::new(());
static mut STABLE_API: MaybeUninit<duckdb_ext_api_v1> = MaybeUninit::zeroed();

/// Called by DuckDB on `LOAD agnes`, once per database.
///
/// # Safety
/// DuckDB passes a valid `info` and `access` for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn agnes_init_c_api(
    info: duckdb_extension_info,
    access: *const duckdb_extension_access,
) -> bool {
    let outcome = catch_unwind(AssertUnwindSafe(|| init(info, access)));
    let error = match outcome {
        Ok(Ok(loaded)) => return loaded,
        Ok(Err(e)) => e,
        Err(_) => "agnes failed to load (internal error)".to_string(),
    };
    if let Some(set_error) = (*access).set_error {
        let message = CString::new(error.replace('\0', " ")).unwrap_or_default();
        set_error(info, message.as_ptr());
    }
    false
}

unsafe fn init(
    info: duckdb_extension_info,
    access: *const duckdb_extension_access,
) -> Result<bool, String> {
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    let get_api = (*access).get_api.ok_or("DuckDB gave no get_api")?;
    // DuckDB refuses (and says why) when it does not offer v1.2.0.
    let host_api = get_api(info, C_API_VERSION.as_ptr()) as *const u8;
    if host_api.is_null() {
        return Ok(false);
    }
    let stable = ptr::addr_of_mut!(STABLE_API) as *mut u8;
    ptr::write_bytes(stable, 0, size_of::<duckdb_ext_api_v1>());
    ptr::copy_nonoverlapping(host_api, stable, STABLE_BAND_BYTES);

    check_host_version()?;
    let narrowed = duckdb_extension_access {
        set_error: (*access).set_error,
        get_database: (*access).get_database,
        get_api: Some(stable_api),
    };
    let version = C_API_VERSION.to_str().expect("ASCII");
    if !ffi::duckdb_rs_extension_api_init(info, &narrowed, version)? {
        return Ok(false);
    }
    let get_database = (*access)
        .get_database
        .ok_or("DuckDB gave no get_database")?;
    let database = get_database(info);
    if database.is_null() {
        return Err("DuckDB gave no database to load agnes into".into());
    }
    let con = Connection::open_from_raw(*database).map_err(|e| e.to_string())?;
    crate::load(&con, *database).map_err(|e| e.to_string())?;
    Ok(true)
}

/// Refuses a DuckDB older than `MIN_DUCKDB`, naming both versions.
unsafe fn check_host_version() -> Result<(), String> {
    // `duckdb_library_version` is the table's 8th slot, in every host.
    let api = &*ptr::addr_of!(STABLE_API).cast::<duckdb_ext_api_v1>();
    let Some(library_version) = api.duckdb_library_version else {
        return Ok(());
    };
    let version = CStr::from_ptr(library_version())
        .to_string_lossy()
        .into_owned();
    match parse_version(&version) {
        Some(found) if found < MIN_DUCKDB => {
            let (major, minor, patch) = MIN_DUCKDB;
            Err(format!(
                "agnes needs DuckDB {major}.{minor}.{patch} or newer; this is DuckDB {version}. \
                 Upgrade DuckDB (pip install -U duckdb) to use agnes"
            ))
        }
        _ => Ok(()),
    }
}

/// `v1.4.4` or `1.5.0-dev123` as numbers.
fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let mut parts = text.trim_start_matches('v').split(['.', '-']);
    let mut next = || parts.next()?.parse::<u64>().ok();
    Some((next()?, next()?, next().unwrap_or(0)))
}

/// `get_api` as the crate sees it: the cut-down table.
unsafe extern "C" fn stable_api(_: duckdb_extension_info, _: *const c_char) -> *const c_void {
    ptr::addr_of!(STABLE_API) as *const c_void
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers() {
        assert_eq!(parse_version("v1.4.4"), Some((1, 4, 4)));
        assert_eq!(parse_version("v1.10.0"), Some((1, 10, 0)));
        assert_eq!(parse_version("1.5.0-dev123"), Some((1, 5, 0)));
        assert!(parse_version("v1.3.2").unwrap() < MIN_DUCKDB);
        assert!(parse_version("v2.0.0").unwrap() >= MIN_DUCKDB);
        assert_eq!(parse_version("nightly"), None);
    }

    #[test]
    fn the_band_ends_where_the_later_functions_start() {
        // 404 functions make up the v1.2.0 band of the table.
        assert_eq!(STABLE_BAND_BYTES / size_of::<usize>(), 404);
        assert!(STABLE_BAND_BYTES < size_of::<duckdb_ext_api_v1>());
        // The functions agnes relies on are inside it.
        assert!(offset_of!(duckdb_ext_api_v1, duckdb_query) < STABLE_BAND_BYTES);
        assert!(offset_of!(duckdb_ext_api_v1, duckdb_execute_prepared) < STABLE_BAND_BYTES);
        assert!(offset_of!(duckdb_ext_api_v1, duckdb_register_table_function) < STABLE_BAND_BYTES);
        assert!(offset_of!(duckdb_ext_api_v1, duckdb_add_replacement_scan) < STABLE_BAND_BYTES);
        // And these, which the crate would use for queries, are not.
        assert!(
            offset_of!(duckdb_ext_api_v1, duckdb_result_get_arrow_options) >= STABLE_BAND_BYTES
        );
        assert!(
            offset_of!(duckdb_ext_api_v1, duckdb_table_function_get_client_context)
                >= STABLE_BAND_BYTES
        );
    }
}
