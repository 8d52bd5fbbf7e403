//! `kubectl get deployments`: ready/desired, up-to-date and available replicas, and (wide)
//! containers, images and selector.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{self, col, Column, AGE, CONTAINERS, IMAGES, NAME, READY_OF_DESIRED};
use super::{containers, fields, labels};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    READY_OF_DESIRED,
    col(
        "Up-to-date",
        "string",
        "Replicas running the latest pod template.",
        0,
    ),
    col("Available", "string", "Replicas available to serve.", 0),
    AGE,
    CONTAINERS,
    IMAGES,
    column::selector("Label selector for the deployment's pods."),
];

pub(super) fn cells(d: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let selector = labels::selector_string(fields::get(d, &["spec", "selector"]))
        .unwrap_or_else(|_| "<invalid>".to_owned());
    let own = vec![
        fields::ready_of_desired(d).into(),
        fields::int(d, &["status", "updatedReplicas"]).into(),
        fields::int(d, &["status", "availableReplicas"]).into(),
    ];
    containers::workload_row(d, now, own, containers::template_spec(d), Some(selector))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_row() {
        let d = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "coredns", "namespace": "kube-system",
                         "creationTimestamp": ago(8 * 86400)},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                "template": {"spec": {"containers": [
                    {"name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.12.0"}
                ]}}
            },
            "status": {"replicas": 2, "readyReplicas": 1, "updatedReplicas": 2,
                       "availableReplicas": 1}
        });
        assert_eq!(
            cells(&d, now()),
            vec![
                json!("coredns"),
                json!("1/2"),
                json!(2),
                json!(1),
                json!("8d"),
                json!("coredns"),
                json!("registry.k8s.io/coredns/coredns:v1.12.0"),
                json!("k8s-app=kube-dns"),
            ]
        );
    }

    #[test]
    fn new_deployment_without_status() {
        let d = json!({"metadata": {"name": "x"}, "spec": {"replicas": 3,
            "selector": {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}}});
        let c = cells(&d, now());
        assert_eq!(c[1], json!("0/3"));
        assert_eq!(c[2], json!(0));
        assert_eq!(c[7], json!("<invalid>"));
    }
}
