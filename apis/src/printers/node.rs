//! `kubectl get nodes`: readiness plus SchedulingDisabled, roles from the role labels, the
//! kubelet version and (wide) addresses and system info.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Status",
        "string",
        "Ready or NotReady, plus SchedulingDisabled when cordoned.",
        0,
    ),
    col(
        "Roles",
        "string",
        "Roles from node-role.kubernetes.io/<role> labels.",
        0,
    ),
    AGE,
    col(
        "Version",
        "string",
        "Version of the kubelet on the node.",
        0,
    ),
    col(
        "Internal-IP",
        "string",
        "The node's first InternalIP address.",
        1,
    ),
    col(
        "External-IP",
        "string",
        "The node's first ExternalIP address.",
        1,
    ),
    col(
        "OS-Image",
        "string",
        "Operating system image reported by the node.",
        1,
    ),
    col(
        "Kernel-Version",
        "string",
        "Kernel version reported by the node.",
        1,
    ),
    col(
        "Container-Runtime",
        "string",
        "Container runtime name and version.",
        1,
    ),
];

/// Label prefix whose suffix names a role.
const ROLE_LABEL_PREFIX: &str = "node-role.kubernetes.io/";
/// Older label whose value names a role.
const ROLE_LABEL: &str = "kubernetes.io/role";

pub(super) fn cells(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let info = |field: &str| {
        let v = fields::str(node, &["status", "nodeInfo", field]);
        if v.is_empty() { "<unknown>" } else { v }.to_owned()
    };
    vec![
        fields::name(node).into(),
        status(node).into(),
        roles(node).into(),
        fields::age(node, now).into(),
        fields::str(node, &["status", "nodeInfo", "kubeletVersion"]).into(),
        address(node, "InternalIP").into(),
        address(node, "ExternalIP").into(),
        info("osImage").into(),
        info("kernelVersion").into(),
        info("containerRuntimeVersion").into(),
    ]
}

/// "Ready", "NotReady" or "Unknown" (no Ready condition), with ",SchedulingDisabled" when
/// spec.unschedulable is set. The last Ready condition listed wins, as in upstream's map.
fn status(node: &Value) -> String {
    let ready = fields::array(node, &["status", "conditions"])
        .iter()
        .rfind(|c| fields::str(c, &["type"]) == "Ready");
    let mut status = match ready {
        Some(c) if fields::str(c, &["status"]) == "True" => "Ready".to_owned(),
        Some(_) => "NotReady".to_owned(),
        None => "Unknown".to_owned(),
    };
    if fields::bool(node, &["spec", "unschedulable"]) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

/// Sorted, de-duplicated roles joined by ","; "<none>" when the node has none.
fn roles(node: &Value) -> String {
    let mut roles: Vec<&str> = fields::map(node, &["metadata", "labels"])
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| {
            if let Some(role) = key.strip_prefix(ROLE_LABEL_PREFIX) {
                Some(role)
            } else if key == ROLE_LABEL {
                value.as_str()
            } else {
                None
            }
        })
        .filter(|role| !role.is_empty())
        .collect();
    roles.sort_unstable();
    roles.dedup();
    if roles.is_empty() {
        "<none>".to_owned()
    } else {
        roles.join(",")
    }
}

/// The first address of the given type, or "<none>".
fn address(node: &Value, type_: &str) -> String {
    fields::array(node, &["status", "addresses"])
        .iter()
        .find(|a| fields::str(a, &["type"]) == type_)
        .map_or("<none>", |a| fields::str(a, &["address"]))
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn control_plane_node_cordoned() {
        let node = json!({
            "metadata": {"name": "cp-1", "creationTimestamp": ago(51 * 3600),
                "labels": {"node-role.kubernetes.io/control-plane": "",
                           "kubernetes.io/role": "master",
                           "kubernetes.io/hostname": "cp-1"}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"},
                               {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.10"},
                              {"type": "Hostname", "address": "cp-1"}],
                "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Ubuntu 24.04 LTS",
                             "kernelVersion": "6.8.0-31-generic",
                             "containerRuntimeVersion": "containerd://1.7.27"}
            }
        });
        assert_eq!(
            cells(&node, now()),
            vec![
                json!("cp-1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,master"),
                json!("2d3h"),
                json!("v1.33.1"),
                json!("192.168.1.10"),
                json!("<none>"),
                json!("Ubuntu 24.04 LTS"),
                json!("6.8.0-31-generic"),
                json!("containerd://1.7.27"),
            ]
        );
    }

    #[test]
    fn bare_node() {
        let node = json!({
            "metadata": {"name": "w-1", "creationTimestamp": ago(5 * 86400)},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}
        });
        assert_eq!(
            cells(&node, now()),
            vec![
                json!("w-1"),
                json!("NotReady"),
                json!("<none>"),
                json!("5d"),
                json!(""),
                json!("<none>"),
                json!("<none>"),
                json!("<unknown>"),
                json!("<unknown>"),
                json!("<unknown>"),
            ]
        );
        assert_eq!(status(&json!({})), "Unknown");
    }
}
