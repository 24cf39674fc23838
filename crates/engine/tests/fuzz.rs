//! Property tests ("fuzzing") of everything the engine parses from outside:
//! the manifest, the memory bundle and the state file. A panic in any of
//! them would cross into DuckDB and abort the analyst's process, so each is
//! fed arbitrary bytes and arbitrary JSON, and must answer `Ok` or `Err`.
//!
//! `cargo test` runs a bounded number of cases per property (proptest's 256);
//! `PROPTEST_CASES=N` raises it (`make fuzz`). Each property prints how many
//! inputs it tried (`-- --nocapture` to see them).

use std::sync::atomic::{AtomicU64, Ordering};

use agnes_engine::protocol::bundle;
use agnes_engine::protocol::ids::{check_table_id, is_safe_item_id};
use agnes_engine::protocol::manifest::{self, HashKind};
use agnes_engine::sync::plan::{self, Scope};
use agnes_engine::workspace::state::{read_json, SyncState, TableState};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Map, Value};

/// Runs `test` over `strategy` with the configured number of cases, counts
/// the inputs and prints the count.
fn fuzz<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> u64 {
    let tried = AtomicU64::new(0);
    let mut runner = TestRunner::new(Config {
        // Failures are shrunk and shown; no regression files in the tree.
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, |value| {
        tried.fetch_add(1, Ordering::Relaxed);
        test(value)
    });
    let tried = tried.into_inner();
    println!("fuzz {name}: {tried} inputs");
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    tried
}

/// Strings that matter to the parsers, beside arbitrary ones.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        1 => prop::sample::select(vec![
            "tables", "hash", "rows", "size_bytes", "query_mode", "updated", "source_type",
            "server_time", "local", "remote", "materialized", "mandatory", "approved", "id",
            "title", "content", "domain", "category", "orders", "in.c-crm.people", "..", ".",
            "../x", "a/b", "", "km_x", "approved", "0123456789abcdef0123456789abcdef",
            "1a2b3c4d5e6f", "x'; DROP TABLE t; --", "a\"b", "\u{0}", "é",
            "parts", "path", "server_only", "2026_01.parquet", "y=1/p.parquet",
            "../p.parquet", "/abs.parquet", "a/../../b.parquet", "data_packages",
            "direct_tables",
        ])
        .prop_map(String::from),
    ]
}

/// Any JSON value, up to a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        word().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(word(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A table entry: the known fields with values of any type, or anything.
fn entry() -> impl Strategy<Value = Value> {
    let field = prop::sample::select(vec![
        "hash",
        "rows",
        "size_bytes",
        "query_mode",
        "updated",
        "source_type",
        "extra",
        "server_only",
        "signed_url",
        "signed_url_expires_at",
    ]);
    prop_oneof![
        3 => (prop::collection::btree_map(field, json_value(), 0..7), prop::option::of(parts()))
            .prop_map(|(m, parts)| {
                let mut fields: Map<String, Value> =
                    m.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                if let Some(parts) = parts {
                    fields.insert("parts".into(), parts);
                }
                Value::Object(fields)
            }),
        1 => json_value(),
    ]
}

/// A `parts` list: part-shaped objects with hostile paths, or anything.
fn parts() -> impl Strategy<Value = Value> {
    let part = (word(), json_value(), json_value())
        .prop_map(|(path, hash, size)| json!({"path": path, "hash": hash, "size_bytes": size}));
    prop_oneof![
        3 => prop::collection::vec(part, 0..6).prop_map(Value::Array),
        1 => json_value(),
    ]
}

/// A manifest-shaped document: `tables` of hostile ids and odd entries.
fn manifest_value() -> impl Strategy<Value = Value> {
    (
        prop::collection::btree_map(word(), entry(), 0..12),
        json_value(),
        prop::option::of(json_value()),
    )
        .prop_map(|(tables, server_time, extra)| {
            let mut top = Map::new();
            top.insert("tables".into(), Value::Object(tables.into_iter().collect()));
            top.insert("server_time".into(), server_time);
            if let Some(extra) = extra {
                top.insert("assets".into(), extra.clone());
                top.insert("direct_tables".into(), extra.clone());
                top.insert("data_packages".into(), json!([{"tables": extra}]));
            }
            Value::Object(top)
        })
}

/// Bytes: arbitrary ones, or a JSON document cut and damaged at random.
fn damaged(doc: impl Strategy<Value = Value>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        (
            doc,
            any::<prop::sample::Index>(),
            any::<u8>(),
            any::<bool>()
        )
            .prop_map(|(value, at, byte, cut)| {
                let mut bytes = serde_json::to_vec(&value).unwrap();
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    match cut {
                        true => bytes.truncate(i),
                        false => bytes[i] = byte,
                    }
                }
                bytes
            }),
    ]
}

fn table_state() -> impl Strategy<Value = TableState> {
    (
        word(),
        any::<u64>(),
        any::<u64>(),
        prop::option::of(word()),
        prop::option::of(any::<u64>()),
        any::<bool>(),
    )
        .prop_map(
            |(hash, rows, size_bytes, etag, mtime_ns, outside_subscriptions)| TableState {
                hash,
                rows,
                size_bytes,
                etag,
                mtime_ns,
                parts: None,
                outside_subscriptions,
            },
        )
}

fn sync_state() -> impl Strategy<Value = SyncState> {
    (
        any::<u32>(),
        word(),
        prop::collection::btree_map(word(), table_state(), 0..8),
        prop::option::of(word()),
    )
        .prop_map(|(version, server, tables, last_sync)| SyncState {
            version,
            server,
            tables,
            last_sync,
        })
}

/// What a parsed manifest promises to the rest of the sync.
fn check_manifest(body: &[u8], state: &SyncState) -> Result<(), TestCaseError> {
    let Ok(m) = manifest::parse(body) else {
        return Ok(());
    };
    prop_assert!(m.tables.windows(2).all(|w| w[0].id <= w[1].id));
    for t in &m.tables {
        // An entry that is not refused may become a file name and a view.
        if t.invalid.is_none() {
            prop_assert!(check_table_id(&t.id).is_ok(), "{:?} passed", t.id);
        }
        if t.hash_kind() == HashKind::Md5 {
            prop_assert_eq!(t.hash.len(), 32);
        }
    }
    // Planning over whatever came never panics, and only accepted ids are
    // ever downloaded.
    for scope in [Scope::All, Scope::DocsOnly] {
        let plan = plan::plan(&m, state, &scope, true, &|_, _| true).unwrap();
        for t in plan.tables.iter().filter(|t| t.status.needs_download()) {
            prop_assert!(t.entry.invalid.is_none() && check_table_id(&t.entry.id).is_ok());
            // Every part path of a table that is downloaded stays in its folder.
            for part in t.entry.parts.iter().flatten() {
                prop_assert!(agnes_engine::protocol::ids::check_part_path(&part.path).is_ok());
            }
        }
    }
    Ok(())
}

#[test]
fn manifest_parse_never_panics_on_bytes() {
    let state = SyncState::default();
    fuzz("manifest::parse(bytes)", damaged(manifest_value()), |b| {
        check_manifest(&b, &state)
    });
}

#[test]
fn manifest_parse_of_any_json_keeps_its_promises() {
    let strategy = (
        prop_oneof![3 => manifest_value(), 1 => json_value()],
        sync_state(),
    );
    fuzz("manifest::parse(json)", strategy, |(value, state)| {
        check_manifest(&serde_json::to_vec(&value).unwrap(), &state)
    });
}

/// A bundle: lists of items with any ids and fields, or anything.
fn bundle_value() -> impl Strategy<Value = Value> {
    let item = prop_oneof![
        3 => prop::collection::btree_map(
            prop::sample::select(vec!["id", "title", "domain", "category", "content", "tags"]),
            prop_oneof![2 => word().prop_map(Value::String), 1 => json_value()],
            0..6,
        )
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        1 => json_value(),
    ];
    let list = prop_oneof![
        3 => prop::collection::vec(item, 0..6).prop_map(Value::Array),
        1 => json_value(),
    ];
    (list.clone(), list).prop_map(|(mandatory, approved)| {
        json!({"mandatory": mandatory, "approved": approved, "token_budget": 100})
    })
}

fn check_rules(body: &[u8]) -> Result<(), TestCaseError> {
    let Ok(rendered) = bundle::render(body) else {
        return Ok(());
    };
    for name in rendered.files.keys() {
        // Every file stays inside .claude/rules and inside the km_ namespace.
        let stem = name.strip_prefix("km_").and_then(|n| n.strip_suffix(".md"));
        prop_assert!(stem.is_some_and(is_safe_item_id), "file name {name:?}");
    }
    Ok(())
}

#[test]
fn rules_render_never_panics_and_names_only_safe_files() {
    fuzz("rules::render(bytes)", damaged(bundle_value()), |b| {
        check_rules(&b)
    });
    fuzz("rules::render(json)", bundle_value(), |v| {
        check_rules(&serde_json::to_vec(&v).unwrap())
    });
}

#[test]
fn state_parsing_never_panics_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync-state.json");
    let any_state = prop_oneof![
        damaged(sync_state().prop_map(|s| serde_json::to_value(s).unwrap())),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ];
    fuzz("state::read_json(bytes)", any_state, |bytes| {
        std::fs::write(&path, &bytes).unwrap();
        let _ = read_json::<SyncState>(&path);
        Ok(())
    });
    fuzz("state round trip", sync_state(), |state| {
        std::fs::write(&path, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
        let back = read_json::<SyncState>(&path).map_err(TestCaseError::fail)?;
        prop_assert_eq!(back, Some(state));
        Ok(())
    });
}

#[test]
fn accepted_table_ids_are_plain_file_names() {
    fuzz("ids::check_table_id", word(), |id| {
        if check_table_id(&id).is_ok() {
            prop_assert!(!id.contains(['/', '\\', '\'', '"', ';', '\0']) && !id.contains(".."));
            prop_assert!(!id.starts_with('.') && id.len() <= 128);
        }
        Ok(())
    });
}

/// Part paths made of the pieces that matter: names, dots, separators.
fn part_path() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "a",
        "b=1",
        "..",
        ".",
        "",
        "/",
        "\\",
        ".hidden",
        "x.parquet",
        "%2F",
        ":",
        "é",
        " ",
        "\0",
        "y.csv",
    ]);
    prop_oneof![
        1 => word(),
        3 => prop::collection::vec(piece.clone(), 1..6).prop_map(|p| p.join("/")),
        2 => prop::collection::vec(piece, 1..6).prop_map(|p| p.concat()),
    ]
}

#[test]
fn accepted_part_paths_stay_in_the_table_folder() {
    use std::path::{Component, Path};
    fuzz("ids::check_part_path", part_path(), |path| {
        if agnes_engine::protocol::ids::check_part_path(&path).is_ok() {
            let p = Path::new(&path);
            prop_assert!(p.is_relative());
            prop_assert!(p.components().all(|c| matches!(c, Component::Normal(_))));
            prop_assert!(!path.contains(['\\', ':', '\0']) && path.ends_with(".parquet"));
            prop_assert!(path
                .split('/')
                .all(|n| !n.is_empty() && !n.starts_with('.')));
        }
        Ok(())
    });
}
