//! The `where` text of `/api/v2/scan`: parsed into a small expression tree,
//! checked against the table's columns, and evaluated over Arrow batches.
//!
//! The real server parses the text in the table's SQL flavour with a full
//! SQL parser and refuses what its validator does not allow. This server
//! accepts a subset: comparisons, AND/OR/NOT, IN lists, BETWEEN,
//! IS [NOT] NULL, [NOT] LIKE/ILIKE, over columns and literals (numbers,
//! strings, TRUE/FALSE/NULL, `DATE '...'`, `TIMESTAMP '...'`). Everything
//! else gets the validator's answer with its kind: `parse_error`,
//! `multi_statement`, `nested_select`, `ddl_or_dml`, `unknown_column`,
//! `unknown_function`.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, NullArray, Scalar,
    StringArray,
};
use arrow::compute::kernels::{boolean, cmp, comparison};
use arrow::compute::{cast, is_not_null, is_null};
use arrow::datatypes::{DataType, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;

/// Why a `where` text was refused, as the validator says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub kind: &'static str,
    /// What was wrong, and where.
    pub message: String,
    /// The offending part of the text.
    pub part: String,
}

impl Rejected {
    fn new(kind: &'static str, message: impl Into<String>, part: impl Into<String>) -> Self {
        Rejected {
            kind,
            message: message.into(),
            part: part.into(),
        }
    }
}

/// A literal value of the text.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Date(String),
    Timestamp(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The parsed predicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Column(String),
    Literal(Literal),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(Box<Expr>, Cmp, Box<Expr>),
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        negated: bool,
        case_insensitive: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A bare word (keyword or column), as written.
    Word(String),
    /// A quoted identifier: always a column.
    Quoted(String),
    Number(String),
    Text(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    Semicolon,
}

/// Statement keywords that make a `where` text DDL or DML.
const DDL_DML: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "DROP", "CREATE", "ALTER", "TRUNCATE", "MERGE", "GRANT",
    "REVOKE", "ATTACH", "COPY", "CALL", "PRAGMA", "SET", "INSTALL", "LOAD",
];

/// Words that cannot be column names here.
const RESERVED: &[&str] = &[
    "AND",
    "OR",
    "NOT",
    "IN",
    "BETWEEN",
    "IS",
    "NULL",
    "LIKE",
    "ILIKE",
    "TRUE",
    "FALSE",
    "SELECT",
    "FROM",
    "WHERE",
    "DATE",
    "TIMESTAMP",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "UNION",
    "WITH",
];

/// The first `name(` in `text` outside quotes whose name is not a keyword
/// (`IN (`, `AND (`), as the validator's `unknown_function` refusal.
fn first_call(text: &str) -> Option<Rejected> {
    let chars: Vec<char> = text.chars().collect();
    let mut quote = None;
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => continue,
            None if c == '\'' || c == '"' => quote = Some(c),
            None => {}
        }
        if quote.is_some() {
            word.clear();
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        let rest = chars[i..].iter().find(|c| !c.is_whitespace());
        let keyword = ["IN", "AND", "OR", "NOT", "BETWEEN", "LIKE", "ILIKE", "IS"]
            .iter()
            .any(|k| word.eq_ignore_ascii_case(k));
        if rest == Some(&'(')
            && !word.is_empty()
            && !keyword
            && !word.starts_with(|c: char| c.is_ascii_digit())
        {
            return Some(Rejected::new(
                "unknown_function",
                format!("function {word}() is not allowed"),
                format!("{word}("),
            ));
        }
        word.clear();
    }
    None
}

fn tokenize(text: &str) -> Result<Vec<Token>, Rejected> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '-' && chars.get(i + 1) == Some(&'-') {
            return Err(Rejected::new(
                "parse_error",
                "comments are not allowed",
                tail(&chars, i),
            ));
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                i += 1;
                if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                    i += 1;
                }
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            out.push(Token::Number(chars[start..i].iter().collect()));
            continue;
        }
        if c == '\'' || c == '"' || c == '`' {
            let start = i;
            let mut value = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(Rejected::new(
                            "parse_error",
                            "unterminated quote",
                            tail(&chars, start),
                        ))
                    }
                    Some(&q) if q == c && chars.get(i + 1) == Some(&c) => {
                        value.push(c);
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        value.push(other);
                        i += 1;
                    }
                }
            }
            out.push(match c {
                '\'' => Token::Text(value),
                _ => Token::Quoted(value),
            });
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op = match two.as_str() {
            "<=" => Some("<="),
            ">=" => Some(">="),
            "<>" | "!=" => Some("<>"),
            _ => None,
        };
        if let Some(op) = op {
            out.push(Token::Op(op));
            i += 2;
            continue;
        }
        let token = match c {
            '=' => Token::Op("="),
            '<' => Token::Op("<"),
            '>' => Token::Op(">"),
            '(' => Token::LParen,
            ')' => Token::RParen,
            ',' => Token::Comma,
            ';' => Token::Semicolon,
            '+' | '-' | '*' | '/' | '%' | '|' => {
                return Err(Rejected::new(
                    "parse_error",
                    format!("operator {c:?} is not supported by this server's validator"),
                    tail(&chars, i),
                ))
            }
            other => {
                return Err(Rejected::new(
                    "parse_error",
                    format!("unexpected character {other:?}"),
                    tail(&chars, i),
                ))
            }
        };
        out.push(token);
        i += 1;
    }
    Ok(out)
}

/// The text from `i`, at most 40 characters: the offending part.
fn tail(chars: &[char], i: usize) -> String {
    chars[i..].iter().take(40).collect()
}

fn describe(token: Option<&Token>) -> String {
    match token {
        None => "end of text".into(),
        Some(Token::Word(w)) => w.clone(),
        Some(Token::Quoted(q)) => format!("\"{q}\""),
        Some(Token::Number(n)) => n.clone(),
        Some(Token::Text(t)) => format!("'{t}'"),
        Some(Token::Op(o)) => o.to_string(),
        Some(Token::LParen) => "(".into(),
        Some(Token::RParen) => ")".into(),
        Some(Token::Comma) => ",".into(),
        Some(Token::Semicolon) => ";".into(),
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        let yes = self.keyword(word);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn error(&self, message: impl Into<String>) -> Rejected {
        Rejected::new("parse_error", message, describe(self.peek()))
    }

    fn expect(&mut self, want: Token) -> Result<(), Rejected> {
        if self.peek() == Some(&want) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(format!(
                "expected {} but found {}",
                describe(Some(&want)),
                describe(self.peek())
            )))
        }
    }

    fn or(&mut self) -> Result<Expr, Rejected> {
        let mut left = self.and()?;
        while self.eat_keyword("OR") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, Rejected> {
        let mut left = self.not()?;
        while self.eat_keyword("AND") {
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, Rejected> {
        if self.eat_keyword("NOT") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, Rejected> {
        let left = self.operand()?;
        if let Some(Token::Op(op)) = self.peek().cloned() {
            self.pos += 1;
            let cmp = match op {
                "=" => Cmp::Eq,
                "<>" => Cmp::Ne,
                "<" => Cmp::Lt,
                "<=" => Cmp::Le,
                ">" => Cmp::Gt,
                _ => Cmp::Ge,
            };
            let right = self.operand()?;
            return Ok(Expr::Compare(Box::new(left), cmp, Box::new(right)));
        }
        if self.eat_keyword("IS") {
            let negated = self.eat_keyword("NOT");
            if !self.eat_keyword("NULL") {
                return Err(self.error("only IS NULL and IS NOT NULL are supported"));
            }
            return Ok(Expr::IsNull {
                expr: Box::new(left),
                negated,
            });
        }
        let negated = self.eat_keyword("NOT");
        if self.eat_keyword("IN") {
            self.expect(Token::LParen)?;
            if self.keyword("SELECT") {
                return Err(Rejected::new(
                    "nested_select",
                    "subqueries are not allowed",
                    "SELECT",
                ));
            }
            let mut list = vec![self.operand()?];
            while self.peek() == Some(&Token::Comma) {
                self.pos += 1;
                list.push(self.operand()?);
            }
            self.expect(Token::RParen)?;
            return Ok(Expr::InList {
                expr: Box::new(left),
                list,
                negated,
            });
        }
        if self.eat_keyword("BETWEEN") {
            let low = self.operand()?;
            if !self.eat_keyword("AND") {
                return Err(self.error("BETWEEN needs AND"));
            }
            let high = self.operand()?;
            return Ok(Expr::Between {
                expr: Box::new(left),
                low: Box::new(low),
                high: Box::new(high),
                negated,
            });
        }
        let case_insensitive = self.keyword("ILIKE");
        if self.eat_keyword("LIKE") || self.eat_keyword("ILIKE") {
            let pattern = self.operand()?;
            return Ok(Expr::Like {
                expr: Box::new(left),
                pattern: Box::new(pattern),
                negated,
                case_insensitive,
            });
        }
        if negated {
            return Err(self.error("NOT must be followed by IN, BETWEEN or LIKE here"));
        }
        Ok(left)
    }

    fn operand(&mut self) -> Result<Expr, Rejected> {
        let token = self.peek().cloned();
        self.pos += 1;
        match token {
            Some(Token::LParen) => {
                if self.keyword("SELECT") {
                    return Err(Rejected::new(
                        "nested_select",
                        "subqueries are not allowed",
                        "SELECT",
                    ));
                }
                let inner = self.or()?;
                self.expect(Token::RParen)?;
                Ok(inner)
            }
            Some(Token::Number(n)) => Ok(Expr::Literal(number(&n).ok_or_else(|| {
                Rejected::new("parse_error", format!("bad number {n}"), n.clone())
            })?)),
            Some(Token::Text(t)) => Ok(Expr::Literal(Literal::Text(t))),
            Some(Token::Quoted(q)) => Ok(Expr::Column(q)),
            Some(Token::Word(w)) => {
                let upper = w.to_ascii_uppercase();
                if self.peek() == Some(&Token::LParen) {
                    return Err(Rejected::new(
                        "unknown_function",
                        format!("function {w}() is not allowed here"),
                        format!("{w}("),
                    ));
                }
                match upper.as_str() {
                    "NULL" => Ok(Expr::Literal(Literal::Null)),
                    "TRUE" => Ok(Expr::Literal(Literal::Bool(true))),
                    "FALSE" => Ok(Expr::Literal(Literal::Bool(false))),
                    "DATE" | "TIMESTAMP" | "DATETIME" => match self.peek().cloned() {
                        Some(Token::Text(t)) => {
                            self.pos += 1;
                            Ok(Expr::Literal(match upper.as_str() {
                                "DATE" => Literal::Date(t),
                                _ => Literal::Timestamp(t),
                            }))
                        }
                        _ => Err(self.error(format!("{upper} must be followed by a quoted value"))),
                    },
                    "SELECT" => Err(Rejected::new(
                        "nested_select",
                        "subqueries are not allowed",
                        w,
                    )),
                    _ if RESERVED.contains(&upper.as_str()) => {
                        Err(Rejected::new("parse_error", format!("unexpected {w}"), w))
                    }
                    _ => Ok(Expr::Column(w)),
                }
            }
            other => {
                self.pos -= 1;
                Err(self.error(format!("unexpected {}", describe(other.as_ref()))))
            }
        }
    }
}

fn number(text: &str) -> Option<Literal> {
    if let Ok(n) = text.parse::<i64>() {
        return Some(Literal::Int(n));
    }
    text.parse::<f64>().ok().map(Literal::Float)
}

/// Parses a `where` text; the error is the validator's answer.
pub fn parse(text: &str) -> Result<Expr, Rejected> {
    // The real validator parses the whole text first: a function call is
    // its refusal even where this server's tokens end earlier (`count(*)`).
    let tokens = tokenize(text).map_err(|err| first_call(text).unwrap_or(err))?;
    // What the text is before whether it parses: a second statement, a
    // statement of another kind, a subquery.
    if let Some(i) = tokens.iter().position(|t| *t == Token::Semicolon) {
        if i + 1 < tokens.len() {
            return Err(Rejected::new(
                "multi_statement",
                "only one expression is allowed",
                describe(tokens.get(i + 1)),
            ));
        }
    }
    if let Some(Token::Word(w)) = tokens.first() {
        if DDL_DML.contains(&w.to_ascii_uppercase().as_str()) {
            return Err(Rejected::new(
                "ddl_or_dml",
                "statements are not allowed",
                w.clone(),
            ));
        }
    }
    if tokens
        .iter()
        .any(|t| matches!(t, Token::Word(w) if w.eq_ignore_ascii_case("SELECT")))
    {
        return Err(Rejected::new(
            "nested_select",
            "subqueries are not allowed",
            "SELECT",
        ));
    }
    let tokens: Vec<Token> = tokens
        .into_iter()
        .filter(|t| *t != Token::Semicolon)
        .collect();
    if tokens.is_empty() {
        return Err(Rejected::new("parse_error", "the expression is empty", ""));
    }
    let mut parser = Parser { tokens, pos: 0 };
    let expr = parser.or()?;
    if parser.pos < parser.tokens.len() {
        return Err(parser.error(format!(
            "unexpected {} after the expression",
            describe(parser.peek())
        )));
    }
    Ok(expr)
}

impl Expr {
    /// The columns the expression reads, in order of appearance.
    pub fn columns(&self, out: &mut Vec<String>) {
        match self {
            Expr::Column(c) => {
                if !out.contains(c) {
                    out.push(c.clone())
                }
            }
            Expr::Literal(_) => {}
            Expr::Not(e) | Expr::IsNull { expr: e, .. } => e.columns(out),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Compare(a, _, b) => {
                a.columns(out);
                b.columns(out);
            }
            Expr::InList { expr, list, .. } => {
                expr.columns(out);
                list.iter().for_each(|e| e.columns(out));
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                expr.columns(out);
                low.columns(out);
                high.columns(out);
            }
            Expr::Like { expr, pattern, .. } => {
                expr.columns(out);
                pattern.columns(out);
            }
        }
    }

    /// Checks that every column exists (case-insensitively, as SQL does)
    /// and rewrites each to its name in `schema`.
    pub fn resolve(&mut self, schema: &Schema) -> Result<(), Rejected> {
        let mut missing = None;
        self.visit_columns(&mut |name: &mut String| match schema
            .fields()
            .iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
        {
            Some(f) => *name = f.name().clone(),
            None => {
                missing.get_or_insert(name.clone());
            }
        });
        match missing {
            Some(name) => Err(Rejected::new(
                "unknown_column",
                format!("column {name} does not exist"),
                name,
            )),
            None => Ok(()),
        }
    }

    fn visit_columns(&mut self, f: &mut dyn FnMut(&mut String)) {
        match self {
            Expr::Column(c) => f(c),
            Expr::Literal(_) => {}
            Expr::Not(e) | Expr::IsNull { expr: e, .. } => e.visit_columns(f),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Compare(a, _, b) => {
                a.visit_columns(f);
                b.visit_columns(f);
            }
            Expr::InList { expr, list, .. } => {
                expr.visit_columns(f);
                list.iter_mut().for_each(|e| e.visit_columns(f));
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                expr.visit_columns(f);
                low.visit_columns(f);
                high.visit_columns(f);
            }
            Expr::Like { expr, pattern, .. } => {
                expr.visit_columns(f);
                pattern.visit_columns(f);
            }
        }
    }

    /// Which rows of `batch` the predicate keeps (NULL: not kept).
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<BooleanArray, String> {
        match self.value(batch)? {
            Value::Array(a) => as_boolean(&a),
            Value::Literal(l) => {
                let one = literal_array(&l, Some(&DataType::Boolean))?;
                let one = as_boolean(&one)?;
                let keep = one.is_valid(0) && one.value(0);
                Ok(BooleanArray::from(vec![keep; batch.num_rows()]))
            }
        }
    }

    fn value(&self, batch: &RecordBatch) -> Result<Value, String> {
        Ok(match self {
            Expr::Column(name) => Value::Array(
                batch
                    .column_by_name(name)
                    .cloned()
                    .ok_or_else(|| format!("column {name} was not read"))?,
            ),
            Expr::Literal(l) => Value::Literal(l.clone()),
            _ => Value::Array(Arc::new(self.boolean(batch)?)),
        })
    }

    fn boolean(&self, batch: &RecordBatch) -> Result<BooleanArray, String> {
        let err = |e: arrow::error::ArrowError| e.to_string();
        match self {
            Expr::Column(_) | Expr::Literal(_) => self.evaluate(batch),
            Expr::Not(e) => boolean::not(&e.evaluate(batch)?).map_err(err),
            Expr::And(a, b) => {
                boolean::and_kleene(&a.evaluate(batch)?, &b.evaluate(batch)?).map_err(err)
            }
            Expr::Or(a, b) => {
                boolean::or_kleene(&a.evaluate(batch)?, &b.evaluate(batch)?).map_err(err)
            }
            Expr::Compare(a, op, b) => compare(&a.value(batch)?, *op, &b.value(batch)?),
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let left = expr.value(batch)?;
                let mut acc: Option<BooleanArray> = None;
                for item in list {
                    let hit = compare(&left, Cmp::Eq, &item.value(batch)?)?;
                    acc = Some(match acc {
                        None => hit,
                        Some(prev) => boolean::or_kleene(&prev, &hit).map_err(err)?,
                    });
                }
                let acc = acc.ok_or("an empty IN list")?;
                match negated {
                    true => boolean::not(&acc).map_err(err),
                    false => Ok(acc),
                }
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let v = expr.value(batch)?;
                let inside = boolean::and_kleene(
                    &compare(&v, Cmp::Ge, &low.value(batch)?)?,
                    &compare(&v, Cmp::Le, &high.value(batch)?)?,
                )
                .map_err(err)?;
                match negated {
                    true => boolean::not(&inside).map_err(err),
                    false => Ok(inside),
                }
            }
            Expr::IsNull { expr, negated } => {
                let v = match expr.value(batch)? {
                    Value::Array(a) => a,
                    Value::Literal(l) => {
                        let one = literal_array(&l, None)?;
                        let null = one.is_null(0) != *negated;
                        return Ok(BooleanArray::from(vec![null; batch.num_rows()]));
                    }
                };
                match negated {
                    true => is_not_null(&v).map_err(err),
                    false => is_null(&v).map_err(err),
                }
            }
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => {
                let (l, r) = pair(&expr.value(batch)?, &pattern.value(batch)?, true)?;
                let f = match (negated, case_insensitive) {
                    (false, false) => comparison::like,
                    (false, true) => comparison::ilike,
                    (true, false) => comparison::nlike,
                    (true, true) => comparison::nilike,
                };
                f(&*l, &*r).map_err(err)
            }
        }
    }
}

/// A side of a comparison: a column (or sub-result) or a literal.
enum Value {
    Array(ArrayRef),
    Literal(Literal),
}

/// One side as an Arrow `Datum`: a whole array, or a one-row scalar.
trait DatumRef: arrow::array::Datum {}
impl DatumRef for ArrayRef {}
impl DatumRef for Scalar<ArrayRef> {}
type Sided = Box<dyn DatumRef>;

/// Both sides with one type: a literal takes the other side's type, a
/// column of another type is cast to the first's; for LIKE both are text.
fn pair(a: &Value, b: &Value, text: bool) -> Result<(Sided, Sided), String> {
    let want = |v: &Value| match v {
        Value::Array(a) => Some(a.data_type().clone()),
        Value::Literal(_) => None,
    };
    let target = match text {
        true => Some(DataType::Utf8),
        false => want(a).or_else(|| want(b)),
    };
    let side = |v: &Value| -> Result<Sided, String> {
        Ok(match v {
            Value::Array(arr) => match &target {
                Some(t) if arr.data_type() != t => {
                    Box::new(cast(arr, t).map_err(|e| e.to_string())?)
                }
                _ => Box::new(arr.clone()),
            },
            Value::Literal(l) => Box::new(Scalar::new(literal_array(l, target.as_ref())?)),
        })
    };
    Ok((side(a)?, side(b)?))
}

fn compare(a: &Value, op: Cmp, b: &Value) -> Result<BooleanArray, String> {
    let (l, r) = pair(a, b, false)?;
    let f = match op {
        Cmp::Eq => cmp::eq,
        Cmp::Ne => cmp::neq,
        Cmp::Lt => cmp::lt,
        Cmp::Le => cmp::lt_eq,
        Cmp::Gt => cmp::gt,
        Cmp::Ge => cmp::gt_eq,
    };
    f(&*l, &*r).map_err(|e| e.to_string())
}

/// A one-row array holding `literal`, cast to `target` when given.
fn literal_array(literal: &Literal, target: Option<&DataType>) -> Result<ArrayRef, String> {
    let raw: ArrayRef = match literal {
        Literal::Null => Arc::new(NullArray::new(1)),
        Literal::Bool(b) => Arc::new(BooleanArray::from(vec![*b])),
        Literal::Int(n) => Arc::new(Int64Array::from(vec![*n])),
        Literal::Float(f) => Arc::new(Float64Array::from(vec![*f])),
        Literal::Text(t) | Literal::Timestamp(t) => Arc::new(StringArray::from(vec![t.as_str()])),
        Literal::Date(t) => {
            let text: ArrayRef = Arc::new(StringArray::from(vec![t.as_str()]));
            let date = cast(&text, &DataType::Date32).map_err(|e| e.to_string())?;
            let date = date
                .as_any()
                .downcast_ref::<Date32Array>()
                .filter(|d| d.is_valid(0))
                .ok_or_else(|| format!("DATE '{t}' is not a date"))?;
            Arc::new(date.clone())
        }
    };
    let target = match (literal, target) {
        (_, Some(t)) => t.clone(),
        (Literal::Timestamp(_), None) => DataType::Timestamp(TimeUnit::Microsecond, None),
        (_, None) => return Ok(raw),
    };
    if raw.data_type() == &target {
        return Ok(raw);
    }
    let cast_to = cast(&raw, &target).map_err(|e| {
        format!(
            "{} cannot be compared with a {target} column: {e}",
            literal_text(literal)
        )
    })?;
    if cast_to.is_null(0) && *literal != Literal::Null {
        return Err(format!(
            "{} is not a valid {target} value",
            literal_text(literal)
        ));
    }
    Ok(cast_to)
}

fn literal_text(l: &Literal) -> String {
    match l {
        Literal::Null => "NULL".into(),
        Literal::Bool(b) => b.to_string().to_uppercase(),
        Literal::Int(n) => n.to_string(),
        Literal::Float(f) => f.to_string(),
        Literal::Text(t) => format!("'{t}'"),
        Literal::Date(t) => format!("DATE '{t}'"),
        Literal::Timestamp(t) => format!("TIMESTAMP '{t}'"),
    }
}

fn as_boolean(a: &ArrayRef) -> Result<BooleanArray, String> {
    match a.data_type() {
        DataType::Boolean => Ok(a
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or("not a boolean array")?
            .clone()),
        DataType::Null => Ok(BooleanArray::from(vec![None; a.len()])),
        other => Err(format!("a {other} value is not a condition")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Decimal128Array;
    use arrow::datatypes::Field;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("amount", DataType::Decimal128(12, 2), true),
            Field::new("day", DataType::Date32, true),
            Field::new("status", DataType::Utf8, true),
        ]);
        let days = cast(
            &(Arc::new(StringArray::from(vec![
                "2026-01-01",
                "2026-02-01",
                "2026-03-01",
                "2026-04-01",
            ])) as ArrayRef),
            &DataType::Date32,
        )
        .unwrap();
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
                Arc::new(
                    Decimal128Array::from(vec![Some(1050), Some(9999), None, Some(12000)])
                        .with_precision_and_scale(12, 2)
                        .unwrap(),
                ),
                days,
                Arc::new(StringArray::from(vec![
                    Some("paid"),
                    Some("new"),
                    Some("Paid"),
                    None,
                ])),
            ],
        )
        .unwrap()
    }

    /// The ids of the rows `text` keeps.
    fn keep(text: &str) -> Vec<i64> {
        let b = batch();
        let mut e = parse(text).unwrap();
        e.resolve(&b.schema()).unwrap();
        let mask = e.evaluate(&b).unwrap();
        let ids = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        (0..b.num_rows())
            .filter(|&i| mask.is_valid(i) && mask.value(i))
            .map(|i| ids.value(i))
            .collect()
    }

    #[test]
    fn evaluates_the_subset() {
        assert_eq!(keep("id > 2"), [3, 4]);
        assert_eq!(keep("amount >= 99.99"), [2, 4]);
        assert_eq!(keep("amount > 11 AND day < DATE '2026-04-01'"), [2]);
        assert_eq!(keep("NOT (id = 1 OR id = 4)"), [2, 3]);
        assert_eq!(keep("id IN (1, 3, 9)"), [1, 3]);
        assert_eq!(keep("id NOT IN (1, 3)"), [2, 4]);
        assert_eq!(keep("id BETWEEN 2 AND 3"), [2, 3]);
        assert_eq!(keep("id NOT BETWEEN 2 AND 3"), [1, 4]);
        assert_eq!(keep("amount IS NULL"), [3]);
        assert_eq!(keep("status IS NOT NULL AND amount IS NOT NULL"), [1, 2]);
        assert_eq!(keep("status LIKE 'p%'"), [1]);
        assert_eq!(keep("status ILIKE 'p%'"), [1, 3]);
        assert_eq!(keep("status NOT LIKE 'p%'"), [2, 3]);
        assert_eq!(keep("\"STATUS\" = 'new'"), [2]);
        assert_eq!(keep("day = '2026-03-01'"), [3]);
        assert_eq!(keep("TRUE"), [1, 2, 3, 4]);
        assert_eq!(keep("status = NULL"), Vec::<i64>::new());
        assert_eq!(keep("id = 1;"), [1]);
    }

    fn rejected(text: &str) -> Rejected {
        let b = batch();
        match parse(text) {
            Err(r) => r,
            Ok(mut e) => e.resolve(&b.schema()).unwrap_err(),
        }
    }

    #[test]
    fn refusals_name_the_kind_and_the_part() {
        let r = rejected("id = 1; DROP TABLE x");
        assert_eq!((r.kind, r.part.as_str()), ("multi_statement", "DROP"));
        assert_eq!(rejected("DELETE FROM orders").kind, "ddl_or_dml");
        assert_eq!(
            rejected("id IN (SELECT id FROM other)").kind,
            "nested_select"
        );
        let r = rejected("nope > 1");
        assert_eq!((r.kind, r.part.as_str()), ("unknown_column", "nope"));
        let r = rejected("lower(status) = 'x'");
        assert_eq!((r.kind, r.part.as_str()), ("unknown_function", "lower("));
        assert_eq!(rejected("id >").kind, "parse_error");
        assert_eq!(rejected("id = 'x").kind, "parse_error");
        assert_eq!(rejected("(id = 1").kind, "parse_error");
        assert_eq!(rejected("id = 1 2").kind, "parse_error");
        assert_eq!(rejected("").kind, "parse_error");
        assert_eq!(rejected("id + 1 > 2").kind, "parse_error");
        let r = rejected("count(*) > 1");
        assert_eq!((r.kind, r.part.as_str()), ("unknown_function", "count("));
        assert_eq!(rejected("id IN (1) AND x * 2 > 1").kind, "parse_error");
        assert_eq!(rejected("id = 1 -- x").kind, "parse_error");
    }

    #[test]
    fn columns_are_listed_once() {
        let e = parse("a = 1 AND (b > a OR c IS NULL)").unwrap();
        let mut cols = Vec::new();
        e.columns(&mut cols);
        assert_eq!(cols, ["a", "b", "c"]);
    }

    #[test]
    fn a_bad_literal_is_an_error_not_a_panic() {
        let b = batch();
        let mut e = parse("day = DATE 'yesterday'").unwrap();
        e.resolve(&b.schema()).unwrap();
        assert!(e.evaluate(&b).is_err());
        let mut e = parse("id = 'abc'").unwrap();
        e.resolve(&b.schema()).unwrap();
        assert!(e.evaluate(&b).is_err());
    }
}
