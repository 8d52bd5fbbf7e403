//! `kubectl get runtimeclasses`: the CRI handler.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Handler",
        "string",
        "CRI handler that runs pods of this class.",
        0,
    ),
    AGE,
];

pub(super) fn cells(rc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        fields::name(rc).into(),
        fields::str(rc, &["handler"]).into(),
        fields::age(rc, now).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn runtime_class_row() {
        let rc = json!({"metadata": {"name": "gvisor", "creationTimestamp": ago(600)},
                        "handler": "runsc"});
        assert_eq!(
            cells(&rc, now()),
            vec![json!("gvisor"), json!("runsc"), json!("10m")]
        );
    }
}
