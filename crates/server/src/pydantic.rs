//! The words of the real server's request validation (FastAPI + pydantic
//! 2.12), so that `/api/v2` refuses a bad body as it does: a `400` whose
//! `detail` is pydantic's text for the scan model, and FastAPI's `422` list
//! for a body that is not JSON at all (CONTRACT.md §8; recorded in
//! test/fixtures/real-*/v2.scan.*.json).

use serde_json::{json, Map, Value};

/// One failed field of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub loc: String,
    pub kind: &'static str,
    pub msg: &'static str,
    pub input: Value,
}

/// Checks a scan body against upstream's `ScanRequest` (`table_id: str`,
/// `select: list[str] | None`, `where: str | None`, `limit: int | None`
/// (`ge=1`), `order_by: list[str] | None`), in the model's field order.
pub fn check_scan_request(body: &Map<String, Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut push = |loc: String, kind, msg, input: &Value| {
        errors.push(FieldError {
            loc,
            kind,
            msg,
            input: input.clone(),
        })
    };
    match body.get("table_id") {
        None => push(
            "table_id".into(),
            "missing",
            "Field required",
            &Value::Object(body.clone()),
        ),
        Some(Value::String(_)) => {}
        Some(other) => push(
            "table_id".into(),
            "string_type",
            "Input should be a valid string",
            other,
        ),
    }
    for (key, optional_list) in [
        ("select", true),
        ("where", false),
        ("limit", false),
        ("order_by", true),
    ] {
        let value = match body.get(key) {
            None | Some(Value::Null) => continue,
            Some(v) => v,
        };
        if key == "limit" {
            match value {
                Value::Number(n) if n.is_i64() || n.is_u64() => {
                    if n.as_i64().is_some_and(|n| n < 1) {
                        push(
                            key.into(),
                            "greater_than_equal",
                            "Input should be greater than or equal to 1",
                            value,
                        );
                    }
                }
                Value::Number(_) => push(
                    key.into(),
                    "int_from_float",
                    "Input should be a valid integer, got a number with a fractional part",
                    value,
                ),
                Value::String(s) if s.trim().parse::<i64>().is_err() => push(
                    key.into(),
                    "int_parsing",
                    "Input should be a valid integer, unable to parse string as an integer",
                    value,
                ),
                Value::String(_) => {}
                _ => push(
                    key.into(),
                    "int_type",
                    "Input should be a valid integer",
                    value,
                ),
            }
        } else if optional_list {
            match value {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if !item.is_string() {
                            push(
                                format!("{key}.{i}"),
                                "string_type",
                                "Input should be a valid string",
                                item,
                            );
                        }
                    }
                }
                _ => push(
                    key.into(),
                    "list_type",
                    "Input should be a valid list",
                    value,
                ),
            }
        } else if !value.is_string() {
            push(
                key.into(),
                "string_type",
                "Input should be a valid string",
                value,
            );
        }
    }
    errors
}

/// pydantic's `str(ValidationError)` for model `model`.
pub fn message(model: &str, errors: &[FieldError]) -> String {
    let count = match errors.len() {
        1 => "1 validation error".to_string(),
        n => format!("{n} validation errors"),
    };
    let mut out = format!("{count} for {model}");
    for e in errors {
        out.push_str(&format!(
            "\n{}\n  {} [type={}, input_value={}, input_type={}]\n    For further information visit https://errors.pydantic.dev/2.12/v/{}",
            e.loc,
            e.msg,
            e.kind,
            py_repr(&e.input),
            py_type(&e.input),
            e.kind
        ));
    }
    out
}

/// FastAPI's `422` detail for a body that is not JSON: the character
/// position of the error (0.29 adds the parser's message and the input).
pub fn json_invalid(position: usize, parser_error: &str, current: bool) -> Value {
    // Python's json module's words for the common failures.
    let parser_error = if parser_error.starts_with("key must be a string") {
        "Expecting property name enclosed in double quotes"
    } else if parser_error.starts_with("trailing") {
        "Extra data"
    } else {
        "Expecting value"
    };
    match current {
        true => {
            json!([{"loc": ["body", position], "msg": "JSON decode error", "type": "json_invalid"}])
        }
        false => {
            json!([{"type": "json_invalid", "loc": ["body", position], "msg": "JSON decode error",
                         "input": {}, "ctx": {"error": parser_error}}])
        }
    }
}

/// FastAPI's `422` detail for a required field missing from a form or a
/// JSON body (`loc` `["body", field]`).
pub fn field_required(field: &str, input: Value, current: bool) -> Value {
    match current {
        true => json!([{"loc": ["body", field], "msg": "Field required", "type": "missing"}]),
        false => {
            json!([{"type": "missing", "loc": ["body", field], "msg": "Field required", "input": input}])
        }
    }
}

/// Python's `repr()` of a JSON value as `json.loads` gives it.
pub fn py_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e16 => format!("{f:.1}"),
            _ => n.to_string(),
        },
        Value::String(s) => py_str(s),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(py_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", py_str(k), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Python's `repr()` of a `str`: single quotes unless the text has one and
/// no double quote.
pub fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn py_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: Value) -> String {
        message(
            "ScanRequest",
            &check_scan_request(body.as_object().unwrap()),
        )
    }

    #[test]
    fn the_recorded_texts() {
        // test/fixtures/real-0.84/v2.scan.*.json
        assert_eq!(
            check(json!({"select": ["a"]})),
            "1 validation error for ScanRequest\ntable_id\n  Field required [type=missing, input_value={'select': ['a']}, input_type=dict]\n    For further information visit https://errors.pydantic.dev/2.12/v/missing"
        );
        assert_eq!(
            check(json!({"table_id": "orders", "limit": 0})),
            "1 validation error for ScanRequest\nlimit\n  Input should be greater than or equal to 1 [type=greater_than_equal, input_value=0, input_type=int]\n    For further information visit https://errors.pydantic.dev/2.12/v/greater_than_equal"
        );
        assert_eq!(
            check(json!({"table_id": "orders", "limit": "x"})),
            "1 validation error for ScanRequest\nlimit\n  Input should be a valid integer, unable to parse string as an integer [type=int_parsing, input_value='x', input_type=str]\n    For further information visit https://errors.pydantic.dev/2.12/v/int_parsing"
        );
        assert_eq!(
            check(json!({"table_id": "orders", "select": "order_id"})),
            "1 validation error for ScanRequest\nselect\n  Input should be a valid list [type=list_type, input_value='order_id', input_type=str]\n    For further information visit https://errors.pydantic.dev/2.12/v/list_type"
        );
        assert!(check_scan_request(
            json!({"table_id": "t", "limit": 5, "select": null})
                .as_object()
                .unwrap()
        )
        .is_empty());
        assert!(check(json!({"table_id": 1, "where": 2}))
            .starts_with("2 validation errors for ScanRequest\ntable_id\n"));
    }

    #[test]
    fn python_reprs() {
        assert_eq!(
            py_repr(&json!({"a": [1, 2.5, 3.0, true, null, "it's"]})),
            "{'a': [1, 2.5, 3.0, True, None, \"it's\"]}"
        );
        assert_eq!(py_str("a'\"b\n"), "'a\\'\"b\\n'");
    }
}
