//! The manifests real Agnes servers sent (recorded under test/fixtures/ by
//! test/realpeer/record_fixtures.py), parsed and planned: which tables a
//! first sync downloads, for the analyst and the admin of each generation.

use std::path::PathBuf;

use agnes_engine::protocol::manifest::{self, Manifest};
use agnes_engine::sync::plan::{plan, Scope, Status};
use agnes_engine::workspace::state::SyncState;

fn recorded(generation: &str, who: &str) -> Manifest {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../test/fixtures")
        .join(format!("real-{generation}"))
        .join(format!("manifest.{who}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let exchange: serde_json::Value = serde_json::from_str(&text).unwrap();
    manifest::parse(exchange["body"].to_string().as_bytes()).unwrap()
}

/// Table -> status of a first sync (nothing local yet).
fn first_sync(m: &Manifest, all_tables: bool) -> Vec<(String, Status)> {
    plan(
        m,
        &SyncState::default(),
        &Scope::All,
        all_tables,
        &|_, _| false,
    )
    .unwrap()
    .tables
    .into_iter()
    .map(|t| (t.entry.id, t.status))
    .collect()
}

/// What a first sync downloads.
fn downloads(m: &Manifest, all_tables: bool) -> Vec<String> {
    first_sync(m, all_tables)
        .into_iter()
        .filter(|(_, s)| s.needs_download())
        .map(|(t, _)| t)
        .collect()
}

#[test]
fn the_084_analyst_takes_the_crm_package_by_name() {
    let m = recorded("0.84", "analyst");
    let got: Vec<(String, &str)> = first_sync(&m, false)
        .into_iter()
        .map(|(t, s)| (t, s.as_str()))
        .collect();
    let want = [
        ("Orders2", "new"),
        ("events", "new"),
        ("live_orders", "remote"),
        ("orders", "new"),
        ("secret_ledger", "server_only"),
    ];
    let want: Vec<(String, &str)> = want.iter().map(|(t, s)| (t.to_string(), *s)).collect();
    assert_eq!(got, want);
    // Files by name, `/api/v2` by the registry id.
    let orders2 = m.get("Orders2").unwrap();
    assert_eq!(orders2.scan_id(), "orders2");
    assert_eq!(m.get("orders").unwrap().scan_id(), "orders");
    let events = m.get("events").unwrap();
    assert_eq!(events.parts.as_ref().map(Vec::len), Some(3));
}

#[test]
fn the_084_admin_without_packages_takes_nothing_unless_all_tables() {
    let m = recorded("0.84", "admin");
    assert_eq!(m.subscriptions.as_ref().map(|s| s.len()), Some(0));
    assert!(downloads(&m, false).is_empty());
    assert!(first_sync(&m, false).iter().all(|(_, s)| matches!(
        s,
        Status::NotSubscribed | Status::Remote | Status::ServerOnly
    )));
    assert_eq!(
        downloads(&m, true),
        [
            "Orders2",
            "customers",
            "events",
            "in.c-crm.people",
            "orders",
            "products"
        ]
    );
}

#[test]
fn a_029_manifest_has_no_subscriptions_and_takes_the_flat_dict() {
    for (who, want) in [
        ("analyst", vec!["Orders2", "orders"]),
        (
            "admin",
            vec![
                "Orders2",
                "customers",
                "in.c-crm.people",
                "orders",
                "products",
            ],
        ),
    ] {
        let m = recorded("0.29", who);
        assert!(m.subscriptions.is_none(), "{who}");
        assert_eq!(downloads(&m, false), want, "{who}");
        assert!(m.tables.iter().all(|t| t.registry_id.is_none()));
        let live = first_sync(&m, false)
            .into_iter()
            .find(|(t, _)| t == "live_orders");
        assert_eq!(live, Some(("live_orders".into(), Status::Remote)));
    }
}
