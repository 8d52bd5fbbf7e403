//! Label selectors as API objects carry them (`matchLabels` + `matchExpressions`, or a plain
//! map for Services), turned into the matcher apimachinery provides.

use std::collections::BTreeMap;

use apimachinery::selector::labels::{LabelSelector, Requirement};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as ApiSelector;

/// Why a selector cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid label selector: unknown operator {0:?}")]
pub struct InvalidSelector(String);

/// Converts an API label selector; `None` selects nothing, an empty selector everything.
pub fn from_api(sel: Option<&ApiSelector>) -> Result<Option<LabelSelector>, InvalidSelector> {
    let Some(sel) = sel else { return Ok(None) };
    let mut requirements: Vec<Requirement> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| Requirement::Equals(k.clone(), v.clone()))
        .collect();
    for expr in sel.match_expressions.iter().flatten() {
        let values = expr.values.clone().unwrap_or_default();
        requirements.push(match expr.operator.as_str() {
            "In" => Requirement::In(expr.key.clone(), values),
            "NotIn" => Requirement::NotIn(expr.key.clone(), values),
            "Exists" => Requirement::Exists(expr.key.clone()),
            "DoesNotExist" => Requirement::DoesNotExist(expr.key.clone()),
            other => return Err(InvalidSelector(other.to_string())),
        });
    }
    Ok(Some(LabelSelector { requirements }))
}

/// A Service-style selector: every pair must match; an empty map selects nothing.
pub fn from_map(map: Option<&BTreeMap<String, String>>) -> Option<LabelSelector> {
    let map = map.filter(|m| !m.is_empty())?;
    Some(LabelSelector {
        requirements: map
            .iter()
            .map(|(k, v)| Requirement::Equals(k.clone(), v.clone()))
            .collect(),
    })
}

/// Whether `selector` selects an object labelled `labels`.
pub fn matches(selector: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    selector.matches(labels.unwrap_or(&EMPTY))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn converts_match_labels_and_expressions() {
        let api = ApiSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["db".into()]),
            }]),
        };
        let sel = from_api(Some(&api)).unwrap().unwrap();
        let web: BTreeMap<_, _> = [("app".to_string(), "web".to_string())].into();
        assert!(matches(&sel, Some(&web)));
        let mut db = web.clone();
        db.insert("tier".into(), "db".into());
        assert!(!matches(&sel, Some(&db)));
        assert!(from_api(None).unwrap().is_none());
        assert!(from_map(Some(&BTreeMap::new())).is_none());
        let bad = ApiSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "x".into(),
                operator: "Near".into(),
                values: None,
            }]),
            ..Default::default()
        };
        assert!(from_api(Some(&bad)).is_err());
    }
}
