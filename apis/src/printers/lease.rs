//! `kubectl get leases` (the current holder) and `leasecandidates`.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Holder",
        "string",
        "Identity of the lease's current holder.",
        0,
    ),
    AGE,
];

pub(super) const CANDIDATE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "LeaseName",
        "string",
        "The lease the candidate is running for.",
        0,
    ),
    col(
        "BinaryVersion",
        "string",
        "Binary version of the candidate.",
        0,
    ),
    col(
        "EmulationVersion",
        "string",
        "Version the candidate emulates.",
        0,
    ),
    AGE,
];

pub(super) fn candidate_cells(c: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        fields::name(c).into(),
        fields::str(c, &["spec", "leaseName"]).into(),
        fields::str(c, &["spec", "binaryVersion"]).into(),
        fields::str(c, &["spec", "emulationVersion"]).into(),
        fields::age(c, now).into(),
    ]
}

pub(super) fn cells(lease: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        fields::name(lease).into(),
        fields::str(lease, &["spec", "holderIdentity"]).into(),
        fields::age(lease, now).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn lease_row() {
        let lease = json!({
            "metadata": {"name": "kube-scheduler", "namespace": "kube-system",
                         "creationTimestamp": ago(6 * 3600 + 42 * 60)},
            "spec": {"holderIdentity": "cp-1_3f0c9a1e", "leaseDurationSeconds": 15}
        });
        assert_eq!(
            cells(&lease, now()),
            vec![
                json!("kube-scheduler"),
                json!("cp-1_3f0c9a1e"),
                json!("6h42m")
            ]
        );
        assert_eq!(
            cells(&json!({"metadata": {"name": "l"}}), now())[1],
            json!("")
        );
    }
}
