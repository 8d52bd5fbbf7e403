//! `kubectl get configmaps`: the number of keys, text and binary together.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Data",
        "string",
        "Number of keys in data and binaryData.",
        0,
    ),
    AGE,
];

pub(super) fn cells(cm: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let keys = fields::map_len(cm, &["data"]) + fields::map_len(cm, &["binaryData"]);
    vec![
        fields::name(cm).into(),
        keys.into(),
        fields::age(cm, now).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_both_maps() {
        let cm = json!({
            "metadata": {"name": "kube-root-ca.crt", "creationTimestamp": ago(100)},
            "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n"},
            "binaryData": {"logo.png": "iVBORw0KGgo=", "icon.png": "iVBORw0KGgo="}
        });
        assert_eq!(
            cells(&cm, now()),
            vec![json!("kube-root-ca.crt"), json!(3), json!("100s")]
        );
    }
}
