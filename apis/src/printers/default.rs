//! The table for kinds upstream has no printer for (Roles, ClusterRoles, LimitRanges, ...):
//! the object's name and its creation time as an RFC 3339 date.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::column::{col, Column, NAME};
use super::fields;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Created At",
        "date",
        "When the object was created (metadata.creationTimestamp).",
        0,
    ),
];

pub(super) fn cells(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let created = fields::time(obj, &["metadata", "creationTimestamp"]).map_or_else(
        || "0001-01-01T00:00:00Z".to_owned(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    vec![fields::name(obj).into(), created.into()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn name_and_created_at() {
        let role = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "pod-reader", "namespace": "default",
                         "creationTimestamp": "2024-05-01T10:00:00+02:00"},
            "rules": []
        });
        assert_eq!(
            cells(&role, Utc::now()),
            vec![json!("pod-reader"), json!("2024-05-01T08:00:00Z")]
        );
        assert_eq!(
            cells(&json!({}), Utc::now()),
            vec![json!(""), json!("0001-01-01T00:00:00Z")]
        );
    }
}
