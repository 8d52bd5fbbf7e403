//! `kubectl get` for the CSI storage kinds: CSIDriver, CSINode, CSIStorageCapacity and
//! VolumeAttachment.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const CSI_DRIVER_COLUMNS: &[Column] = &[
    NAME,
    col(
        "AttachRequired",
        "boolean",
        "Whether volumes need an attach step.",
        0,
    ),
    col(
        "PodInfoOnMount",
        "boolean",
        "Whether pod details are passed on mount.",
        0,
    ),
    col(
        "StorageCapacity",
        "boolean",
        "Whether the driver reports storage capacity.",
        0,
    ),
    col(
        "TokenRequests",
        "string",
        "Audiences of service account tokens passed on mount.",
        0,
    ),
    col(
        "RequiresRepublish",
        "boolean",
        "Whether volumes are periodically re-published.",
        0,
    ),
    col("Modes", "string", "Supported volume lifecycle modes.", 0),
    AGE,
];

pub(super) const CSI_NODE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Drivers",
        "integer",
        "Number of CSI drivers registered on the node.",
        0,
    ),
    AGE,
];

pub(super) const CSI_STORAGE_CAPACITY_COLUMNS: &[Column] = &[
    NAME,
    col(
        "StorageClassName",
        "string",
        "Storage class the capacity applies to.",
        0,
    ),
    col(
        "Capacity",
        "string",
        "Capacity available for new volumes.",
        0,
    ),
];

pub(super) const VOLUME_ATTACHMENT_COLUMNS: &[Column] = &[
    NAME,
    Column {
        format: "name",
        ..col("Attacher", "string", "Driver that attaches the volume.", 0)
    },
    col("PV", "string", "Persistent volume being attached.", 0),
    col("Node", "string", "Node the volume is attached to.", 0),
    col(
        "Attached",
        "boolean",
        "Whether the attach has completed.",
        0,
    ),
    AGE,
];

pub(super) fn csi_driver_cells(d: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = |field: &str| fields::opt_bool(d, &["spec", field]);
    let token_requests = fields::get(d, &["spec", "tokenRequests"]).map_or_else(
        || "<unset>".to_owned(),
        |t| {
            t.as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|r| fields::str(r, &["audience"]))
                .collect::<Vec<_>>()
                .join(",")
        },
    );
    let modes: Vec<&str> = fields::array(d, &["spec", "volumeLifecycleModes"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let modes = if modes.is_empty() {
        "<none>".to_owned()
    } else {
        modes.join(",")
    };
    vec![
        fields::name(d).into(),
        spec("attachRequired").unwrap_or(true).into(),
        spec("podInfoOnMount").unwrap_or(false).into(),
        spec("storageCapacity").unwrap_or(false).into(),
        token_requests.into(),
        spec("requiresRepublish").unwrap_or(false).into(),
        modes.into(),
        fields::age(d, now).into(),
    ]
}

pub(super) fn csi_node_cells(n: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        fields::name(n).into(),
        fields::array(n, &["spec", "drivers"]).len().into(),
        fields::age(n, now).into(),
    ]
}

pub(super) fn csi_storage_capacity_cells(c: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let capacity = match fields::get(c, &["capacity"]) {
        Some(q) => fields::quantity(Some(q)),
        None => "<unset>".to_owned(),
    };
    vec![
        fields::name(c).into(),
        fields::str(c, &["storageClassName"]).into(),
        capacity.into(),
    ]
}

pub(super) fn volume_attachment_cells(va: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        fields::name(va).into(),
        fields::str(va, &["spec", "attacher"]).into(),
        fields::str(va, &["spec", "source", "persistentVolumeName"]).into(),
        fields::str(va, &["spec", "nodeName"]).into(),
        fields::bool(va, &["status", "attached"]).into(),
        fields::age(va, now).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn csi_driver_row() {
        let d = json!({
            "metadata": {"name": "ebs.csi.aws.com", "creationTimestamp": ago(3600)},
            "spec": {"attachRequired": true, "podInfoOnMount": false,
                     "tokenRequests": [{"audience": "sts.amazonaws.com"}],
                     "volumeLifecycleModes": ["Persistent", "Ephemeral"]}
        });
        assert_eq!(
            csi_driver_cells(&d, now()),
            vec![
                json!("ebs.csi.aws.com"),
                json!(true),
                json!(false),
                json!(false),
                json!("sts.amazonaws.com"),
                json!(false),
                json!("Persistent,Ephemeral"),
                json!("60m")
            ]
        );
        let bare = csi_driver_cells(&json!({"metadata": {"name": "x"}}), now());
        assert_eq!(bare[1], json!(true));
        assert_eq!(bare[4], json!("<unset>"));
        assert_eq!(bare[6], json!("<none>"));
    }

    #[test]
    fn node_capacity_and_attachment_rows() {
        let n = json!({"metadata": {"name": "node-1", "creationTimestamp": ago(60)},
                       "spec": {"drivers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(
            csi_node_cells(&n, now()),
            vec![json!("node-1"), json!(2), json!("60s")]
        );

        let c = json!({"metadata": {"name": "csisc-x"}, "storageClassName": "fast",
                       "capacity": "100Gi"});
        assert_eq!(
            csi_storage_capacity_cells(&c, now()),
            vec![json!("csisc-x"), json!("fast"), json!("100Gi")]
        );
        assert_eq!(
            csi_storage_capacity_cells(&json!({}), now())[2],
            json!("<unset>")
        );

        let va = json!({
            "metadata": {"name": "csi-1a2b", "creationTimestamp": ago(120)},
            "spec": {"attacher": "ebs.csi.aws.com", "nodeName": "node-1",
                     "source": {"persistentVolumeName": "pvc-3f2a"}},
            "status": {"attached": true}
        });
        assert_eq!(
            volume_attachment_cells(&va, now()),
            vec![
                json!("csi-1a2b"),
                json!("ebs.csi.aws.com"),
                json!("pvc-3f2a"),
                json!("node-1"),
                json!(true),
                json!("2m")
            ]
        );
    }
}
