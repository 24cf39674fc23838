//! Recognising the views older clients made (issue 24), from the definition
//! DuckDB gives back in `duckdb_views().sql`.
//!
//! The Python `da sync` ran `CREATE VIEW "<name>" AS SELECT * FROM
//! read_parquet('<file>')`; upstream's `agnes pull` runs the same for a
//! file, and `... read_parquet('<folder>/**/*.parquet', union_by_name=true,
//! hive_partitioning=true)` for a partitioned table. DuckDB keeps the parsed
//! statement and prints it again in its own way, which differs by version:
//! 2.0 prints `(union_by_name = true)`, 1.4 and 1.5 `(union_by_name =
//! CAST('t' AS BOOLEAN))`. The text comes from a database file, so it is
//! never run: it is read token by token against exactly these forms, and
//! anything else (a `WHERE`, a column list, another function, another
//! option) is not an older client's view.

use agnes_engine::{OlderRead, OlderView};

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// An unquoted word: a keyword or a plain identifier.
    Word(String),
    /// A `"quoted"` identifier, unescaped.
    Quoted(String),
    /// A `'string'`, unescaped.
    Text(String),
    Punct(char),
}

/// The view an older client made, if `sql` is exactly one of its forms.
pub fn parse(sql: &str) -> Option<OlderView> {
    let tokens = tokens(sql)?;
    let mut t = Cursor(&tokens, 0);
    t.word("create")?;
    t.word("view")?;
    let name = t.name()?;
    t.word("as")?;
    t.word("select")?;
    t.punct('*')?;
    t.word("from")?;
    t.word("read_parquet")?;
    t.punct('(')?;
    let path = t.text()?;
    let reads = match t.peek_punct(',') {
        false => OlderRead::File(path),
        true => {
            t.punct(',')?;
            t.option("union_by_name")?;
            t.punct(',')?;
            t.option("hive_partitioning")?;
            OlderRead::PartsGlob(path)
        }
    };
    t.punct(')')?;
    if t.peek_punct(';') {
        t.punct(';')?;
    }
    t.end()?;
    Some(OlderView { name, reads })
}

struct Cursor<'a>(&'a [Token], usize);

impl Cursor<'_> {
    fn next(&mut self) -> Option<&Token> {
        let token = self.0.get(self.1)?;
        self.1 += 1;
        Some(token)
    }

    fn word(&mut self, word: &str) -> Option<()> {
        match self.next()? {
            Token::Word(w) if w.eq_ignore_ascii_case(word) => Some(()),
            _ => None,
        }
    }

    fn punct(&mut self, c: char) -> Option<()> {
        (self.next()? == &Token::Punct(c)).then_some(())
    }

    fn peek_punct(&self, c: char) -> bool {
        self.0.get(self.1) == Some(&Token::Punct(c))
    }

    fn text(&mut self) -> Option<String> {
        match self.next()? {
            Token::Text(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// A view name: quoted, or a plain word DuckDB prints unquoted.
    fn name(&mut self) -> Option<String> {
        match self.next()? {
            Token::Quoted(s) | Token::Word(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// `name = true`, as DuckDB prints it: maybe in parentheses, the value
    /// `true` or `CAST('t' AS BOOLEAN)`.
    fn option(&mut self, name: &str) -> Option<()> {
        let paren = self.peek_punct('(');
        if paren {
            self.punct('(')?;
        }
        self.word(name)?;
        self.punct('=')?;
        match self.next()? {
            Token::Word(w) if w.eq_ignore_ascii_case("true") => {}
            Token::Word(w) if w.eq_ignore_ascii_case("cast") => {
                self.punct('(')?;
                match self.next()? {
                    Token::Text(v) if v == "t" || v.eq_ignore_ascii_case("true") => {}
                    _ => return None,
                }
                self.word("as")?;
                self.word("boolean")?;
                self.punct(')')?;
            }
            _ => return None,
        }
        if paren {
            self.punct(')')?;
        }
        Some(())
    }

    fn end(&self) -> Option<()> {
        (self.1 == self.0.len()).then_some(())
    }
}

/// Splits `sql` into tokens; `None` for anything outside the few kinds the
/// older clients' views are made of.
fn tokens(sql: &str) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '\'' | '"' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next()? {
                        q if q == c && chars.peek() == Some(&c) => {
                            chars.next();
                            text.push(c);
                        }
                        q if q == c => break,
                        other => text.push(other),
                    }
                }
                out.push(match c {
                    '\'' => Token::Text(text),
                    _ => Token::Quoted(text),
                });
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if !(c.is_ascii_alphanumeric() || c == '_') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
            '(' | ')' | ',' | '=' | '*' | ';' => {
                chars.next();
                out.push(Token::Punct(c));
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, path: &str) -> Option<OlderView> {
        Some(OlderView {
            name: name.into(),
            reads: OlderRead::File(path.into()),
        })
    }

    #[test]
    fn the_old_clients_views_as_duckdb_prints_them() {
        // As DuckDB 1.5.6 printed the views the old da (duckdb 1.5.1) made.
        assert_eq!(
            parse("CREATE VIEW products AS SELECT * FROM read_parquet('/ws/server/parquet/products.parquet');"),
            file("products", "/ws/server/parquet/products.parquet")
        );
        assert_eq!(
            parse(
                r#"CREATE VIEW "in.c-crm.people" AS SELECT * FROM read_parquet('/w''s/p.parquet');"#
            ),
            file("in.c-crm.people", "/w's/p.parquet")
        );
        let glob = OlderRead::PartsGlob("/ws/server/parquet/events/**/*.parquet".into());
        for printed in [
            // 1.4.4 and 1.5.6
            "CREATE VIEW events AS SELECT * FROM read_parquet('/ws/server/parquet/events/**/*.parquet', \
             (union_by_name = CAST('t' AS BOOLEAN)), (hive_partitioning = CAST('t' AS BOOLEAN)));",
            // 2.0.0
            "CREATE VIEW events AS SELECT * FROM read_parquet('/ws/server/parquet/events/**/*.parquet', \
             (union_by_name = true), (hive_partitioning = true));",
            // as upstream writes it
            "CREATE VIEW \"events\" AS SELECT * FROM read_parquet('/ws/server/parquet/events/**/*.parquet', \
             union_by_name=true, hive_partitioning=true)",
        ] {
            assert_eq!(
                parse(printed),
                Some(OlderView {
                    name: "events".into(),
                    reads: glob.clone()
                }),
                "{printed}"
            );
        }
    }

    #[test]
    fn anything_else_is_the_users() {
        for sql in [
            "CREATE VIEW w AS SELECT * FROM read_parquet('/p.parquet') WHERE (a = 1);",
            "CREATE VIEW ab AS SELECT a, * FROM read_parquet('/p.parquet');",
            "CREATE VIEW v (a) AS SELECT * FROM read_parquet('/p.parquet');",
            "CREATE VIEW v AS SELECT * FROM read_csv('/p.parquet');",
            "CREATE VIEW v AS SELECT * FROM read_parquet(['/a.parquet', '/b.parquet']);",
            "CREATE VIEW v AS SELECT * FROM read_parquet('/p/**/*.parquet', (hive_partitioning = true));",
            "CREATE VIEW v AS SELECT * FROM read_parquet('/p/**/*.parquet', (union_by_name = false), (hive_partitioning = true));",
            "CREATE VIEW v AS SELECT * FROM read_parquet('/p/**/*.parquet', (hive_partitioning = true), (union_by_name = true));",
            "CREATE VIEW v AS SELECT * FROM read_parquet('/p.parquet'); DROP TABLE x;",
            "CREATE VIEW v AS SELECT * FROM read_parquet('/p.parquet') -- comment",
            "CREATE VIEW v AS SELECT * FROM read_parquet('/p.parquet'",
            "CREATE VIEW v AS SELECT * FROM read_parquet('unterminated)",
            "CREATE TABLE v AS SELECT * FROM read_parquet('/p.parquet');",
            "",
        ] {
            assert_eq!(parse(sql), None, "{sql}");
        }
    }
}
