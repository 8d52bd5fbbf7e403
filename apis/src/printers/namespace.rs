//! `kubectl get namespaces`: the namespace phase.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Status",
        "string",
        "Phase of the namespace: Active or Terminating.",
        0,
    ),
    AGE,
];

pub(super) fn cells(ns: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        fields::name(ns).into(),
        fields::str(ns, &["status", "phase"]).into(),
        fields::age(ns, now).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn active_namespace() {
        let ns = json!({
            "metadata": {"name": "kube-system", "creationTimestamp": ago(3 * 365 * 86400)},
            "status": {"phase": "Active"}
        });
        assert_eq!(
            cells(&ns, now()),
            vec![json!("kube-system"), json!("Active"), json!("3y")]
        );
    }
}
