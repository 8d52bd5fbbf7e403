//! `kubectl get poddisruptionbudgets`: min available, max unavailable, allowed disruptions.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Min Available",
        "string",
        "Pods that must stay available, as a count or percentage.",
        0,
    ),
    col(
        "Max Unavailable",
        "string",
        "Pods that may be unavailable, as a count or percentage.",
        0,
    ),
    col(
        "Allowed Disruptions",
        "integer",
        "Pod disruptions currently permitted.",
        0,
    ),
    AGE,
];

pub(super) fn cells(pdb: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let bound = |field: &str| {
        fields::get(pdb, &["spec", field])
            .and_then(fields::int_or_string)
            .unwrap_or_else(|| "N/A".to_owned())
    };
    vec![
        fields::name(pdb).into(),
        bound("minAvailable").into(),
        bound("maxUnavailable").into(),
        fields::int(pdb, &["status", "disruptionsAllowed"]).into(),
        fields::age(pdb, now).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn pdb_rows() {
        let pdb = json!({
            "metadata": {"name": "web-pdb", "creationTimestamp": ago(90 * 60)},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2}
        });
        assert_eq!(
            cells(&pdb, now()),
            vec![
                json!("web-pdb"),
                json!("2"),
                json!("N/A"),
                json!(1),
                json!("90m")
            ]
        );
        let pct = json!({"metadata": {"name": "p"}, "spec": {"maxUnavailable": "25%"}});
        let c = cells(&pct, now());
        assert_eq!(c[1], json!("N/A"));
        assert_eq!(c[2], json!("25%"));
        assert_eq!(c[3], json!(0));
    }
}
