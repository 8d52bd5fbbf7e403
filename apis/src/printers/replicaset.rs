//! `kubectl get replicasets`: desired, current and ready replicas, and (wide) containers,
//! images and selector.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{self, col, Column, AGE, CONTAINERS, IMAGES, NAME};
use super::{containers, fields, labels};

pub(super) const COLUMNS: &[Column] =
    &replica_columns("Label selector for the replica set's pods.");

pub(super) fn cells(rs: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let selector = labels::format_label_selector(fields::get(rs, &["spec", "selector"]));
    replica_cells(rs, now, selector)
}

/// The columns of a replica set or replication controller, which differ only in what the
/// selector column describes.
pub(super) const fn replica_columns(selector_description: &'static str) -> [Column; 8] {
    [
        NAME,
        col("Desired", "integer", "Number of replicas asked for.", 0),
        col("Current", "integer", "Number of replicas that exist.", 0),
        col("Ready", "integer", "Number of replicas that are ready.", 0),
        AGE,
        CONTAINERS,
        IMAGES,
        column::selector(selector_description),
    ]
}

/// A replica set's or replication controller's row, given its formatted selector.
pub(super) fn replica_cells(obj: &Value, now: DateTime<Utc>, selector: String) -> Vec<Value> {
    let replicas = vec![
        fields::int(obj, &["spec", "replicas"]).into(),
        fields::int(obj, &["status", "replicas"]).into(),
        fields::int(obj, &["status", "readyReplicas"]).into(),
    ];
    containers::workload_row(
        obj,
        now,
        replicas,
        containers::template_spec(obj),
        Some(selector),
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn replicaset_row() {
        let rs = json!({
            "metadata": {"name": "web-7d4b9c", "creationTimestamp": ago(2 * 3600 + 15 * 60)},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7d4b9c"}},
                "template": {"spec": {"containers": [
                    {"name": "web", "image": "nginx:1.27"},
                    {"name": "exporter", "image": "nginx-exporter:1.1"}
                ]}}
            },
            "status": {"replicas": 3, "readyReplicas": 2}
        });
        assert_eq!(
            cells(&rs, now()),
            vec![
                json!("web-7d4b9c"),
                json!(3),
                json!(3),
                json!(2),
                json!("135m"),
                json!("web,exporter"),
                json!("nginx:1.27,nginx-exporter:1.1"),
                json!("app=web,pod-template-hash=7d4b9c"),
            ]
        );
    }
}
