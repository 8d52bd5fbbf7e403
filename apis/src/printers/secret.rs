//! `kubectl get secrets`: the secret type and number of keys.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "Type of the secret, e.g. Opaque or kubernetes.io/tls.",
        0,
    ),
    col("Data", "string", "Number of keys in data.", 0),
    AGE,
];

pub(super) fn cells(secret: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        fields::name(secret).into(),
        fields::str(secret, &["type"]).into(),
        fields::map_len(secret, &["data"]).into(),
        fields::age(secret, now).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn tls_secret() {
        let s = json!({
            "metadata": {"name": "web-tls", "creationTimestamp": ago(86400 * 400)},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}
        });
        assert_eq!(
            cells(&s, now()),
            vec![
                json!("web-tls"),
                json!("kubernetes.io/tls"),
                json!(2),
                json!("400d")
            ]
        );
    }
}
