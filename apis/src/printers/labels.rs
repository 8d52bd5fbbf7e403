//! Label maps and label selectors rendered the way upstream's `labels` package prints them,
//! for the SELECTOR and NODE SELECTOR columns.

use serde_json::{Map, Value};
use thiserror::Error;

use super::fields;

/// Why a `LabelSelector` could not be turned into a selector string.
#[derive(Debug, Error, PartialEq, Eq)]
pub(super) enum SelectorError {
    #[error("unknown label selector operator {0:?}")]
    UnknownOperator(String),
    #[error("operator {operator} on key {key:?} needs at least one value")]
    MissingValues { key: String, operator: String },
    #[error("operator {operator} on key {key:?} takes no values")]
    UnexpectedValues { key: String, operator: String },
    #[error("label selector is not an object")]
    NotAnObject,
}

/// "k1=v1,k2=v2" with keys sorted; "<none>" for an empty or missing map.
pub(super) fn format_labels(labels: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<(&str, &str)> = labels
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
        .collect();
    if pairs.is_empty() {
        return "<none>".to_owned();
    }
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A `metav1.LabelSelector` as a selector string: requirements sorted by key, e.g.
/// "app=web,tier in (a,b),!legacy". A missing or empty selector gives "".
pub(super) fn selector_string(selector: Option<&Value>) -> Result<String, SelectorError> {
    let Some(selector) = selector else {
        return Ok(String::new());
    };
    if !selector.is_object() {
        return Err(SelectorError::NotAnObject);
    }
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(labels) = fields::map(selector, &["matchLabels"]) {
        for (key, value) in labels {
            let value = value.as_str().unwrap_or("");
            requirements.push((key.clone(), format!("{key}={value}")));
        }
    }
    for expr in fields::array(selector, &["matchExpressions"]) {
        let key = fields::str(expr, &["key"]);
        let operator = fields::str(expr, &["operator"]);
        let mut values: Vec<&str> = fields::array(expr, &["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        let text = match operator {
            "In" | "NotIn" => {
                if values.is_empty() {
                    return Err(SelectorError::MissingValues {
                        key: key.to_owned(),
                        operator: operator.to_owned(),
                    });
                }
                let word = if operator == "In" { "in" } else { "notin" };
                format!("{key} {word} ({})", values.join(","))
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    return Err(SelectorError::UnexpectedValues {
                        key: key.to_owned(),
                        operator: operator.to_owned(),
                    });
                }
                let bang = if operator == "Exists" { "" } else { "!" };
                format!("{bang}{key}")
            }
            other => return Err(SelectorError::UnknownOperator(other.to_owned())),
        };
        requirements.push((key.to_owned(), text));
    }
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(requirements
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(","))
}

/// Upstream's `FormatLabelSelector`: the selector string, "<none>" when it selects
/// everything or nothing, "<error>" when it is malformed.
pub(super) fn format_label_selector(selector: Option<&Value>) -> String {
    match selector_string(selector) {
        Ok(s) if s.is_empty() => "<none>".to_owned(),
        Ok(s) => s,
        Err(_) => "<error>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_sorted() {
        let m = json!({"tier": "web", "app": "shop"});
        assert_eq!(format_labels(m.as_object()), "app=shop,tier=web");
        assert_eq!(format_labels(None), "<none>");
        assert_eq!(format_labels(json!({}).as_object()), "<none>");
    }

    #[test]
    fn selector_forms() {
        let s = json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["b", "a"]},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "legacy", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "Exists"}
            ]
        });
        assert_eq!(
            format_label_selector(Some(&s)),
            "app=web,env notin (dev),!legacy,tier in (a,b),zone"
        );
        assert_eq!(format_label_selector(None), "<none>");
        assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
        assert_eq!(selector_string(Some(&json!({}))), Ok(String::new()));
    }

    #[test]
    fn malformed_selectors() {
        let bad_op = json!({"matchExpressions": [{"key": "a", "operator": "Near"}]});
        assert_eq!(
            selector_string(Some(&bad_op)),
            Err(SelectorError::UnknownOperator("Near".to_owned()))
        );
        let no_values = json!({"matchExpressions": [{"key": "a", "operator": "In"}]});
        assert_eq!(format_label_selector(Some(&no_values)), "<error>");
        assert_eq!(format_label_selector(Some(&json!("x"))), "<error>");
    }
}
