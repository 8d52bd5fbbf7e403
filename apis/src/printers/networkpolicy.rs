//! `kubectl get networkpolicies`: the pods the policy applies to.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::{fields, labels};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col("Pod-Selector", "string", "Pods the policy applies to.", 0),
    AGE,
];

pub(super) fn cells(np: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // The pod selector is a value, not a pointer, upstream: absent means "all pods".
    let selector = match fields::get(np, &["spec", "podSelector"]) {
        Some(selector) => labels::format_label_selector(Some(selector)),
        None => "<none>".to_owned(),
    };
    vec![
        fields::name(np).into(),
        selector.into(),
        fields::age(np, now).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn network_policy_rows() {
        let np = json!({
            "metadata": {"name": "db-ingress", "creationTimestamp": ago(86400)},
            "spec": {"podSelector": {"matchLabels": {"role": "db"}}, "policyTypes": ["Ingress"]}
        });
        assert_eq!(
            cells(&np, now()),
            vec![json!("db-ingress"), json!("role=db"), json!("24h")]
        );
        let deny_all = json!({"metadata": {"name": "deny"}, "spec": {"podSelector": {}}});
        assert_eq!(cells(&deny_all, now())[1], json!("<none>"));
        assert_eq!(cells(&json!({}), now())[1], json!("<none>"));
    }
}
