//! `kubectl get flowschemas` and `prioritylevelconfigurations` (API priority and fairness).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const FLOW_SCHEMA_COLUMNS: &[Column] = &[
    NAME,
    col(
        "PriorityLevel",
        "string",
        "Priority level requests of this schema are put in.",
        0,
    ),
    col(
        "MatchingPrecedence",
        "string",
        "Lower values are matched first.",
        0,
    ),
    col(
        "DistinguisherMethod",
        "string",
        "How requests are split into flows.",
        0,
    ),
    AGE,
    col(
        "MissingPL",
        "string",
        "Whether the referenced priority level is missing.",
        0,
    ),
];

pub(super) const PRIORITY_LEVEL_COLUMNS: &[Column] = &[
    NAME,
    col("Type", "string", "Exempt or Limited.", 0),
    col(
        "NominalConcurrencyShares",
        "string",
        "Share of the server's concurrency limit.",
        0,
    ),
    col("Queues", "string", "Number of queues.", 0),
    col(
        "HandSize",
        "string",
        "Queues a flow is shuffle-sharded over.",
        0,
    ),
    col(
        "QueueLengthLimit",
        "string",
        "Maximum requests waiting in one queue.",
        0,
    ),
    AGE,
];

pub(super) fn flow_schema_cells(fs: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let missing_pl = fields::array(fs, &["status", "conditions"])
        .iter()
        .find(|c| fields::str(c, &["type"]) == "Dangling")
        .map_or("?", |c| fields::str(c, &["status"]));
    vec![
        fields::name(fs).into(),
        fields::str(fs, &["spec", "priorityLevelConfiguration", "name"]).into(),
        fields::int(fs, &["spec", "matchingPrecedence"]).into(),
        fields::opt_str(fs, &["spec", "distinguisherMethod", "type"])
            .unwrap_or("<none>")
            .into(),
        fields::age(fs, now).into(),
        missing_pl.into(),
    ]
}

pub(super) fn priority_level_cells(pl: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let none = || Value::from("<none>");
    let (mut shares, mut queues, mut hand_size, mut queue_length) =
        (none(), none(), none(), none());
    if let Some(limited) = fields::get(pl, &["spec", "limited"]) {
        shares = fields::int(limited, &["nominalConcurrencyShares"]).into();
        if let Some(q) = fields::get(limited, &["limitResponse", "queuing"]) {
            queues = fields::int(q, &["queues"]).into();
            hand_size = fields::int(q, &["handSize"]).into();
            queue_length = fields::int(q, &["queueLengthLimit"]).into();
        }
    }
    vec![
        fields::name(pl).into(),
        fields::str(pl, &["spec", "type"]).into(),
        shares,
        queues,
        hand_size,
        queue_length,
        fields::age(pl, now).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn flow_schema_row() {
        let fs = json!({
            "metadata": {"name": "system-leader-election", "creationTimestamp": ago(86400)},
            "spec": {"priorityLevelConfiguration": {"name": "leader-election"},
                     "matchingPrecedence": 100,
                     "distinguisherMethod": {"type": "ByUser"}},
            "status": {"conditions": [{"type": "Dangling", "status": "False"}]}
        });
        assert_eq!(
            flow_schema_cells(&fs, now()),
            vec![
                json!("system-leader-election"),
                json!("leader-election"),
                json!(100),
                json!("ByUser"),
                json!("24h"),
                json!("False")
            ]
        );
        let bare = flow_schema_cells(&json!({}), now());
        assert_eq!(bare[3], json!("<none>"));
        assert_eq!(bare[5], json!("?"));
    }

    #[test]
    fn priority_level_rows() {
        let limited = json!({
            "metadata": {"name": "workload-low", "creationTimestamp": ago(86400)},
            "spec": {"type": "Limited", "limited": {
                "nominalConcurrencyShares": 100,
                "limitResponse": {"type": "Queue",
                    "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}}}}
        });
        assert_eq!(
            priority_level_cells(&limited, now()),
            vec![
                json!("workload-low"),
                json!("Limited"),
                json!(100),
                json!(128),
                json!(6),
                json!(50),
                json!("24h")
            ]
        );
        let exempt = json!({"metadata": {"name": "exempt"}, "spec": {"type": "Exempt"}});
        assert_eq!(
            priority_level_cells(&exempt, now())[1..6],
            [
                json!("Exempt"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }
}
