//! Views over `agnes_scan()` for the tables a sync does not download
//! (`remote`, and 0.84's `server_only`), so that `SELECT ... FROM
//! live_orders` works in the session like any synced table while the rows
//! stay on the server until a query asks for them.
//!
//! The views are agnes's like the others: a user's table or view of the
//! same name is never replaced, and a scan view whose table left the
//! manifest is dropped by a full sync.

use std::collections::{HashMap, HashSet};

use crate::catalog::{Catalog, Existing, ScanGuard};
use crate::sync::plan::{Plan, PlannedTable, Status};
use crate::sync::report::{Action, TableOutcome};

/// Rows a view scans whole before it refuses and asks for `where`.
pub const DEFAULT_MAX_ROWS: u64 = 1_000_000;

/// Views made per sync. Creating one binds `agnes_scan()`, which asks the
/// server for the table's schema: a catalog of thousands of remote tables
/// (an admin's) must not cost thousands of requests at every session start.
pub const DEFAULT_VIEWS_PER_SYNC: usize = 100;

/// How scan views are made.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_rows: u64,
    /// New or remade views per sync; 0 makes none.
    pub views: usize,
    /// A sync of the whole manifest: agnes's scan views of tables that left
    /// it are dropped. A sync of one table remakes its view in any case.
    pub whole_manifest: bool,
}

/// What a scan view is made with, kept in its comment: the same again
/// means the view is left as it is (no schema request).
pub fn signature(version: &str, guard: ScanGuard) -> String {
    format!(
        "version={} max_rows={} known_rows={}",
        crate::secrets::redact::escape_controls(version),
        guard.max_rows,
        guard.known_rows
    )
}

/// Makes a scan view for every remote outcome, within `limits`, and drops
/// agnes's scan views of tables gone from the manifest. `relations` are the
/// catalog's as the sync found it before making its parquet views.
pub fn attach(
    outcomes: &mut [TableOutcome],
    plan: &Plan,
    catalog: &dyn Catalog,
    relations: &Result<HashMap<String, Existing>, String>,
    limits: &Limits,
) {
    let relations = match relations {
        Ok(r) => r,
        Err(e) => {
            for o in outcomes
                .iter_mut()
                .filter(|o| matches!(o.action, Action::SkippedRemote | Action::SkippedServerOnly))
            {
                o.note = Some(format!("no view: {e}"));
            }
            return;
        }
    };
    let planned: HashMap<&str, &PlannedTable> = plan
        .tables
        .iter()
        .map(|t| (t.entry.id.as_str(), t))
        .collect();
    let mut made = 0usize;
    for o in outcomes
        .iter_mut()
        .filter(|o| matches!(o.action, Action::SkippedRemote | Action::SkippedServerOnly))
    {
        let Some(planned) = planned.get(o.table_id.as_str()) else {
            continue;
        };
        let existing = relations.get(&o.table_id.to_lowercase());
        if let Some(Existing::UserRelation { kind }) = existing {
            o.note = Some(format!(
                "no view: the database already has a {kind} named \"{}\" that agnes did not create; \
                 query it with agnes_scan('{}')",
                o.table_id,
                planned.entry.scan_id()
            ));
            continue;
        }
        let guard = ScanGuard {
            max_rows: limits.max_rows,
            known_rows: planned.entry.rows,
        };
        let version = format!(
            "{}/{}",
            planned.entry.hash,
            planned.entry.updated.as_deref().unwrap_or("")
        );
        let wanted = signature(&version, guard);
        // The view is named like the table; `/api/v2` knows it by its id.
        let scan_id = planned.entry.scan_id();
        let same = matches!(existing, Some(Existing::AgnesScanView { table_id, signature })
            if table_id == scan_id && *signature == wanted);
        if same && limits.whole_manifest {
            o.action = Action::ScanView;
            o.view = Some(o.table_id.clone());
            o.rows = Some(planned.entry.rows);
            continue;
        }
        if made >= limits.views {
            o.note = Some(format!(
                "no view: this sync made its {} views over agnes_scan() (agnes_sync(scan_views := N)); \
                 query it with agnes_scan('{}'), or sync it by name",
                limits.views, scan_id
            ));
            continue;
        }
        made += 1;
        // Agnes's own views (over a parquet that is now remote, or an older
        // scan view) are replaced: the server's columns may have changed.
        match catalog.create_scan_view(&o.table_id, scan_id, guard, &wanted) {
            Ok(()) => {
                o.action = Action::ScanView;
                o.view = Some(o.table_id.clone());
                o.rows = Some(planned.entry.rows);
            }
            Err(e) => o.note = Some(format!("no view over agnes_scan(): {e}")),
        }
    }
    if !limits.whole_manifest {
        return;
    }
    let listed: HashSet<String> = plan
        .tables
        .iter()
        .filter(|t| t.status != Status::Invalid)
        .map(|t| t.entry.id.to_lowercase())
        .collect();
    for (name, existing) in relations {
        if let Existing::AgnesScanView { .. } = existing {
            // By the view's own name: a table's id may differ from it.
            if !listed.contains(name) {
                // Best effort: a view that cannot be dropped fails when used.
                let _ = catalog.drop_view(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::manifest;
    use crate::sync::plan::{plan, Scope};
    use crate::workspace::state::SyncState;
    use std::path::Path;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Fake {
        relations: HashMap<String, Existing>,
        made: Mutex<Vec<(String, ScanGuard)>>,
        dropped: Mutex<Vec<String>>,
    }

    impl Catalog for Fake {
        fn relations(&self) -> Result<HashMap<String, Existing>, String> {
            Ok(self.relations.clone())
        }
        fn create_view(&self, _: &str, _: &Path) -> Result<(), String> {
            Ok(())
        }
        fn create_scan_view(
            &self,
            name: &str,
            _: &str,
            guard: ScanGuard,
            _: &str,
        ) -> Result<(), String> {
            self.made.lock().unwrap().push((name.to_string(), guard));
            Ok(())
        }
        fn drop_view(&self, name: &str) -> Result<(), String> {
            self.dropped.lock().unwrap().push(name.to_string());
            Ok(())
        }
        fn parquet_rows(&self, _: &Path) -> Result<u64, String> {
            Ok(0)
        }
    }

    #[test]
    fn remote_and_server_only_tables_get_scan_views_and_users_keep_theirs() {
        let m = manifest::parse(
            br#"{"tables": {
                "live": {"hash": "x", "rows": 1250000, "query_mode": "remote"},
                "secret": {"hash": "abc", "rows": 7, "server_only": true},
                "mine": {"hash": "x", "query_mode": "remote"},
                "orders": {"hash": "abc"}}}"#,
        )
        .unwrap();
        let p = plan(&m, &SyncState::default(), &Scope::All, false, &|_, _| false).unwrap();
        let mut outcomes: Vec<TableOutcome> = p
            .tables
            .iter()
            .filter_map(|t| match t.status {
                Status::Remote => Some(TableOutcome::new(&t.entry.id, Action::SkippedRemote)),
                Status::ServerOnly => {
                    Some(TableOutcome::new(&t.entry.id, Action::SkippedServerOnly))
                }
                _ => None,
            })
            .collect();
        let mut fake = Fake::default();
        fake.relations.insert(
            "mine".into(),
            Existing::UserRelation {
                kind: "table".into(),
            },
        );
        fake.relations.insert(
            "gone".into(),
            Existing::AgnesScanView {
                table_id: "gone".into(),
                signature: String::new(),
            },
        );
        let limits = Limits {
            max_rows: 1000,
            views: 100,
            whole_manifest: true,
        };
        attach(&mut outcomes, &p, &fake, &fake.relations(), &limits);
        let made = fake.made.lock().unwrap().clone();
        assert_eq!(
            made,
            [
                (
                    "live".to_string(),
                    ScanGuard {
                        max_rows: 1000,
                        known_rows: 1_250_000
                    }
                ),
                (
                    "secret".to_string(),
                    ScanGuard {
                        max_rows: 1000,
                        known_rows: 7
                    }
                ),
            ]
        );
        let mine = outcomes.iter().find(|o| o.table_id == "mine").unwrap();
        assert_eq!(mine.action, Action::SkippedRemote);
        assert!(mine.note.as_deref().unwrap().contains("agnes_scan('mine')"));
        let live = outcomes.iter().find(|o| o.table_id == "live").unwrap();
        assert_eq!(
            (live.action, live.view.as_deref()),
            (Action::ScanView, Some("live"))
        );
        assert_eq!(*fake.dropped.lock().unwrap(), ["gone"]);
    }

    #[test]
    fn unchanged_views_cost_nothing_and_new_ones_are_capped() {
        let m = manifest::parse(
            br#"{"tables": {
                "a": {"hash": "x", "rows": 1, "query_mode": "remote"},
                "b": {"hash": "x", "rows": 2, "query_mode": "remote"},
                "c": {"hash": "x", "rows": 3, "query_mode": "remote"}}}"#,
        )
        .unwrap();
        let p = plan(&m, &SyncState::default(), &Scope::All, false, &|_, _| false).unwrap();
        let limits = Limits {
            max_rows: 10,
            views: 1,
            whole_manifest: true,
        };
        let mut fake = Fake::default();
        let same = signature(
            "x/",
            ScanGuard {
                max_rows: 10,
                known_rows: 1,
            },
        );
        fake.relations.insert(
            "a".into(),
            Existing::AgnesScanView {
                table_id: "a".into(),
                signature: same,
            },
        );
        let mut outcomes: Vec<TableOutcome> = ["a", "b", "c"]
            .iter()
            .map(|id| TableOutcome::new(id, Action::SkippedRemote))
            .collect();
        attach(&mut outcomes, &p, &fake, &fake.relations(), &limits);
        let made: Vec<String> = fake
            .made
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.0.clone())
            .collect();
        assert_eq!(made, ["b"]);
        let actions: Vec<&str> = outcomes.iter().map(|o| o.action.as_str()).collect();
        assert_eq!(actions, ["scan_view", "scan_view", "skipped_remote"]);
        assert!(outcomes[2]
            .note
            .as_deref()
            .unwrap()
            .contains("scan_views := N"));
        assert!(fake.dropped.lock().unwrap().is_empty());
    }
}
