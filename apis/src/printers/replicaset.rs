//! `kubectl get replicasets`: desired, current and ready replicas, and (wide) containers,
//! images and selector.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, CONTAINERS, IMAGES, NAME};
use super::{containers, fields, labels};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col("Desired", "integer", "Number of replicas asked for.", 0),
    col("Current", "integer", "Number of replicas that exist.", 0),
    col("Ready", "integer", "Number of replicas that are ready.", 0),
    AGE,
    CONTAINERS,
    IMAGES,
    col(
        "Selector",
        "string",
        "Label selector for the replica set's pods.",
        1,
    ),
];

pub(super) fn cells(rs: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) =
        containers::names_and_images(fields::get(rs, &["spec", "template", "spec"]));
    vec![
        fields::name(rs).into(),
        fields::int(rs, &["spec", "replicas"]).into(),
        fields::int(rs, &["status", "replicas"]).into(),
        fields::int(rs, &["status", "readyReplicas"]).into(),
        fields::age(rs, now).into(),
        names.into(),
        images.into(),
        labels::format_label_selector(fields::get(rs, &["spec", "selector"])).into(),
    ]
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
