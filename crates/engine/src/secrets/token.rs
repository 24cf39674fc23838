//! The personal access token (CONTRACT.md §1, §2): a secret whose `Debug`
//! never shows it, handed out (`expose`) for the `Authorization` header
//! only, and read, not verified, for whose it is (`claims`).

use std::fmt;

/// A personal access token. Its `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(value: impl Into<String>) -> Option<Token> {
        let value = value.into().trim().to_string();
        (!value.is_empty()).then_some(Token(value))
    }

    /// The secret itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Who the token says it belongs to, when it is a JWT (Agnes issues
    /// personal access tokens as JWTs, CONTRACT.md §1). The claims are read,
    /// not verified: only the server can say whether it accepts the token.
    /// `None` for anything that is not a JWT with a JSON object as payload.
    pub fn claims(&self) -> Option<TokenClaims> {
        use base64::Engine as _;
        let mut parts = self.0.split('.');
        let (_header, payload) = (parts.next()?, parts.next()?);
        parts.next()?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        let claims: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&bytes).ok()?;
        let text = |key: &str| {
            claims
                .get(key)
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        Some(TokenClaims {
            subject: text("sub"),
            email: text("email"),
            name: text("name").or_else(|| text("preferred_username")),
            expires: claims.get("exp").and_then(serde_json::Value::as_u64),
        })
    }
}

/// What a JWT token says about itself (`Token::claims`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenClaims {
    pub subject: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    /// Seconds since the epoch.
    pub expires: Option<u64>,
}

impl TokenClaims {
    /// The most telling of email, name and subject.
    pub fn owner(&self) -> Option<&str> {
        self.email
            .as_deref()
            .or(self.name.as_deref())
            .or(self.subject.as_deref())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_claims_say_whose_token_it_is_and_anything_else_says_nothing() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let jwt = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"HS256"}"#),
            b64(r#"{"sub":"u-42","email":"ana@example.com","exp":1800000000}"#)
        );
        let claims = Token::new(jwt).unwrap().claims().unwrap();
        assert_eq!(claims.owner(), Some("ana@example.com"));
        assert_eq!(claims.subject.as_deref(), Some("u-42"));
        assert_eq!(claims.expires, Some(1_800_000_000));
        let only_sub = format!("{}.{}.s", b64("{}"), b64(r#"{"sub":"u-7"}"#));
        assert_eq!(
            Token::new(only_sub).unwrap().claims().unwrap().owner(),
            Some("u-7")
        );
        for not_jwt in ["demo-token", "a.b.c", "a.b", &format!("x.{}.y", b64("[1]"))] {
            assert_eq!(Token::new(not_jwt).unwrap().claims(), None, "{not_jwt}");
        }
    }

    #[test]
    fn token_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", Token::new("s3cret").unwrap()),
            "Token(<redacted>)"
        );
    }
}
