//! Bearer tokens to users. Tokens are secrets: they never appear in a reply
//! or on stderr (only the admin request log keeps the raw header, for tests).

use axum::http::{header, HeaderMap, StatusCode};

use std::collections::BTreeSet;

use crate::catalog::{Catalog, Grant, Package, UserEntry};
use crate::reply::ApiError;

/// Who is asking, and what they may read (registry ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub grant: Grant,
    /// Reads every table; an unknown id is 404 for them, not 403.
    pub admin: bool,
    /// The data packages in this user's stack (0.84), each with whether it
    /// is materialized for them.
    pub stack: Vec<(Package, bool)>,
}

impl User {
    /// Whether registry id `id` is only in packages not materialized for
    /// this user (0.84's per-caller `server_only`).
    pub fn only_available(&self, id: &str) -> bool {
        let mut holders = self.stack.iter().filter(|(p, _)| p.holds(id));
        let mut any = false;
        let all_unmaterialized = holders.all(|(_, materialized)| {
            any = true;
            !materialized
        });
        any && all_unmaterialized
    }

    /// The user a catalog without a user list makes of any token: reads
    /// everything, with every package in the stack.
    fn dev(catalog: &Catalog) -> User {
        User {
            name: DEV_USER.to_string(),
            grant: Grant::All,
            admin: false,
            stack: catalog
                .data_packages
                .iter()
                .map(|p| (p.clone(), true))
                .collect(),
        }
    }

    /// A listed user: an admin reads everything; anyone else the tables of
    /// their `tables` grant and of the packages in their stack, or every
    /// table when they have neither.
    fn listed(entry: &UserEntry, catalog: &Catalog) -> User {
        let by_slug = |slug: &String| catalog.data_packages.iter().find(|p| &p.slug == slug);
        let materialized: Vec<&Package> = match &entry.packages {
            Some(slugs) => slugs.iter().filter_map(by_slug).collect(),
            None if entry.admin => Vec::new(),
            None => catalog.data_packages.iter().collect(),
        };
        let mut stack: Vec<(Package, bool)> = materialized
            .into_iter()
            .map(|p| (p.clone(), true))
            .collect();
        for p in entry.available.iter().filter_map(by_slug) {
            if !stack.iter().any(|(s, _)| s.slug == p.slug) {
                stack.push((p.clone(), false));
            }
        }
        let from_packages = || -> BTreeSet<String> {
            stack
                .iter()
                .flat_map(|(p, _)| p.tables.iter().cloned())
                .collect()
        };
        let grant = if entry.admin {
            Grant::All
        } else {
            match &entry.tables {
                Some(Grant::All) => Grant::All,
                Some(Grant::Only(ids)) => Grant::Only(ids | &from_packages()),
                None if stack.iter().any(|(p, _)| p.all) => Grant::All,
                None if entry.packages.is_some() || !entry.available.is_empty() => {
                    Grant::Only(from_packages())
                }
                None => Grant::All,
            }
        };
        User {
            name: entry.name.clone(),
            grant,
            admin: entry.admin,
            stack,
        }
    }
}

/// The user a catalog without a user list makes of any token.
pub const DEV_USER: &str = "dev";

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The user behind the request's token, or the real server's 401s: no
/// bearer token, or one it does not know.
pub fn authenticate(headers: &HeaderMap, catalog: &Catalog) -> Result<User, ApiError> {
    let token = bearer_token(headers).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Missing or invalid Authorization header",
        )
    })?;
    match &catalog.users {
        None => Ok(User::dev(catalog)),
        Some(users) => match users.get(token) {
            Some(u) if u.revoked => Err(ApiError::new(StatusCode::UNAUTHORIZED, "Token revoked")),
            Some(u) => Ok(User::listed(u, catalog)),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Invalid or expired token",
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn parses_bearer() {
        assert_eq!(bearer_token(&with_auth("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&with_auth("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(&with_auth("Bearer ")), None);
        assert_eq!(bearer_token(&with_auth("Basic abc")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn users_from_the_catalog() {
        let open = Catalog::default();
        assert_eq!(
            authenticate(&with_auth("Bearer x"), &open).unwrap().name,
            "dev"
        );
        assert_eq!(
            authenticate(&HeaderMap::new(), &open).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        let closed =
            Catalog::parse(r#"{"users":{"t1":{"name":"guest","tables":["orders"]}}}"#).unwrap();
        let user = authenticate(&with_auth("Bearer t1"), &closed).unwrap();
        assert_eq!(user.name, "guest");
        assert!(user.grant.allows("orders") && !user.grant.allows("people"));
        let err = authenticate(&with_auth("Bearer nope"), &closed).unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        assert_eq!(err.detail, "Invalid or expired token");
    }

    #[test]
    fn packages_make_the_stack_and_the_grant() {
        let c = Catalog::parse(
            r#"{"data_packages": [{"slug": "crm", "tables": ["orders", "orders2"]},
                                  {"slug": "fin", "tables": ["ledger", "orders", {"id": "ghost"}]},
                                  {"slug": "ops", "tables": ["events"]}],
                "users": {"a": {"name": "analyst", "packages": ["crm"], "available": ["fin"]},
                          "b": {"name": "boss", "admin": true},
                          "c": {"name": "plain"},
                          "d": {"name": "mixed", "tables": ["customers"], "packages": ["ops"]}}}"#,
        )
        .unwrap();
        let user = |t: &str| authenticate(&with_auth(&format!("Bearer {t}")), &c).unwrap();
        let a = user("a");
        assert!(a.grant.allows("orders2") && a.grant.allows("ledger"));
        assert!(!a.grant.allows("ghost"));
        assert!(!a.grant.allows("events") && !a.grant.allows("Orders2"));
        assert_eq!(
            a.stack
                .iter()
                .map(|(p, m)| (p.slug.as_str(), *m))
                .collect::<Vec<_>>(),
            [("crm", true), ("fin", false)]
        );
        assert!(a.only_available("ledger"));
        assert!(!a.only_available("orders") && !a.only_available("orders2"));
        assert!(!a.only_available("events"));
        let b = user("b");
        assert!(b.admin && b.grant.allows("anything") && b.stack.is_empty());
        let plain = user("c");
        assert!(plain.grant.allows("anything") && plain.stack.len() == 3);
        // Without data_packages: one package of every table.
        let open =
            Catalog::parse(r#"{"users": {"g": {"name": "guest", "tables": ["orders"]}}}"#).unwrap();
        let guest = authenticate(&with_auth("Bearer g"), &open).unwrap();
        assert_eq!(guest.stack.len(), 1);
        assert!(guest.stack[0].0.all && guest.stack[0].0.holds("x"));
        assert!(guest.grant.allows("orders") && !guest.grant.allows("x"));
        let d = user("d");
        assert!(
            d.grant.allows("customers") && d.grant.allows("events") && !d.grant.allows("orders")
        );
        assert!(c.data_packages[0].id.starts_with("pkg_") && c.data_packages[0].id.len() == 16);
    }
}
