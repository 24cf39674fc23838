//! Removing secrets from a transcript before it leaves the machine
//! (CONTRACT.md §7): every JWT-shaped string, and the user's own Agnes
//! token in whatever shape. A session transcript holds whatever the
//! analyst's tools printed, tokens included.

/// What a JWT-shaped string becomes.
pub const JWT_MARK: &[u8] = b"[REDACTED_JWT]";
/// What the user's own token becomes.
pub const TOKEN_MARK: &[u8] = b"[REDACTED_AGNES_TOKEN]";

/// A token shorter than this is not searched for: replacing every "abc"
/// in a transcript would wreck it and protect nothing.
pub const MIN_TOKEN_LEN: usize = 8;

/// Scrubs one piece of a transcript (a line: JWTs never span lines, and a
/// JSONL line is a whole record). Returns how many secrets were removed.
pub fn scrub(text: &[u8], token: Option<&str>, out: &mut Vec<u8>) -> usize {
    let mut removed = 0;
    let token = token
        .map(str::as_bytes)
        .filter(|t| t.len() >= MIN_TOKEN_LEN);
    let mut i = 0;
    while i < text.len() {
        if let Some(t) = token.filter(|t| text[i..].starts_with(t)) {
            out.extend_from_slice(TOKEN_MARK);
            i += t.len();
            removed += 1;
            continue;
        }
        if let Some(len) = jwt_at(text, i) {
            out.extend_from_slice(JWT_MARK);
            i += len;
            removed += 1;
            continue;
        }
        out.push(text[i]);
        i += 1;
    }
    removed
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// The length of a JWT starting at `at`: `eyJ…` (base64url of `{"`), a dot,
/// a payload, a dot and a signature (possibly empty, `alg: none`), not
/// inside a longer word.
fn jwt_at(text: &[u8], at: usize) -> Option<usize> {
    if !text[at..].starts_with(b"eyJ") || (at > 0 && is_b64url(text[at - 1])) {
        return None;
    }
    let segment = |from: usize| text[from..].iter().take_while(|b| is_b64url(**b)).count();
    let header = segment(at);
    let dot1 = at + header;
    if header < 10 || text.get(dot1) != Some(&b'.') {
        return None;
    }
    let payload = segment(dot1 + 1);
    let dot2 = dot1 + 1 + payload;
    if payload < 4 || text.get(dot2) != Some(&b'.') {
        return None;
    }
    let signature = segment(dot2 + 1);
    Some(dot2 + 1 + signature - at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrubbed(text: &str, token: Option<&str>) -> (String, usize) {
        let mut out = Vec::new();
        let n = scrub(text.as_bytes(), token, &mut out);
        (String::from_utf8(out).unwrap(), n)
    }

    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";

    #[test]
    fn jwts_go_wherever_they_are() {
        let line = format!(r#"{{"text":"export AGNES_TOKEN={JWT} ok","b":"Bearer {JWT}"}}"#);
        let (out, n) = scrubbed(&line, None);
        assert_eq!(n, 2);
        assert!(!out.contains("eyJhbGci"), "{out}");
        assert_eq!(
            out,
            r#"{"text":"export AGNES_TOKEN=[REDACTED_JWT] ok","b":"Bearer [REDACTED_JWT]"}"#
        );
        // `alg: none`: no signature, still a token.
        let (out, n) = scrubbed("x eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. y", None);
        assert_eq!((out.as_str(), n), ("x [REDACTED_JWT] y", 1));
    }

    #[test]
    fn look_alikes_stay() {
        for text in [
            "eyJ alone",
            "keyJabcdefghijk.abcd.efg",
            "eyJshort.abcd.efg",
            "eyJhbGciOiJIUzI1NiJ9.ab.cd",
            "version 1.2.3",
        ] {
            assert_eq!(scrubbed(text, None), (text.to_string(), 0), "{text}");
        }
    }

    #[test]
    fn the_users_own_token_goes_in_any_shape_but_short_ones_are_left() {
        let (out, n) = scrubbed(
            "token=demo-token-123, again demo-token-123",
            Some("demo-token-123"),
        );
        assert_eq!(n, 2);
        assert_eq!(
            out,
            "token=[REDACTED_AGNES_TOKEN], again [REDACTED_AGNES_TOKEN]"
        );
        assert_eq!(scrubbed("a b c", Some("b")), ("a b c".to_string(), 0));
    }
}
