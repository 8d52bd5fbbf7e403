//! `kubectl get replicationcontrollers`: desired, current and ready replicas, and (wide)
//! containers, images and the equality-based selector.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::Column;
use super::replicaset::{replica_cells, replica_columns};
use super::{fields, labels};

pub(super) const COLUMNS: &[Column] =
    &replica_columns("Labels of the pods the controller manages.");

/// The replica set's row; the selector is a plain label map.
pub(super) fn cells(rc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let selector = labels::format_labels(fields::map(rc, &["spec", "selector"]));
    replica_cells(rc, now, selector)
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
