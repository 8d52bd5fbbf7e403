//! `kubectl get certificatesigningrequests` and `clustertrustbundles`.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::{duration, fields};

pub(super) const CSR_COLUMNS: &[Column] = &[
    NAME,
    AGE,
    col(
        "SignerName",
        "string",
        "Signer asked to issue the certificate.",
        0,
    ),
    col("Requestor", "string", "User who created the request.", 0),
    col(
        "RequestedDuration",
        "string",
        "Validity period asked for.",
        0,
    ),
    col(
        "Condition",
        "string",
        "Approval state, plus Failed and Issued when they apply.",
        0,
    ),
];

pub(super) const TRUST_BUNDLE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "SignerName",
        "string",
        "Signer whose trust anchors the bundle holds.",
        0,
    ),
];

pub(super) fn csr_cells(csr: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let requested = fields::opt_int(csr, &["spec", "expirationSeconds"]).map_or_else(
        || "<none>".to_owned(),
        |s| duration::human_duration(TimeDelta::seconds(s)),
    );
    vec![
        fields::name(csr).into(),
        fields::age(csr, now).into(),
        non_empty_or_none(fields::str(csr, &["spec", "signerName"])).into(),
        fields::str(csr, &["spec", "username"]).into(),
        requested.into(),
        condition(csr).into(),
    ]
}

/// Denied beats Approved beats Pending; ",Failed" and ",Issued" are appended when true.
fn condition(csr: &Value) -> String {
    let conditions = fields::array(csr, &["status", "conditions"]);
    let has = |t: &str| conditions.iter().any(|c| fields::str(c, &["type"]) == t);
    let mut status = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_owned();
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !fields::str(csr, &["status", "certificate"]).is_empty() {
        status.push_str(",Issued");
    }
    status
}

pub(super) fn trust_bundle_cells(bundle: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    vec![
        fields::name(bundle).into(),
        non_empty_or_none(fields::str(bundle, &["spec", "signerName"])).into(),
    ]
}

/// "<none>" in place of an empty string.
fn non_empty_or_none(s: &str) -> String {
    if s.is_empty() { "<none>" } else { s }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn csr_row() {
        let csr = json!({
            "metadata": {"name": "csr-7xk2p", "creationTimestamp": ago(30)},
            "spec": {"signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                     "username": "system:node:node-1", "expirationSeconds": 86400,
                     "request": "LS0t"},
            "status": {"conditions": [{"type": "Approved", "status": "True"}],
                       "certificate": "LS0tLS1CRUdJTg=="}
        });
        assert_eq!(
            csr_cells(&csr, now()),
            vec![
                json!("csr-7xk2p"),
                json!("30s"),
                json!("kubernetes.io/kube-apiserver-client-kubelet"),
                json!("system:node:node-1"),
                json!("24h"),
                json!("Approved,Issued")
            ]
        );
        let denied = json!({"status": {"conditions": [{"type": "Approved"}, {"type": "Denied"},
                                                      {"type": "Failed"}]}});
        assert_eq!(condition(&denied), "Denied,Failed");
        let c = csr_cells(&json!({"metadata": {"name": "p"}}), now());
        assert_eq!(c[2], json!("<none>"));
        assert_eq!(c[4], json!("<none>"));
        assert_eq!(c[5], json!("Pending"));
    }

    #[test]
    fn trust_bundle_row() {
        let b = json!({"metadata": {"name": "example.com:signer:abc"},
                       "spec": {"signerName": "example.com/signer", "trustBundle": "..."}});
        assert_eq!(
            trust_bundle_cells(&b, now()),
            vec![json!("example.com:signer:abc"), json!("example.com/signer")]
        );
    }
}
