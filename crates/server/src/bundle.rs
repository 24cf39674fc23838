//! `GET /api/memory/bundle`: the corporate memory items from the catalog.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use crate::app::App;
use crate::auth::authenticate;
use crate::reply::{json, ApiResult};

/// The budget sent when the catalog names none.
const DEFAULT_TOKEN_BUDGET: u64 = 20_000;

pub async fn handler(State(app): State<Arc<App>>, headers: HeaderMap) -> ApiResult {
    let catalog = app.catalog()?;
    authenticate(&headers, &catalog)?;
    let memory = &catalog.memory;
    let estimate = token_estimate(memory.mandatory.iter().chain(&memory.approved));
    Ok(json(
        StatusCode::OK,
        &json!({
            "mandatory": memory.mandatory,
            "approved": memory.approved,
            "token_estimate": estimate,
            "token_budget": memory.token_budget.unwrap_or(DEFAULT_TOKEN_BUDGET),
        }),
    ))
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
