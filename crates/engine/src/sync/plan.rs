//! What a sync will do for each table, decided from the manifest, the state
//! and the files on disk, before anything is fetched (CONTRACT.md §4.2).

use crate::error::{Error, Result};
use crate::protocol::manifest::{HashKind, Manifest, QueryMode, TableEntry};
use crate::workspace::state::{SyncState, TableState};

/// How a server table compares with the local copy (`agnes_manifest().status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Never synced here.
    New,
    /// The server's hash differs from the one the local file was verified against.
    Changed,
    Unchanged,
    /// The state says synced, but the file is gone.
    Missing,
    /// The server gives no hash: only a download with `If-None-Match` can tell.
    Unknown,
    /// Queried on the server; nothing to download.
    Remote,
    /// Listed but never distributed (0.84 `server_only`): query it on the server.
    ServerOnly,
    /// The user does not subscribe to it (0.84 `data_packages` /
    /// `direct_tables`); `all_tables` downloads it anyway.
    NotSubscribed,
    /// The entry cannot be used (hostile id, wrong types, a hostile part path).
    Invalid,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Changed => "changed",
            Status::Unchanged => "unchanged",
            Status::Missing => "missing",
            Status::Unknown => "unknown",
            Status::Remote => "remote",
            Status::ServerOnly => "server_only",
            Status::NotSubscribed => "not_subscribed",
            Status::Invalid => "invalid",
        }
    }

    /// Whether a sync downloads a table in this status.
    pub fn needs_download(self) -> bool {
        matches!(
            self,
            Status::New | Status::Changed | Status::Missing | Status::Unknown
        )
    }
}

/// Compares one manifest entry with the local state and file.
/// `subscribed`: whether this sync takes the table at all (CONTRACT.md §7).
pub fn status(
    entry: &TableEntry,
    local: Option<&TableState>,
    file_exists: bool,
    subscribed: bool,
) -> Status {
    if entry.invalid.is_some() {
        return Status::Invalid;
    }
    // Queried on the server, never downloaded: `agnes_sync` makes a view
    // over `agnes_scan()` for each (scan_views.rs).
    if entry.server_only {
        return Status::ServerOnly;
    }
    if entry.query_mode == QueryMode::Remote {
        return Status::Remote;
    }
    if !subscribed {
        return Status::NotSubscribed;
    }
    match local {
        None => Status::New,
        Some(_) if !file_exists => Status::Missing,
        Some(_) if entry.hash_kind() == HashKind::Empty => Status::Unknown,
        Some(local) if local.hash != entry.hash => Status::Changed,
        Some(_) => Status::Unchanged,
    }
}

/// One table of the plan.
#[derive(Debug, Clone)]
pub struct PlannedTable {
    pub entry: TableEntry,
    pub status: Status,
    /// Sent as `If-None-Match`: the ETag of the local file, when the server
    /// gives no hash and the file is still there (CONTRACT.md §4.2).
    pub if_none_match: Option<String>,
    /// Among the user's subscriptions (always, from a server without them).
    pub subscribed: bool,
}

/// Why a table synced before loses its local copy and agnes's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawal {
    /// No longer in the manifest: deleted, or access revoked.
    Gone,
    /// Still listed, but no longer among the user's subscriptions (0.84).
    NotSubscribed,
    /// Still listed, but now server-only: never kept on a laptop (0.84).
    ServerOnly,
}

/// A table whose local copy goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub id: String,
    pub why: Withdrawal,
}

/// The whole plan of a sync.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub tables: Vec<PlannedTable>,
    /// Synced before, and not to be kept: gone from the manifest, out of
    /// the subscriptions, or server-only now (as upstream's client prunes).
    pub removed: Vec<Removal>,
}

/// What to sync: every table, one table, or none (docs only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Table(String),
    DocsOnly,
}

/// Plans a sync. `file_exists` tells whether a table's local copy, as the
/// state describes it, is whole on disk. `all_tables` takes every table the
/// user may read, subscribed or not; a table named in `scope` is always taken.
pub fn plan(
    manifest: &Manifest,
    state: &SyncState,
    scope: &Scope,
    all_tables: bool,
    file_exists: &dyn Fn(&str, &TableState) -> bool,
) -> Result<Plan> {
    let selected: Vec<&TableEntry> = match scope {
        Scope::DocsOnly => return Ok(Plan::default()),
        Scope::All => manifest.tables.iter().collect(),
        Scope::Table(id) => vec![manifest
            .get(id)
            .ok_or_else(|| Error::UnknownTable(id.clone()))?],
    };
    let tables: Vec<PlannedTable> = selected
        .into_iter()
        .map(|entry| {
            let local = state.tables.get(&entry.id);
            let exists =
                entry.invalid.is_none() && local.is_some_and(|l| file_exists(&entry.id, l));
            let subscribed = manifest.subscribed(&entry.id);
            let taken = subscribed || all_tables || matches!(scope, Scope::Table(_));
            let status = status(entry, local, exists, taken);
            let if_none_match = match status {
                Status::Unknown => local.and_then(|l| l.etag.clone()),
                _ => None,
            };
            PlannedTable {
                entry: entry.clone(),
                status,
                if_none_match,
                subscribed,
            }
        })
        .collect();
    let removed = removals(manifest, state, scope, &tables);
    Ok(Plan { tables, removed })
}

/// The tables synced before that this sync removes. Removal of what left
/// the manifest needs the whole manifest: with one table selected, the
/// others' absence means nothing; that table itself still goes when it is
/// withdrawn.
fn removals(
    manifest: &Manifest,
    state: &SyncState,
    scope: &Scope,
    planned: &[PlannedTable],
) -> Vec<Removal> {
    let mut out = Vec::new();
    if *scope == Scope::All {
        let listed = manifest.ids();
        out.extend(
            state
                .tables
                .keys()
                .filter(|id| !listed.contains(id.as_str()))
                .map(|id| Removal {
                    id: id.clone(),
                    why: Withdrawal::Gone,
                }),
        );
    }
    for t in planned {
        let Some(local) = state.tables.get(&t.entry.id) else {
            continue;
        };
        let why = match t.status {
            // What was taken outside the subscriptions never left them.
            Status::NotSubscribed if !local.outside_subscriptions => Withdrawal::NotSubscribed,
            Status::ServerOnly => Withdrawal::ServerOnly,
            _ => continue,
        };
        {
            out.push(Removal {
                id: t.entry.id.clone(),
                why,
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::manifest::parse;

    const MD5_A: &str = "0123456789abcdef0123456789abcdef";
    const MD5_B: &str = "fedcba9876543210fedcba9876543210";

    fn manifest() -> Manifest {
        let body = serde_json::json!({"tables": {
            "new_t": {"hash": MD5_A},
            "same": {"hash": MD5_A},
            "changed": {"hash": MD5_B},
            "gone_file": {"hash": MD5_A},
            "nohash": {"hash": ""},
            "nohash_gone": {"hash": ""},
            "token": {"hash": "1a2b3c4d5e6f"},
            "remote": {"hash": "x", "query_mode": "remote"},
            "../evil": {"hash": MD5_A},
        }});
        parse(body.to_string().as_bytes()).unwrap()
    }

    fn state() -> SyncState {
        let mut s = SyncState::default();
        let entry = |hash: &str, etag: Option<&str>| TableState {
            hash: hash.into(),
            etag: etag.map(Into::into),
            ..Default::default()
        };
        for id in ["same", "changed", "gone_file"] {
            s.tables.insert(id.into(), entry(MD5_A, None));
        }
        s.tables.insert("nohash".into(), entry("", Some("\"42\"")));
        s.tables
            .insert("nohash_gone".into(), entry("", Some("\"43\"")));
        s.tables.insert("token".into(), entry("1a2b3c4d5e6f", None));
        s.tables.insert("revoked".into(), entry(MD5_A, None));
        s
    }

    fn on_disk(id: &str, _: &TableState) -> bool {
        !matches!(id, "gone_file" | "nohash_gone" | "new_t")
    }

    #[test]
    fn each_status_and_what_it_downloads() {
        let plan = plan(&manifest(), &state(), &Scope::All, false, &on_disk).unwrap();
        let got: Vec<(&str, &str, Option<&str>)> = plan
            .tables
            .iter()
            .map(|t| {
                (
                    t.entry.id.as_str(),
                    t.status.as_str(),
                    t.if_none_match.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("../evil", "invalid", None),
                ("changed", "changed", None),
                ("gone_file", "missing", None),
                ("new_t", "new", None),
                ("nohash", "unknown", Some("\"42\"")),
                // The file is gone: an ETag would earn a 304 for nothing.
                ("nohash_gone", "missing", None),
                ("remote", "remote", None),
                ("same", "unchanged", None),
                ("token", "unchanged", None),
            ]
        );
        assert_eq!(
            plan.removed,
            [Removal {
                id: "revoked".into(),
                why: Withdrawal::Gone
            }]
        );
        let downloads: Vec<_> = plan
            .tables
            .iter()
            .filter(|t| t.status.needs_download())
            .map(|t| t.entry.id.as_str())
            .collect();
        assert_eq!(
            downloads,
            ["changed", "gone_file", "new_t", "nohash", "nohash_gone"]
        );
    }

    #[test]
    fn one_table_scope_plans_it_alone_and_removes_nothing() {
        let plan = plan(
            &manifest(),
            &state(),
            &Scope::Table("changed".into()),
            false,
            &on_disk,
        )
        .unwrap();
        assert_eq!(plan.tables.len(), 1);
        assert!(plan.removed.is_empty());
    }

    #[test]
    fn unknown_table_is_an_error_naming_it() {
        let err = plan(
            &manifest(),
            &state(),
            &Scope::Table("nope".into()),
            false,
            &on_disk,
        )
        .unwrap_err();
        assert!(err.to_string().contains("'nope'"), "{err}");
    }

    #[test]
    fn docs_only_plans_no_table() {
        let plan = plan(&manifest(), &state(), &Scope::DocsOnly, false, &on_disk).unwrap();
        assert!(plan.tables.is_empty() && plan.removed.is_empty());
    }

    #[test]
    fn server_only_tables_are_never_downloaded() {
        let body = serde_json::json!({"tables": {
            "secret": {"hash": MD5_A, "server_only": true},
            "open": {"hash": MD5_A, "server_only": false},
        }});
        let m = parse(body.to_string().as_bytes()).unwrap();
        let plan = plan(&m, &SyncState::default(), &Scope::All, true, &on_disk).unwrap();
        let got: Vec<_> = plan.tables.iter().map(|t| t.status.as_str()).collect();
        assert_eq!(got, ["new", "server_only"]);
        assert!(!Status::ServerOnly.needs_download());
    }

    #[test]
    fn subscriptions_choose_the_tables_unless_all_tables() {
        let body = serde_json::json!({
            "tables": {"a": {"hash": MD5_A}, "b": {"hash": MD5_A}, "c": {"hash": MD5_A}, "d": {"hash": MD5_A}},
            "data_packages": [{"id": "p", "tables": ["a", "zz"]}, {"tables": "nonsense"}],
            "direct_tables": ["c", 5],
        });
        let m = parse(body.to_string().as_bytes()).unwrap();
        let statuses = |all: bool, scope: &Scope| -> Vec<&'static str> {
            plan(&m, &SyncState::default(), scope, all, &on_disk)
                .unwrap()
                .tables
                .iter()
                .map(|t| t.status.as_str())
                .collect()
        };
        assert_eq!(
            statuses(false, &Scope::All),
            ["new", "not_subscribed", "new", "not_subscribed"]
        );
        assert_eq!(statuses(true, &Scope::All), ["new"; 4]);
        // A table asked for by name is taken, subscribed or not.
        assert_eq!(statuses(false, &Scope::Table("b".into())), ["new"]);
        // Without the keys, the flat dict is the download set.
        let flat = parse(br#"{"tables": {"a": {}}}"#).unwrap();
        assert!(flat.subscriptions.is_none() && flat.subscribed("a"));
        // Empty lists subscribe to nothing.
        let none = parse(br#"{"tables": {"a": {}}, "direct_tables": []}"#).unwrap();
        assert!(!none.subscribed("a"));
    }

    /// The shape a 0.84 server sends (CONTRACT.md §7.6): table objects in
    /// the packages, the flat dict keyed by name.
    fn packages(tables: serde_json::Value, package_tables: serde_json::Value) -> Manifest {
        let body = serde_json::json!({
            "tables": tables,
            "data_packages": [{"id": "pkg_1", "slug": "crm", "name": "CRM", "tables": package_tables}],
            "direct_tables": [],
            "memory_domains": [],
            "knowledge_artifacts": [],
        });
        parse(body.to_string().as_bytes()).unwrap()
    }

    fn statuses(plan: &Plan) -> Vec<(&str, &'static str)> {
        plan.tables
            .iter()
            .map(|t| (t.entry.id.as_str(), t.status.as_str()))
            .collect()
    }

    #[test]
    fn package_table_objects_subscribe_by_name() {
        let m = packages(
            serde_json::json!({
                "Orders2": {"hash": MD5_A}, "orders": {"hash": MD5_A}, "other": {"hash": MD5_A},
                "secret": {"hash": MD5_A, "server_only": false},
            }),
            serde_json::json!([
                {"id": "orders2", "name": "Orders2", "hash": MD5_A},
                {"id": "orders", "name": "orders"},
                {"id": "secret", "name": "secret", "server_only": true},
                {"id": "no_name"},
                "legacy_string_is_a_name",
            ]),
        );
        let plan = plan(&m, &SyncState::default(), &Scope::All, false, &on_disk).unwrap();
        assert_eq!(
            statuses(&plan),
            [
                ("Orders2", "new"),
                ("orders", "new"),
                ("other", "not_subscribed"),
                // A package that says server-only wins over the flat flag.
                ("secret", "server_only"),
            ]
        );
        // Files go by name, /api/v2 by id.
        let orders2 = m.get("Orders2").unwrap();
        assert_eq!(orders2.scan_id(), "orders2");
        assert_eq!(m.get("orders").unwrap().registry_id, None);
        assert!(m.subscribed("legacy_string_is_a_name"));
        assert!(!m.subscribed("no_name"));
    }

    #[test]
    fn an_admin_without_packages_subscribes_to_nothing() {
        let m = packages(
            serde_json::json!({"a": {"hash": MD5_A}, "b": {"hash": MD5_A}}),
            serde_json::json!([]),
        );
        let body = serde_json::json!({"tables": {"a": {"hash": MD5_A}},
            "data_packages": [], "direct_tables": [], "memory_domains": [], "knowledge_artifacts": []});
        let admin = parse(body.to_string().as_bytes()).unwrap();
        for m in [&m, &admin] {
            let plan = plan(m, &SyncState::default(), &Scope::All, false, &on_disk).unwrap();
            assert!(plan
                .tables
                .iter()
                .all(|t| t.status == Status::NotSubscribed));
            let all = plan_all(m);
            assert!(all.tables.iter().all(|t| t.status == Status::New));
        }
    }

    fn plan_all(m: &Manifest) -> Plan {
        plan(m, &SyncState::default(), &Scope::All, true, &on_disk).unwrap()
    }

    #[test]
    fn tables_that_left_the_subscriptions_or_became_server_only_are_removed() {
        let m = packages(
            serde_json::json!({
                "kept": {"hash": MD5_A}, "dropped": {"hash": MD5_A},
                "hidden": {"hash": MD5_A, "server_only": true},
            }),
            serde_json::json!([{"id": "kept", "name": "kept"}, {"id": "hidden", "name": "hidden"}]),
        );
        let mut s = SyncState::default();
        for id in ["kept", "dropped", "hidden", "deleted"] {
            s.tables.insert(
                id.into(),
                TableState {
                    hash: MD5_A.into(),
                    ..Default::default()
                },
            );
        }
        let removed = |all: bool, scope: &Scope, s: &SyncState| -> Vec<(String, Withdrawal)> {
            plan(&m, s, scope, all, &on_disk)
                .unwrap()
                .removed
                .into_iter()
                .map(|r| (r.id, r.why))
                .collect()
        };
        assert_eq!(
            removed(false, &Scope::All, &s),
            [
                ("deleted".into(), Withdrawal::Gone),
                ("dropped".into(), Withdrawal::NotSubscribed),
                ("hidden".into(), Withdrawal::ServerOnly),
            ]
        );
        // Every table: only what is gone or server-only goes.
        assert_eq!(
            removed(true, &Scope::All, &s),
            [
                ("deleted".into(), Withdrawal::Gone),
                ("hidden".into(), Withdrawal::ServerOnly),
            ]
        );
        // Taken with all_tables earlier: it never left the subscriptions.
        s.tables.get_mut("dropped").unwrap().outside_subscriptions = true;
        assert_eq!(
            removed(false, &Scope::All, &s),
            [
                ("deleted".into(), Withdrawal::Gone),
                ("hidden".into(), Withdrawal::ServerOnly),
            ]
        );
        s.tables.get_mut("dropped").unwrap().outside_subscriptions = false;
        // One table asked for by name: nothing else is touched.
        assert!(removed(false, &Scope::Table("dropped".into()), &s).is_empty());
        assert_eq!(
            removed(false, &Scope::Table("hidden".into()), &s),
            [("hidden".into(), Withdrawal::ServerOnly)]
        );
    }
}
