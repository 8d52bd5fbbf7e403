//! `metav1.LabelSelector`: its validation and whether it selects a set of labels, which is how
//! workloads check that their selector matches their pod template.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::labels::validate_labels;
use super::names::{is_qualified_name, is_valid_label_value};
use super::path::Path;
use serde_json::Value;

/// Upstream `ValidateLabelSelector` (label values in selectors validated strictly).
pub fn validate_label_selector(sel: &Value, path: &Path, errs: &mut Errors) {
    validate_labels(sel, "matchLabels", path, errs);
    let exprs_path = path.child("matchExpressions");
    for (i, expr) in access::array(sel, "matchExpressions", path, errs)
        .iter()
        .enumerate()
    {
        let p = exprs_path.index(i);
        let op = access::str_or_empty(expr, "operator", &p, errs);
        let values = access::string_list(expr, "values", &p, errs);
        match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        &p.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        &p.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            _ => errs.push(FieldError::invalid(
                &p.child("operator"),
                op,
                "not a valid selector operator",
            )),
        }
        let key = access::str_or_empty(expr, "key", &p, errs);
        for msg in is_qualified_name(key) {
            errs.push(FieldError::invalid(&p.child("key"), key, &msg));
        }
        for (vi, value) in values.iter().enumerate() {
            for msg in is_valid_label_value(value) {
                errs.push(FieldError::invalid(
                    &p.child("values").index(vi),
                    *value,
                    &msg,
                ));
            }
        }
    }
}

/// Whether a selector has neither matchLabels nor matchExpressions.
pub fn is_empty_selector(sel: &Value) -> bool {
    let count = |key: &str| match access::get(sel, key) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    };
    count("matchLabels") + count("matchExpressions") == 0
}

/// A selector converted for matching, as `metav1.LabelSelectorAsSelector` builds it.
pub enum Selector {
    /// A missing selector: selects nothing.
    Nothing,
    /// Requirements that must all hold; none means everything is selected.
    Requirements(Vec<Requirement>),
}

pub struct Requirement {
    key: String,
    op: String,
    values: Vec<String>,
}

impl Selector {
    /// Converts a selector; `None` when the selector is malformed (the conversion error case).
    pub fn from_json(sel: Option<&Value>) -> Option<Selector> {
        let Some(sel) = sel else {
            return Some(Selector::Nothing);
        };
        let mut scratch = Errors::new();
        let mut reqs = Vec::new();
        for (k, v) in access::string_map(sel, "matchLabels", &Path::default(), &mut scratch) {
            if !is_qualified_name(k).is_empty() || !is_valid_label_value(v).is_empty() {
                return None;
            }
            reqs.push(Requirement {
                key: k.to_string(),
                op: "In".to_string(),
                values: vec![v.to_string()],
            });
        }
        for expr in access::array(sel, "matchExpressions", &Path::default(), &mut scratch) {
            let key = access::str_or_empty(expr, "key", &Path::default(), &mut scratch);
            let op = access::str_or_empty(expr, "operator", &Path::default(), &mut scratch);
            let values = access::string_list(expr, "values", &Path::default(), &mut scratch);
            let values_ok = match op {
                "In" | "NotIn" => !values.is_empty(),
                "Exists" | "DoesNotExist" => values.is_empty(),
                _ => false,
            };
            let labels_ok = is_qualified_name(key).is_empty()
                && values.iter().all(|v| is_valid_label_value(v).is_empty());
            if !values_ok || !labels_ok {
                return None;
            }
            reqs.push(Requirement {
                key: key.to_string(),
                op: op.to_string(),
                values: values.iter().map(|v| v.to_string()).collect(),
            });
        }
        if !scratch.is_empty() {
            return None;
        }
        Some(Selector::Requirements(reqs))
    }

    /// Whether this selector selects everything (upstream `Selector.Empty()`).
    pub fn is_everything(&self) -> bool {
        matches!(self, Selector::Requirements(r) if r.is_empty())
    }

    /// Whether a label set is selected.
    pub fn matches(&self, labels: &[(&str, &str)]) -> bool {
        let Selector::Requirements(reqs) = self else {
            return false;
        };
        reqs.iter().all(|r| {
            let value = labels.iter().find(|(k, _)| *k == r.key).map(|(_, v)| *v);
            match r.op.as_str() {
                "In" => value.is_some_and(|v| r.values.iter().any(|x| x == v)),
                "NotIn" => value.is_none_or(|v| !r.values.iter().any(|x| x == v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matching() {
        let sel = json!({"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]});
        let s = Selector::from_json(Some(&sel));
        let Some(s) = s else { panic!("valid selector") };
        assert!(s.matches(&[("app", "web")]));
        assert!(!s.matches(&[("app", "web"), ("tier", "db")]));
        assert!(!s.matches(&[("app", "api")]));
        assert!(!Selector::Nothing.matches(&[]));
        assert!(Selector::from_json(Some(&json!({"matchLabels": {"a b": "x"}}))).is_none());
    }

    #[test]
    fn validation_paths() {
        let sel = json!({"matchExpressions": [{"key": "a", "operator": "In"},
            {"key": "b", "operator": "Bogus"}]});
        let mut errs = Errors::new();
        validate_label_selector(&sel, &Path::new("spec").child("selector"), &mut errs);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.selector.matchExpressions[0].values",
                "spec.selector.matchExpressions[1].operator"
            ]
        );
    }
}
