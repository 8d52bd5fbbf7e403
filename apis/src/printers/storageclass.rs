//! `kubectl get storageclasses`: provisioner and policies, with " (default)" on the name of
//! the default class.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Provisioner",
        "string",
        "Provisioner that creates volumes of this class.",
        0,
    ),
    col(
        "ReclaimPolicy",
        "string",
        "Reclaim policy given to volumes of this class.",
        0,
    ),
    col(
        "VolumeBindingMode",
        "string",
        "When volumes are bound and provisioned.",
        0,
    ),
    col(
        "AllowVolumeExpansion",
        "string",
        "Whether volumes of this class can grow.",
        0,
    ),
    AGE,
];

/// Annotations that mark the cluster's default class (current and beta).
const DEFAULT_CLASS_ANNOTATIONS: [&str; 2] = [
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

pub(super) fn cells(sc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let annotations = fields::map(sc, &["metadata", "annotations"]);
    let is_default = DEFAULT_CLASS_ANNOTATIONS.iter().any(|key| {
        annotations
            .and_then(|a| a.get(*key))
            .and_then(Value::as_str)
            == Some("true")
    });
    let mut name = fields::name(sc).to_owned();
    if is_default {
        name.push_str(" (default)");
    }
    vec![
        name.into(),
        fields::str(sc, &["provisioner"]).into(),
        fields::opt_str(sc, &["reclaimPolicy"])
            .unwrap_or("Delete")
            .into(),
        fields::opt_str(sc, &["volumeBindingMode"])
            .unwrap_or("Immediate")
            .into(),
        fields::bool(sc, &["allowVolumeExpansion"]).into(),
        fields::age(sc, now).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn default_class() {
        let sc = json!({
            "metadata": {"name": "standard", "creationTimestamp": ago(86400 * 20),
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer"
        });
        assert_eq!(
            cells(&sc, now()),
            vec![
                json!("standard (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("WaitForFirstConsumer"),
                json!(false),
                json!("20d")
            ]
        );
        let bare = cells(
            &json!({"metadata": {"name": "fast"}, "allowVolumeExpansion": true}),
            now(),
        );
        assert_eq!(bare[0], json!("fast"));
        assert_eq!(bare[2], json!("Delete"));
        assert_eq!(bare[3], json!("Immediate"));
        assert_eq!(bare[4], json!(true));
    }
}
