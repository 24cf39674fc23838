//! Bearer tokens to users. Tokens are secrets: they never appear in a reply
//! or on stderr (only the admin request log keeps the raw header, for tests).

use axum::http::{header, HeaderMap, StatusCode};

use crate::catalog::{Catalog, Grant};
use crate::reply::ApiError;

/// Who is asking, and what they may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub grant: Grant,
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

/// The user behind the request's token, or the contract's 401.
pub fn authenticate(headers: &HeaderMap, catalog: &Catalog) -> Result<User, ApiError> {
    let unauthorized = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Missing or invalid Authorization header",
        )
    };
    let token = bearer_token(headers).ok_or_else(unauthorized)?;
    match &catalog.users {
        None => Ok(User {
            name: DEV_USER.to_string(),
            grant: Grant::All,
        }),
        Some(users) => users
            .get(token)
            .map(|u| User {
                name: u.name.clone(),
                grant: u.grant.clone(),
            })
            .ok_or_else(unauthorized),
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
        assert_eq!(err.detail, "Missing or invalid Authorization header");
    }
}
