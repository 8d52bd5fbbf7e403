//! `kubectl get statefulsets`: ready/desired replicas and (wide) containers and images.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{Column, AGE, CONTAINERS, IMAGES, NAME, READY_OF_DESIRED};
use super::{containers, fields};

pub(super) const COLUMNS: &[Column] = &[NAME, READY_OF_DESIRED, AGE, CONTAINERS, IMAGES];

pub(super) fn cells(sts: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let own = vec![fields::ready_of_desired(sts).into()];
    containers::workload_row(sts, now, own, containers::template_spec(sts), None)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn statefulset_row() {
        let sts = json!({
            "metadata": {"name": "postgres", "creationTimestamp": ago(4 * 3600)},
            "spec": {"replicas": 3, "serviceName": "postgres",
                     "template": {"spec": {"containers": [
                         {"name": "postgres", "image": "postgres:16"}]}}},
            "status": {"replicas": 3, "readyReplicas": 3}
        });
        assert_eq!(
            cells(&sts, now()),
            vec![
                json!("postgres"),
                json!("3/3"),
                json!("4h"),
                json!("postgres"),
                json!("postgres:16"),
            ]
        );
    }
}
