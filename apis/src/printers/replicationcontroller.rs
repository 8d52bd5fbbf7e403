//! `kubectl get replicationcontrollers`: desired, current and ready replicas, and (wide)
//! containers, images and the equality-based selector.

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
        "Labels of the pods the controller manages.",
        1,
    ),
];

pub(super) fn cells(rc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) =
        containers::names_and_images(fields::get(rc, &["spec", "template", "spec"]));
    vec![
        fields::name(rc).into(),
        fields::int(rc, &["spec", "replicas"]).into(),
        fields::int(rc, &["status", "replicas"]).into(),
        fields::int(rc, &["status", "readyReplicas"]).into(),
        fields::age(rc, now).into(),
        names.into(),
        images.into(),
        labels::format_labels(fields::map(rc, &["spec", "selector"])).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn rc_row() {
        let rc = json!({
            "metadata": {"name": "nginx", "creationTimestamp": ago(3600)},
            "spec": {"replicas": 3, "selector": {"app": "nginx"},
                     "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
            "status": {"replicas": 3, "readyReplicas": 3}
        });
        assert_eq!(
            cells(&rc, now()),
            vec![
                json!("nginx"),
                json!(3),
                json!(3),
                json!(3),
                json!("60m"),
                json!("nginx"),
                json!("nginx"),
                json!("app=nginx")
            ]
        );
    }
}
