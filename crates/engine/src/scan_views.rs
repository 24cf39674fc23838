//! Views over `agnes_scan()` for the tables a sync does not download
//! (`remote`, and 0.84's `server_only`), so that `SELECT ... FROM
//! live_orders` works in the session like any synced table while the rows
//! stay on the server until a query asks for them.
//!
//! The views are agnes's like the others: a user's table or view of the
//! same name is never replaced, and a scan view whose table left the
//! manifest is dropped by a full sync.

use std::collections::HashSet;

use crate::catalog::{Catalog, Existing, ScanGuard};
use crate::plan::{Plan, Status};
use crate::sync::{Action, TableOutcome};

/// Rows a view scans whole before it refuses and asks for `where`.
pub const DEFAULT_MAX_ROWS: u64 = 1_000_000;

/// Makes a scan view for every remote outcome; with `drop_stale`, drops
/// agnes's scan views of tables no longer in the manifest.
pub fn attach(
    outcomes: &mut [TableOutcome],
    plan: &Plan,
    catalog: &dyn Catalog,
    max_rows: u64,
    drop_stale: bool,
) {
    let relations = match catalog.relations() {
        Ok(r) => r,
        Err(e) => {
            for o in outcomes
                .iter_mut()
                .filter(|o| o.action == Action::SkippedRemote)
            {
                o.note = Some(format!("no view: {e}"));
            }
            return;
        }
    };
    for o in outcomes
        .iter_mut()
        .filter(|o| o.action == Action::SkippedRemote)
    {
        let Some(planned) = plan.tables.iter().find(|t| t.entry.id == o.table_id) else {
            continue;
        };
        // Agnes's own views (over a parquet that is now remote, or an older
        // scan view) are replaced: the server's columns may have changed,
        // and DuckDB refuses a view whose columns did.
        if let Some(Existing::UserRelation { kind }) = relations.get(&o.table_id.to_lowercase()) {
            o.note = Some(format!(
                "no view: the database already has a {kind} named \"{}\" that agnes did not create; \
                 query it with agnes_scan('{}')",
                o.table_id, o.table_id
            ));
            continue;
        }
        let guard = ScanGuard {
            max_rows,
            known_rows: planned.entry.rows,
        };
        match catalog.create_scan_view(&o.table_id, &o.table_id, guard) {
            Ok(()) => {
                o.action = Action::ScanView;
                o.view = Some(o.table_id.clone());
                o.rows = Some(planned.entry.rows);
            }
            Err(e) => o.note = Some(format!("no view over agnes_scan(): {e}")),
        }
    }
    if !drop_stale {
        return;
    }
    let listed: HashSet<String> = plan
        .tables
        .iter()
        .filter(|t| t.status != Status::Invalid)
        .map(|t| t.entry.id.to_lowercase())
        .collect();
    for (name, existing) in &relations {
        if let Existing::AgnesScanView { table_id } = existing {
            if !listed.contains(name) && !listed.contains(&table_id.to_lowercase()) {
                // Best effort: a view that cannot be dropped fails when used.
                let _ = catalog.drop_view(table_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;
    use crate::plan::{plan, Scope};
    use crate::state::SyncState;
    use std::collections::HashMap;
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
        fn create_scan_view(&self, name: &str, _: &str, guard: ScanGuard) -> Result<(), String> {
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
        let p = plan(&m, &SyncState::default(), &Scope::All, &|_| false).unwrap();
        let mut outcomes: Vec<TableOutcome> = p
            .tables
            .iter()
            .filter(|t| t.status == Status::Remote)
            .map(|t| TableOutcome::new(&t.entry.id, Action::SkippedRemote))
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
            },
        );
        attach(&mut outcomes, &p, &fake, 1000, true);
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
}
