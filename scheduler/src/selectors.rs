//! Label selectors and node selector terms, matched the way upstream's `labels.Selector` and
//! `nodeaffinity.NodeSelector` match them.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm},
    apimachinery::pkg::apis::meta::v1::LabelSelector,
};

pub type Labels = BTreeMap<String, String>;

/// Whether a `metav1.LabelSelector` matches: an empty selector matches everything.
pub fn label_selector_matches(selector: &LabelSelector, labels: &Labels) -> bool {
    if let Some(ml) = &selector.match_labels {
        if ml.iter().any(|(k, v)| labels.get(k) != Some(v)) {
            return false;
        }
    }
    selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or(&[]);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    })
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&String>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (value, values.first()) else {
                return false;
            };
            match (v.parse::<i64>(), bound.parse::<i64>()) {
                (Ok(v), Ok(b)) if r.operator == "Gt" => v > b,
                (Ok(v), Ok(b)) => v < b,
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether one node selector term matches: all its label and field requirements hold; a term
/// with no requirements matches nothing, as upstream.
pub fn node_selector_term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.metadata.labels.as_ref();
    let name = node.metadata.name.clone().unwrap_or_default();
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.and_then(|l| l.get(&r.key))))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(&name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operators() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n1", "labels": {"zone": "a", "cores": "8"}}
        }))
        .unwrap();
        let term =
            |e: serde_json::Value| -> NodeSelectorTerm { serde_json::from_value(e).unwrap() };
        assert!(node_selector_term_matches(
            &term(
                json!({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]})
            ),
            &node
        ));
        assert!(!node_selector_term_matches(
            &term(
                json!({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]})
            ),
            &node
        ));
        assert!(node_selector_term_matches(
            &term(
                json!({"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]})
            ),
            &node
        ));
        assert!(!node_selector_term_matches(
            &term(
                json!({"matchExpressions": [{"key": "cores", "operator": "Lt", "values": ["4"]}]})
            ),
            &node
        ));
        assert!(node_selector_term_matches(
            &term(json!({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]})),
            &node
        ));
        assert!(node_selector_term_matches(
            &term(
                json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]})
            ),
            &node
        ));
        assert!(!node_selector_term_matches(&term(json!({})), &node));
        let sel: LabelSelector = serde_json::from_value(json!({"matchLabels": {"app": "x"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]})).unwrap();
        let mut labels = Labels::new();
        labels.insert("app".into(), "x".into());
        assert!(!label_selector_matches(&sel, &labels));
        labels.insert("tier".into(), "web".into());
        assert!(label_selector_matches(&sel, &labels));
    }
}
