//! `kubectl get servicecidrs`: the CIDRs service IPs are allocated from.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "CIDRs",
        "string",
        "Ranges service cluster IPs are allocated from.",
        0,
    ),
    AGE,
];

pub(super) fn cells(cidr: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let cidrs: Vec<&str> = fields::array(cidr, &["spec", "cidrs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    vec![
        fields::name(cidr).into(),
        cidrs.join(",").into(),
        fields::age(cidr, now).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn service_cidr_row() {
        let c = json!({"metadata": {"name": "kubernetes", "creationTimestamp": ago(86400 * 9)},
                       "spec": {"cidrs": ["10.96.0.0/16", "fd00:10:96::/112"]}});
        assert_eq!(
            cells(&c, now()),
            vec![
                json!("kubernetes"),
                json!("10.96.0.0/16,fd00:10:96::/112"),
                json!("9d")
            ]
        );
    }
}
