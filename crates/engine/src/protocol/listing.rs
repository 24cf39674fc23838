//! The manifest as the quick no-op reads it: for each table only what the
//! plan and the report need, borrowed from the body, everything else
//! skipped unread (issue 25: the whole parse, with the subscriptions read
//! as `serde_json::Value` trees, cost the 10,000-table hook more than the
//! fetch).
//!
//! It is strict where `manifest::parse` is lenient: whatever that parse
//! would mark invalid or read in its own way (a wrong type, a bad id or
//! part path, a key given twice, bytes that are not UTF-8, a malformed
//! subscription list) makes this one give up, and the full path runs.
//! Giving up is always safe; answering differently never is.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::iter::Peekable;
use std::slice;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::protocol::ids::{check_part_path, check_table_id};
use crate::protocol::manifest::Str;

/// One table of the flat `tables` dict.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed<'a> {
    pub id: Cow<'a, str>,
    pub hash: Cow<'a, str>,
    pub rows: u64,
    pub size_bytes: u64,
    pub remote: bool,
    /// The entry's own flag, or a data package's that lists it.
    pub server_only: bool,
    /// Among the subscriptions (always, from a server without them).
    pub subscribed: bool,
}

/// What the quick path reads of a manifest.
#[derive(Debug, Default)]
pub struct Listing<'a> {
    /// Sorted by id, unique.
    pub tables: Vec<Listed<'a>>,
    /// The subscribed names, sorted and unique; `None` from a server
    /// without `data_packages` and `direct_tables`.
    pub subscriptions: Option<Vec<Cow<'a, str>>>,
    /// Names a data package marks `server_only`, sorted and unique.
    pub server_only: Vec<Cow<'a, str>>,
    /// How many subscribed names the `tables` dict does not list.
    pub unlisted: usize,
}

impl Listing<'_> {
    /// Marks each table subscribed and server-only as the lists say, in
    /// one walk of the three sorted lists: a binary search per table and
    /// per name was 15% of the 50,000-table no-op's CPU (issue 25).
    fn mark(&mut self) {
        let mut only = self.server_only.iter().peekable();
        let mut names = self.subscriptions.as_ref().map(|s| s.iter().peekable());
        let mut matched = 0;
        for t in &mut self.tables {
            t.server_only |= step_to(&mut only, &t.id);
            if let Some(names) = &mut names {
                t.subscribed = step_to(names, &t.id);
                matched += usize::from(t.subscribed);
            }
        }
        self.unlisted = self.subscriptions.as_ref().map_or(0, |s| s.len() - matched);
    }
}

/// Steps a sorted list past every name before `id`; whether `id` is next.
fn step_to(names: &mut Peekable<slice::Iter<Cow<str>>>, id: &str) -> bool {
    while names.next_if(|n| n.as_ref() < id).is_some() {}
    names.next_if(|n| n.as_ref() == id).is_some()
}

/// Reads `body`; `None` wherever `manifest::parse` could answer otherwise.
pub fn read(body: &[u8]) -> Option<Listing<'_>> {
    let text = std::str::from_utf8(body).ok()?;
    let Object(top) = serde_json::from_str::<Object<Top>>(text).ok()?;
    let mut tables = top.tables.0;
    if !tables.is_sorted_by(|a, b| a.id < b.id) {
        tables.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        // The last of duplicate ids wins in the full parse: not here.
        if tables.windows(2).any(|w| w[0].id == w[1].id) {
            return None;
        }
    }
    let (packages, direct) = (top.data_packages, top.direct_tables);
    let mut listing = Listing {
        tables,
        ..Listing::default()
    };
    if packages.is_some() || direct.is_some() {
        let objects = packages
            .into_iter()
            .flatten()
            .flat_map(|Object(p)| p.tables.unwrap_or_default())
            .chain(direct.into_iter().flatten());
        let mut names = Vec::new();
        for t in objects {
            let Some(name) = t.name else { continue };
            if t.server_only {
                listing.server_only.push(name.clone());
            }
            names.push(name);
        }
        for list in [&mut names, &mut listing.server_only] {
            list.sort_unstable();
            list.dedup();
        }
        listing.subscriptions = Some(names);
    }
    listing.mark();
    Some(listing)
}

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow)]
    tables: Tables<'a>,
    #[serde(borrow, default)]
    data_packages: Option<Vec<Object<Package<'a>>>>,
    #[serde(borrow, default)]
    direct_tables: Option<Vec<PackageTable<'a>>>,
}

/// The flat dict, in the body's order; a bad entry fails the whole read.
struct Tables<'a>(Vec<Listed<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Tables<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = Tables<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of tables")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(Str(id)) = map.next_key()? {
                    if out.len() == crate::protocol::manifest::MAX_TABLES {
                        return Err(de::Error::custom("too many tables"));
                    }
                    let Object(entry): Object<Entry> = map.next_value()?;
                    let listed = entry.listed(id).map_err(de::Error::custom)?;
                    out.push(listed);
                }
                Ok(Tables(out))
            }
        }
        d.deserialize_map(Entries)
    }
}

/// A table entry: each field the full parse type-checks is checked here
/// too, and only the ones the plan needs are kept.
#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow, default)]
    hash: Option<Str<'a>>,
    #[serde(default)]
    updated: Option<Text>,
    #[serde(default)]
    size_bytes: Option<u64>,
    #[serde(default)]
    rows: Option<u64>,
    #[serde(borrow, default)]
    query_mode: Option<Str<'a>>,
    #[serde(default)]
    source_type: Option<Text>,
    #[serde(borrow, default)]
    parts: Option<Vec<Object<Part<'a>>>>,
    #[serde(borrow, default)]
    server_only: Option<&'a RawValue>,
    #[serde(default)]
    signed_url: Option<Text>,
    #[serde(default)]
    signed_url_expires_at: Option<Text>,
}

impl<'a> Entry<'a> {
    fn listed(self, id: Cow<'a, str>) -> Result<Listed<'a>, String> {
        check_table_id(&id)?;
        let _ = (
            self.updated,
            self.source_type,
            self.signed_url,
            self.signed_url_expires_at,
        );
        if let Some(parts) = &self.parts {
            let mut seen = HashSet::with_capacity(parts.len());
            for Object(part) in parts {
                check_part_path(&part.path.0)?;
                if !seen.insert(part.path.0.to_lowercase()) {
                    return Err("a part path listed twice".into());
                }
            }
        }
        Ok(Listed {
            id,
            hash: self.hash.map(|h| h.0).unwrap_or_default(),
            rows: self.rows.unwrap_or(0),
            size_bytes: self.size_bytes.unwrap_or(0),
            remote: self.query_mode.is_some_and(|m| m.0 == "remote"),
            // As in the full parse, only a literal `true` withholds a table.
            server_only: self.server_only.is_some_and(|v| v.get() == "true"),
            subscribed: true,
        })
    }
}

/// One part of a partitioned table, as the full parse checks it.
#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow)]
    path: Str<'a>,
    #[serde(default, rename = "hash")]
    _hash: Option<Text>,
    #[serde(default, rename = "size_bytes")]
    _size_bytes: Option<u64>,
}

/// `T` read only from a JSON object: a derived `Deserialize` also takes an
/// array of the fields in order, which the full parse refuses.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Only<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Only<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Object)
            }
        }
        d.deserialize_map(Only(std::marker::PhantomData))
    }
}

/// A string whose value is not needed: only its type is checked.
struct Text;

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AnyText;
        impl Visitor<'_> for AnyText {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E>(self, _: &str) -> Result<Text, E> {
                Ok(Text)
            }
        }
        d.deserialize_str(AnyText)
    }
}

#[derive(Deserialize)]
struct Package<'a> {
    #[serde(borrow, default)]
    tables: Option<Vec<PackageTable<'a>>>,
}

/// A table of a data package or of `direct_tables`: an object whose
/// `name` is the flat dict's key, or a bare name. Anything else, or an
/// object without a string `name`, names nothing (as in the full parse).
struct PackageTable<'a> {
    name: Option<Cow<'a, str>>,
    server_only: bool,
}

impl<'de: 'a, 'a> Deserialize<'de> for PackageTable<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Table;
        impl<'de> Visitor<'de> for Table {
            type Value = PackageTable<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table object or name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(PackageTable {
                    name: Some(Cow::Borrowed(v)),
                    server_only: false,
                })
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(PackageTable {
                    name: Some(Cow::Owned(v.to_string())),
                    server_only: false,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                // The last of duplicate keys wins, as in a `Value` object.
                let (mut name, mut server_only) = (None, false);
                while let Some(Str(key)) = map.next_key()? {
                    match key.as_ref() {
                        "name" => name = map.next_value::<Named>()?.0,
                        "server_only" => server_only = map.next_value::<Flag>()?.0,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(PackageTable { name, server_only })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(nothing())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(nothing())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(nothing())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(nothing())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(nothing())
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(nothing())
            }
        }
        fn nothing<'a>() -> PackageTable<'a> {
            PackageTable {
                name: None,
                server_only: false,
            }
        }
        d.deserialize_any(Table)
    }
}

/// A `name`: a string, or anything else, which names nothing.
struct Named<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Named<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&'de RawValue>::deserialize(d)?;
        Ok(Named(match raw.get().starts_with('"') {
            true => Some(
                serde_json::from_str::<Str<'de>>(raw.get())
                    .map_err(de::Error::custom)?
                    .0,
            ),
            false => None,
        }))
    }
}

/// `server_only` of a package's table: only `true` is true.
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&'de RawValue>::deserialize(d)?;
        Ok(Flag(raw.get() == "true"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::manifest;

    /// The quick read agrees with the full parse on every table it reads,
    /// or gives up.
    fn agrees(body: &str) -> bool {
        let Some(listing) = read(body.as_bytes()) else {
            return false;
        };
        let full = manifest::parse(body.as_bytes()).unwrap();
        assert_eq!(listing.tables.len(), full.tables.len(), "{body}");
        for (quick, entry) in listing.tables.iter().zip(&full.tables) {
            assert_eq!(entry.invalid, None, "{body}");
            assert_eq!(quick.id, entry.id.as_str());
            assert_eq!(quick.hash, entry.hash.as_str());
            assert_eq!(
                (quick.rows, quick.size_bytes),
                (entry.rows, entry.size_bytes)
            );
            assert_eq!(
                quick.remote,
                entry.query_mode == manifest::QueryMode::Remote
            );
            assert_eq!(quick.server_only, entry.server_only, "{body}");
            assert_eq!(quick.subscribed, full.subscribed(&entry.id), "{body}");
        }
        true
    }

    #[test]
    fn reads_what_the_full_parse_reads() {
        for body in [
            r#"{"tables": {"b": {"hash": "h", "rows": 2, "size_bytes": 3, "extra": [1e400]},
                "a": {"hash": null, "query_mode": "remote", "updated": null}}, "server_time": "t"}"#,
            r#"{"tables": {"a": {"hash": "x", "server_only": true}, "b": {"server_only": "true"},
                "c": {"parts": [{"path": "m=1/x.parquet", "hash": "h", "size_bytes": 1}]}, "d": {}},
                "data_packages": [{"tables": [{"id": "A2", "name": "a", "server_only": false},
                    {"name": "c", "server_only": true}, "b", {"id": "no name"}, 7, null]}, {"id": "p"}],
                "direct_tables": [], "memory_domains": []}"#,
            r#"{"tables": {"a": {}}, "data_packages": null, "direct_tables": [{"name": "a"}]}"#,
            r#"{"tables": {"a\u0062": {"hash": "\u0041"}}, "data_packages": [{"tables": ["a\u0062"]}]}"#,
            r#"{"tables": {}}"#,
        ] {
            assert!(agrees(body), "gave up on {body}");
        }
    }

    #[test]
    fn counts_the_subscribed_names_the_tables_do_not_list() {
        let body = r#"{"tables": {"b": {}, "d": {}, "f": {}},
            "data_packages": [{"tables": ["a", "b", {"name": "c", "server_only": true}]}],
            "direct_tables": [{"name": "f", "server_only": true}, "g"]}"#;
        let listing = read(body.as_bytes()).unwrap();
        let marks: Vec<_> = listing
            .tables
            .iter()
            .map(|t| (t.subscribed, t.server_only))
            .collect();
        assert_eq!(marks, [(true, false), (false, false), (true, true)]);
        assert_eq!(listing.unlisted, 3, "a, c and g are not in the tables");
        let flat = read(br#"{"tables": {"a": {}}}"#).unwrap();
        assert!(flat.tables[0].subscribed && flat.unlisted == 0);
    }

    #[test]
    fn gives_up_where_the_full_parse_is_lenient() {
        for body in [
            r#"{"tables": {"a": {"rows": "many"}}}"#,
            r#"{"tables": {"a": {"hash": 5}}}"#,
            r#"{"tables": {"a": {"updated": 5}}}"#,
            r#"{"tables": {"a": {"rows": -1}}}"#,
            r#"{"tables": {"a": {"rows": 1e400}}}"#,
            r#"{"tables": {"../a": {}}}"#,
            r#"{"tables": {"a": []}}"#,
            r#"{"tables": {"a": {"hash": "x", "hash": "y"}}}"#,
            r#"{"tables": {"b": {}, "a": {}, "b": {}}}"#,
            r#"{"tables": {"a": {"parts": [{"path": "../x.parquet"}]}}}"#,
            r#"{"tables": {"a": {"parts": [{"path": "X.parquet"}, {"path": "x.parquet"}]}}}"#,
            r#"{"tables": {"a": {"parts": {}}}}"#,
            r#"{"tables": {"a": {}}, "tables": {}}"#,
            r#"{"tables": {"a": {}}, "data_packages": {"tables": []}}"#,
            r#"{"tables": {"a": {}}, "data_packages": ["pkg"]}"#,
            r#"{"detail": "no tables"}"#,
            r#"[]"#,
        ] {
            assert!(read(body.as_bytes()).is_none(), "read {body}");
        }
        let mut body = br#"{"tables": {"a": {"x": ""#.to_vec();
        body.extend([0xff, b'"', b'}', b'}', b'}']);
        assert!(read(&body).is_none());
    }
}
