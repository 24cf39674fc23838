//! Named parameters of the table functions: declared with their SQL types,
//! read once at bind into `Params` (owned values, no work done), and
//! interpreted at execution.

use std::collections::HashMap;
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

/// How long network waits may last: `timeout` (seconds a response or body
/// read may stall), `total_timeout` (seconds a manifest or bundle may take in
/// all), `min_rate` (bytes/s a download must keep up over `min_rate_window`
/// seconds, 0 to turn off).
pub const TIMEOUTS: &[Parameter] = &[
    ("timeout", LogicalTypeId::Double),
    ("total_timeout", LogicalTypeId::Double),
    ("min_rate", LogicalTypeId::Bigint),
    ("min_rate_window", LogicalTypeId::Double),
];

/// The named parameters of a function, from groups of them.
pub fn named(groups: &[&[Parameter]]) -> Vec<(String, LogicalTypeHandle)> {
    groups
        .iter()
        .flat_map(|g| g.iter())
        .map(|(name, id)| (name.to_string(), LogicalTypeHandle::from(*id)))
        .collect()
}

/// One parameter's value as given in SQL.
#[derive(Debug, Clone, PartialEq)]
enum Given {
    Text(String),
    Flag(bool),
    Whole(i64),
    Number(f64),
}

/// The named parameters of one call, as given (NULL counts as not given).
#[derive(Debug, Clone, Default)]
pub struct Params {
    given: HashMap<&'static str, Given>,
}

impl Params {
    /// Reads the parameters `declared` from `bind`. Only reads values.
    pub fn read(bind: &BindInfo, declared: &[&[Parameter]]) -> Params {
        let mut given = HashMap::new();
        for (name, kind) in declared.iter().flat_map(|g| g.iter()) {
            let Some(value) = bind.get_named_parameter(name).filter(|v| !v.is_null()) else {
                continue;
            };
            let value = match kind {
                LogicalTypeId::Boolean => Given::Flag(value.to_bool()),
                LogicalTypeId::Bigint => Given::Whole(value.to_int64()),
                LogicalTypeId::Double => Given::Number(value.to_double()),
                _ => Given::Text(value.to_string()),
            };
            given.insert(*name, value);
        }
        Params { given }
    }

    pub fn text(&self, name: &str) -> Option<String> {
        match self.given.get(name) {
            Some(Given::Text(s)) => Some(s.clone()),
            _ => None,
        }
    }

    pub fn flag(&self, name: &str) -> bool {
        matches!(self.given.get(name), Some(Given::Flag(true)))
    }

    pub fn whole(&self, name: &str) -> Option<i64> {
        match self.given.get(name) {
            Some(Given::Whole(n)) => Some(*n),
            _ => None,
        }
    }

    /// A whole number between 1 and 1024, or an error naming the parameter.
    pub fn count(&self, name: &str) -> Result<Option<usize>, String> {
        match self.whole(name) {
            None => Ok(None),
            Some(n @ 1..=1024) => Ok(Some(n as usize)),
            Some(n) => Err(format!("{name} must be between 1 and 1024, got {n}")),
        }
    }

    /// Seconds as a duration, or an error naming the parameter.
    pub fn seconds(&self, name: &str) -> Result<Option<Duration>, String> {
        match self.given.get(name) {
            Some(Given::Number(s)) if (0.0..=86_400.0).contains(s) => {
                Ok(Some(Duration::from_secs_f64(*s)))
            }
            Some(Given::Number(s)) => Err(format!(
                "{name} must be a number of seconds between 0 and 86400, got {s}"
            )),
            _ => Ok(None),
        }
    }

    pub fn overrides(&self) -> Overrides {
        Overrides {
            server: self.text("server"),
            token: self.text("token"),
            workspace: self.text("workspace"),
            new_workspace: self.flag("new_workspace"),
        }
    }

    pub fn timeouts(&self) -> Result<Timeouts, String> {
        let mut timeouts = Timeouts::default();
        let at_least = |d: Duration| d.max(Duration::from_millis(1));
        if let Some(read) = self.seconds("timeout")? {
            timeouts.read = at_least(read);
        }
        if let Some(total) = self.seconds("total_timeout")? {
            timeouts.metadata_total = at_least(total);
        }
        if let Some(window) = self.seconds("min_rate_window")? {
            timeouts.rate_window = at_least(window);
        }
        match self.whole("min_rate") {
            None => {}
            Some(n) if n >= 0 => timeouts.min_rate = n as u64,
            Some(n) => return Err(format!("min_rate must be 0 or more bytes/s, got {n}")),
        }
        Ok(timeouts)
    }
}
