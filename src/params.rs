//! Named parameters shared by the table functions.

use std::time::Duration;

use agnes_engine::{Overrides, Timeouts};
use duckdb::core::{LogicalTypeHandle, LogicalTypeId};
use duckdb::vtab::BindInfo;

pub type Parameter = (&'static str, LogicalTypeId);

/// `server`, `token`, `workspace`: where a call goes (CONTRACT.md §2).
pub const CONNECTION: &[Parameter] = &[
    ("server", LogicalTypeId::Varchar),
    ("token", LogicalTypeId::Varchar),
    ("workspace", LogicalTypeId::Varchar),
    // A `workspace :=` that agnes has not used and that is not the
    // configured one must be asked for (engine config, issue 13).
    ("new_workspace", LogicalTypeId::Boolean),
];

/// `timeout`: seconds a response or body read may stall.
pub const TIMEOUT: &[Parameter] = &[("timeout", LogicalTypeId::Double)];

/// The named parameters of a function, from groups of them.
pub fn named(groups: &[&[Parameter]]) -> Vec<(String, LogicalTypeHandle)> {
    groups
        .iter()
        .flat_map(|g| g.iter())
        .map(|(name, id)| (name.to_string(), LogicalTypeHandle::from(*id)))
        .collect()
}

pub fn overrides(bind: &BindInfo) -> Overrides {
    Overrides {
        server: text(bind, "server"),
        token: text(bind, "token"),
        workspace: text(bind, "workspace"),
        new_workspace: flag(bind, "new_workspace"),
    }
}

pub fn text(bind: &BindInfo, name: &str) -> Option<String> {
    bind.get_named_parameter(name)
        .filter(|v| !v.is_null())
        .map(|v| v.to_string())
}

pub fn flag(bind: &BindInfo, name: &str) -> bool {
    bind.get_named_parameter(name)
        .is_some_and(|v| !v.is_null() && v.to_bool())
}

/// A positive whole number, or an error naming the parameter.
pub fn count(bind: &BindInfo, name: &str) -> Result<Option<usize>, String> {
    match bind.get_named_parameter(name).filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(v) => match v.to_int64() {
            n @ 1..=1024 => Ok(Some(n as usize)),
            n => Err(format!("{name} must be between 1 and 1024, got {n}")),
        },
    }
}

/// Seconds as a duration, or an error naming the parameter.
pub fn seconds(bind: &BindInfo, name: &str) -> Result<Option<Duration>, String> {
    match bind.get_named_parameter(name).filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(v) => {
            let s = v.to_double();
            match (0.0..=86_400.0).contains(&s) {
                true => Ok(Some(Duration::from_secs_f64(s))),
                false => Err(format!(
                    "{name} must be a number of seconds between 0 and 86400, got {v}"
                )),
            }
        }
    }
}

pub fn timeouts(bind: &BindInfo) -> Result<Timeouts, String> {
    let mut timeouts = Timeouts::default();
    if let Some(read) = seconds(bind, "timeout")? {
        timeouts.read = read.max(Duration::from_millis(1));
    }
    Ok(timeouts)
}
