//! `GET /api/memory/bundle`: the corporate memory items from the catalog.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use crate::app::App;
use crate::auth::authenticate;
use crate::reply::{json, ApiResult};

/// The budget sent when the catalog names none (both real servers' 6000).
const DEFAULT_TOKEN_BUDGET: u64 = 6_000;

pub async fn handler(State(app): State<Arc<App>>, headers: HeaderMap) -> ApiResult {
    let catalog = app.catalog()?;
    authenticate(&headers, &catalog)?;
    let memory = &catalog.memory;
    let estimate = token_estimate(memory.mandatory.iter().chain(&memory.approved));
    let shape = |items: &[Value], required: bool| -> Vec<Value> {
        match app.generation.is_current() {
            true => items.iter().map(|i| current_item(i, required)).collect(),
            false => items.to_vec(),
        }
    };
    Ok(json(
        StatusCode::OK,
        &json!({
            "mandatory": shape(&memory.mandatory, true),
            "approved": shape(&memory.approved, false),
            "token_estimate": estimate,
            "token_budget": memory.token_budget.unwrap_or(DEFAULT_TOKEN_BUDGET),
        }),
    ))
}

/// An item as 0.84 sends it (CONTRACT.md §7.7): `is_required` and
/// `domains` always there, `tags` and `entities` lists; whatever the
/// catalog gives wins.
fn current_item(item: &Value, required: bool) -> Value {
    let mut item = item.clone();
    if let Some(map) = item.as_object_mut() {
        map.entry("is_required").or_insert(json!(required));
        map.entry("domains").or_insert(json!([]));
        for key in ["tags", "entities"] {
            let list = match map.get(key) {
                Some(Value::Array(_)) => continue,
                Some(Value::String(s)) => serde_json::from_str::<Vec<Value>>(s).unwrap_or_default(),
                _ => Vec::new(),
            };
            map.insert(key.to_string(), json!(list));
        }
    }
    item
}

/// About four characters per token over titles and contents, rounded up.
fn token_estimate<'a>(items: impl Iterator<Item = &'a Value>) -> u64 {
    let chars: usize = items
        .map(|item| {
            ["title", "content"]
                .iter()
                .filter_map(|k| item.get(k)?.as_str())
                .map(|s| s.chars().count())
                .sum::<usize>()
        })
        .sum();
    (chars as u64).div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_four_chars_a_token() {
        let items = [
            json!({"title": "abcd", "content": "é"}),
            json!({"content": null}),
        ];
        assert_eq!(token_estimate(items.iter()), 2);
        assert_eq!(token_estimate([].iter()), 0);
    }
}
