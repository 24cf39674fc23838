//! Every text agnes shows or stores passes through here: the token is
//! replaced, whoever's text carried it (a server that echoes the
//! `Authorization` header in an error page, a manifest, a bundle), and
//! control characters are shown escaped, so that server text cannot drive
//! the analyst's terminal (ESC and OSC sequences, `\r`, BEL).

use crate::secrets::token::Token;

/// What a token is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Shorter tokens are not searched for.
pub const MIN_SECRET_LEN: usize = 8;

/// Knows the token of one call.
#[derive(Clone, Default)]
pub struct Redactor {
    token: Option<String>,
}

impl Redactor {
    pub fn new(token: Option<&Token>) -> Redactor {
        Redactor {
            // A token of a few characters is not a secret one could hide
            // without mangling every word that contains it (tests use "t").
            token: token
                .map(|t| t.expose().to_string())
                .filter(|t| t.len() >= MIN_SECRET_LEN),
        }
    }

    /// `text` without the token and with control characters escaped.
    pub fn text(&self, text: &str) -> String {
        escape_controls(&self.hide(text))
    }

    /// `text` without the token, otherwise as it was (file contents).
    pub fn hide(&self, text: &str) -> String {
        match &self.token {
            Some(token) if text.contains(token.as_str()) => text.replace(token.as_str(), REDACTED),
            _ => text.to_string(),
        }
    }

    /// Raw bytes from the server without the token, before they are parsed
    /// or stored.
    pub fn hide_bytes(&self, bytes: Vec<u8>) -> Vec<u8> {
        let Some(token) = self.token.as_deref().map(str::as_bytes) else {
            return bytes;
        };
        if token.is_empty() || memchr::memmem::find(&bytes, token).is_none() {
            return bytes;
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i..].starts_with(token) {
                out.extend_from_slice(REDACTED.as_bytes());
                i += token.len();
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }

    /// Whether `text` holds the token.
    pub fn holds_token(&self, text: &str) -> bool {
        self.token.as_deref().is_some_and(|t| text.contains(t))
    }

    pub fn option(&self, text: &mut Option<String>) {
        if let Some(t) = text {
            self.apply(t);
        }
    }

    pub fn all(&self, texts: &mut [String]) {
        for t in texts {
            self.apply(t);
        }
    }

    /// `text`, redacted where it stands: copied only when something in it
    /// changes (a report of 50,000 tables holds 150,000 texts).
    pub fn apply(&self, text: &mut String) {
        let hides = self
            .token
            .as_deref()
            .is_some_and(|token| text.contains(token));
        if hides || text.chars().any(char::is_control) {
            *text = self.text(text);
        }
    }
}

/// Control characters (C0, DEL, C1) as visible escapes: `\n`, `\r`, `\t`,
/// else `\x1b`-style (`\u{9b}` for C1). Text without any is returned as is.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_hidden_wherever_it_is() {
        let r = Redactor::new(Token::new("s3cr3t-tok").as_ref());
        assert_eq!(
            r.text("Authorization: Bearer s3cr3t-tok; again s3cr3t-tok"),
            "Authorization: Bearer <redacted>; again <redacted>"
        );
        assert_eq!(
            r.hide_bytes(b"{\"a\":\"s3cr3t-tok\"}".to_vec()),
            b"{\"a\":\"<redacted>\"}"
        );
        assert!(r.holds_token("xs3cr3t-tokx") && !r.holds_token("s3cr"));
        assert_eq!(Redactor::default().text("s3cr3t-tok"), "s3cr3t-tok");
        // Too short to be hidden without mangling every text.
        assert_eq!(Redactor::new(Token::new("t").as_ref()).text("text"), "text");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            escape_controls("a\x1b]52;c;ZXZpbA==\x07b\r\nc\u{9b}2J"),
            "a\\x1b]52;c;ZXZpbA==\\x07b\\r\\nc\\u{9b}2J"
        );
        assert_eq!(escape_controls("plain é"), "plain é");
        // Escaping twice changes nothing more.
        let once = escape_controls("\x1b[2J");
        assert_eq!(escape_controls(&once), once);
    }
}
