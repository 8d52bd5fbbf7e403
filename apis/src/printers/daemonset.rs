//! `kubectl get daemonsets`: scheduling counters, the node selector, and (wide) containers,
//! images and selector.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{self, col, Column, AGE, CONTAINERS, IMAGES, NAME};
use super::{containers, fields, labels};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Nodes that should run the daemon pod.",
        0,
    ),
    col(
        "Current",
        "integer",
        "Nodes running at least one daemon pod.",
        0,
    ),
    col("Ready", "integer", "Nodes whose daemon pod is ready.", 0),
    col(
        "Up-to-date",
        "integer",
        "Nodes running the latest daemon pod template.",
        0,
    ),
    col(
        "Available",
        "integer",
        "Nodes whose daemon pod is available.",
        0,
    ),
    col(
        "Node Selector",
        "string",
        "Node labels the daemon pods are restricted to.",
        0,
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    column::selector("Label selector for the daemon set's pods."),
];

pub(super) fn cells(ds: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let pod_spec = containers::template_spec(ds);
    let node_selector = pod_spec.and_then(|spec| fields::map(spec, &["nodeSelector"]));
    let status = |field: &str| fields::int(ds, &["status", field]);
    let own = vec![
        status("desiredNumberScheduled").into(),
        status("currentNumberScheduled").into(),
        status("numberReady").into(),
        status("updatedNumberScheduled").into(),
        status("numberAvailable").into(),
        labels::format_labels(node_selector).into(),
    ];
    let selector = labels::format_label_selector(fields::get(ds, &["spec", "selector"]));
    containers::workload_row(ds, now, own, pod_spec, Some(selector))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn daemonset_row() {
        let ds = json!({
            "metadata": {"name": "kube-proxy", "namespace": "kube-system",
                         "creationTimestamp": ago(30 * 86400)},
            "spec": {
                "selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                "template": {"spec": {
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "containers": [{"name": "kube-proxy",
                                    "image": "registry.k8s.io/kube-proxy:v1.33.1"}]
                }}
            },
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3,
                       "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2}
        });
        assert_eq!(
            cells(&ds, now()),
            vec![
                json!("kube-proxy"),
                json!(3),
                json!(3),
                json!(2),
                json!(3),
                json!(2),
                json!("kubernetes.io/os=linux"),
                json!("30d"),
                json!("kube-proxy"),
                json!("registry.k8s.io/kube-proxy:v1.33.1"),
                json!("k8s-app=kube-proxy"),
            ]
        );
    }
}
