//! The memory bundle (CONTRACT.md §1) as the files of Claude Code rules:
//! one file per mandatory item, the approved items together in
//! `km_approved.md`. Writing them, and removing every other `km_*.md`, is
//! the sync's (`sync/rules.rs`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::protocol::ids::{is_safe_item_id, truncate};

const APPROVED_FILE: &str = "km_approved.md";

/// The files a bundle becomes, and the items it had to skip.
#[derive(Debug, Default, PartialEq)]
pub struct RenderedRules {
    /// File name (`km_<id>.md`) to content, in name order.
    pub files: BTreeMap<String, String>,
    pub warnings: Vec<String>,
}

/// Turns a bundle body into rule files. A body that is not a JSON object is
/// an error; a bad item is a warning and is skipped.
pub fn render(body: &[u8]) -> Result<RenderedRules, String> {
    let bundle: Value =
        serde_json::from_slice(body).map_err(|e| format!("the memory bundle is not JSON: {e}"))?;
    let Value::Object(bundle) = bundle else {
        return Err("the memory bundle is not a JSON object".into());
    };
    // A `{"detail": "rate limited"}` or `{}` answered with 200 is not "no
    // rules": taken as such, every km_*.md would be deleted.
    if !["mandatory", "approved"]
        .iter()
        .any(|k| bundle.get(*k).is_some_and(Value::is_array))
    {
        let keys: Vec<&str> = bundle.keys().take(5).map(String::as_str).collect();
        return Err(format!(
            "the memory bundle has no `mandatory` or `approved` list (keys: {}); refused, the rules are kept",
            truncate(&format!("{keys:?}"), 120)
        ));
    }
    let mut out = RenderedRules::default();
    for item in list(&bundle, "mandatory", &mut out.warnings) {
        let id = item.get("id").and_then(Value::as_str).unwrap_or("");
        if !is_safe_item_id(id) {
            out.warnings.push(format!(
                "skipped mandatory item with unsafe id {:?}",
                truncate(id, 60)
            ));
        } else if id == "approved" {
            out.warnings.push("skipped mandatory item with id \"approved\": km_approved.md holds the approved items".into());
        } else {
            out.files.insert(format!("km_{id}.md"), render_item(item));
        }
    }
    let approved = list(&bundle, "approved", &mut out.warnings);
    if !approved.is_empty() {
        let mut text = String::from("# Approved Corporate Knowledge\n\n");
        for item in approved {
            text.push_str(&format!(
                "## {}\n\n{}\n\n",
                title(item),
                field(item, "content").unwrap_or("")
            ));
        }
        out.files.insert(APPROVED_FILE.into(), text);
    }
    Ok(out)
}

fn list<'a>(
    bundle: &'a serde_json::Map<String, Value>,
    key: &str,
    warnings: &mut Vec<String>,
) -> Vec<&'a Value> {
    match bundle.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .filter(|item| {
                let ok = item.is_object();
                if !ok {
                    warnings.push(format!("skipped a {key} item that is not an object"));
                }
                ok
            })
            .collect(),
        Some(_) => {
            warnings.push(format!(
                "`{key}` in the memory bundle is not a list; ignored"
            ));
            Vec::new()
        }
    }
}

fn field<'a>(item: &'a Value, key: &str) -> Option<&'a str> {
    item.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn title(item: &Value) -> &str {
    field(item, "title").unwrap_or("Untitled")
}

/// One mandatory item as Markdown, as the old CLI rendered it.
fn render_item(item: &Value) -> String {
    let mut lines = vec![format!("# {}", title(item))];
    if let Some(domain) = field(item, "domain") {
        lines.push(format!("_Domain: {domain}_"));
    }
    if let Some(category) = field(item, "category") {
        lines.push(format!("_Category: {category}_"));
    }
    lines.push(String::new());
    lines.push(field(item, "content").unwrap_or("").to_string());
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> Value {
        serde_json::json!({
            "mandatory": [
                {"id": "sql-style", "title": "SQL style", "domain": "engineering", "category": "style", "content": "Use CTEs."},
                {"id": "bare", "content": "No title."},
                {"id": "../../etc/passwd", "title": "evil", "content": "x"},
                {"id": "approved", "title": "collides", "content": "x"},
                "not an object"
            ],
            "approved": [
                {"id": "a1", "title": "Revenue", "content": "Revenue is net of refunds."},
                {"id": "a2", "content": "Fiscal year starts in July."}
            ],
            "token_estimate": 10, "token_budget": 100
        })
    }

    #[test]
    fn renders_items_as_the_contract_says() {
        let rules = render(bundle().to_string().as_bytes()).unwrap();
        let names: Vec<_> = rules.files.keys().map(String::as_str).collect();
        assert_eq!(names, ["km_approved.md", "km_bare.md", "km_sql-style.md"]);
        assert_eq!(
            rules.files["km_sql-style.md"],
            "# SQL style\n_Domain: engineering_\n_Category: style_\n\nUse CTEs."
        );
        assert_eq!(rules.files["km_bare.md"], "# Untitled\n\nNo title.");
        assert_eq!(
            rules.files["km_approved.md"],
            "# Approved Corporate Knowledge\n\n## Revenue\n\nRevenue is net of refunds.\n\n## Untitled\n\nFiscal year starts in July.\n\n"
        );
        assert_eq!(rules.warnings.len(), 3, "{:?}", rules.warnings);
        assert!(
            rules
                .warnings
                .iter()
                .any(|w| w.contains("unsafe id \"../../etc/passwd\"")),
            "{:?}",
            rules.warnings
        );
    }

    #[test]
    fn bad_bundles() {
        assert!(render(b"<html>").is_err());
        assert!(render(b"[]").is_err());
        // No list at all: refused, not taken as "no rules" (which deletes
        // every km_*.md).
        for body in [
            &br#"{"mandatory": "oops"}"#[..],
            b"{}",
            br#"{"detail": "rate limited"}"#,
            br#"{"mandatory": null, "approved": null}"#,
        ] {
            let err = render(body).unwrap_err();
            assert!(err.contains("no `mandatory` or `approved` list"), "{err}");
        }
        let rules = render(br#"{"mandatory": "oops", "approved": []}"#).unwrap();
        assert!(rules.files.is_empty() && rules.warnings[0].contains("not a list"));
    }
}
