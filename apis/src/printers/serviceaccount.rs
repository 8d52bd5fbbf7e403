//! `kubectl get serviceaccounts`: the number of referenced secrets.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Secrets",
        "string",
        "Number of secrets listed on the service account.",
        0,
    ),
    AGE,
];

pub(super) fn cells(sa: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        fields::name(sa).into(),
        fields::array(sa, &["secrets"]).len().into(),
        fields::age(sa, now).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn service_account_row() {
        let sa = json!({"metadata": {"name": "default", "creationTimestamp": ago(59)}});
        assert_eq!(
            cells(&sa, now()),
            vec![json!("default"), json!(0), json!("59s")]
        );
        let with_secret = json!({"metadata": {"name": "builder"},
            "secrets": [{"name": "builder-token"}]});
        assert_eq!(cells(&with_secret, now())[1], json!(1));
    }
}
