//! `kubectl get priorityclasses`: value, global default, and preemption policy.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Value",
        "integer",
        "Priority given to pods of this class.",
        0,
    ),
    col(
        "Global-Default",
        "boolean",
        "Whether pods without a class get this one.",
        0,
    ),
    AGE,
    col(
        "PreemptionPolicy",
        "string",
        "Whether pods of this class may preempt others.",
        1,
    ),
];

pub(super) fn cells(pc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        fields::name(pc).into(),
        fields::int(pc, &["value"]).into(),
        fields::bool(pc, &["globalDefault"]).into(),
        fields::age(pc, now).into(),
        fields::str(pc, &["preemptionPolicy"]).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn system_priority_class() {
        let pc = json!({
            "metadata": {"name": "system-node-critical", "creationTimestamp": ago(86400 * 2)},
            "value": 2000001000,
            "preemptionPolicy": "PreemptLowerPriority"
        });
        assert_eq!(
            cells(&pc, now()),
            vec![
                json!("system-node-critical"),
                json!(2000001000),
                json!(false),
                json!("2d"),
                json!("PreemptLowerPriority"),
            ]
        );
    }
}
