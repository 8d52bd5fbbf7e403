//! `kubectl get persistentvolumes` and `persistentvolumeclaims`.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const PV_COLUMNS: &[Column] = &[
    NAME,
    col("Capacity", "string", "Storage capacity of the volume.", 0),
    col(
        "Access Modes",
        "string",
        "How the volume can be mounted (RWO, ROX, RWX, RWOP).",
        0,
    ),
    col(
        "Reclaim Policy",
        "string",
        "What happens to the volume when its claim is released.",
        0,
    ),
    col(
        "Status",
        "string",
        "Phase of the volume, or Terminating.",
        0,
    ),
    col(
        "Claim",
        "string",
        "The claim bound to the volume, as namespace/name.",
        0,
    ),
    col("StorageClass", "string", "Storage class of the volume.", 0),
    col(
        "VolumeAttributesClass",
        "string",
        "Volume attributes class of the volume.",
        0,
    ),
    col("Reason", "string", "Why the volume is in its phase.", 0),
    AGE,
    col("VolumeMode", "string", "Filesystem or Block.", 1),
];

pub(super) const PVC_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "Phase of the claim, or Terminating.", 0),
    col("Volume", "string", "The volume bound to the claim.", 0),
    col("Capacity", "string", "Capacity of the bound volume.", 0),
    col(
        "Access Modes",
        "string",
        "Access modes of the bound volume.",
        0,
    ),
    col(
        "StorageClass",
        "string",
        "Storage class the claim asks for.",
        0,
    ),
    col(
        "VolumeAttributesClass",
        "string",
        "Volume attributes class the claim asks for.",
        0,
    ),
    AGE,
    col("VolumeMode", "string", "Filesystem or Block.", 1),
];

/// Legacy annotation that overrides spec.storageClassName on volumes and claims.
const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

pub(super) fn pv_cells(pv: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let claim = fields::get(pv, &["spec", "claimRef"]).map_or_else(String::new, |c| {
        format!(
            "{}/{}",
            fields::str(c, &["namespace"]),
            fields::str(c, &["name"])
        )
    });
    vec![
        fields::name(pv).into(),
        fields::quantity(fields::get(pv, &["spec", "capacity", "storage"])).into(),
        access_modes(fields::array(pv, &["spec", "accessModes"])).into(),
        fields::str(pv, &["spec", "persistentVolumeReclaimPolicy"]).into(),
        phase(pv).into(),
        claim.into(),
        storage_class(pv).into(),
        or_unset(fields::opt_str(pv, &["spec", "volumeAttributesClassName"])).into(),
        fields::str(pv, &["status", "reason"]).into(),
        fields::age(pv, now).into(),
        or_unset(fields::opt_str(pv, &["spec", "volumeMode"])).into(),
    ]
}

pub(super) fn pvc_cells(pvc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let volume = fields::str(pvc, &["spec", "volumeName"]);
    // Capacity and access modes describe the bound volume, so they stay blank until bound.
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            fields::quantity(fields::get(pvc, &["status", "capacity", "storage"])),
            access_modes(fields::array(pvc, &["status", "accessModes"])),
        )
    };
    vec![
        fields::name(pvc).into(),
        phase(pvc).into(),
        volume.into(),
        capacity.into(),
        modes.into(),
        storage_class(pvc).into(),
        or_unset(fields::opt_str(pvc, &["spec", "volumeAttributesClassName"])).into(),
        fields::age(pvc, now).into(),
        or_unset(fields::opt_str(pvc, &["spec", "volumeMode"])).into(),
    ]
}

/// status.phase, or "Terminating" once deletion has started.
fn phase(obj: &Value) -> String {
    if fields::is_set(obj, &["metadata", "deletionTimestamp"]) {
        "Terminating".to_owned()
    } else {
        fields::str(obj, &["status", "phase"]).to_owned()
    }
}

/// The beta annotation if present (even empty), else spec.storageClassName.
fn storage_class(obj: &Value) -> String {
    fields::map(obj, &["metadata", "annotations"])
        .and_then(|a| a.get(BETA_STORAGE_CLASS))
        .and_then(Value::as_str)
        .unwrap_or_else(|| fields::str(obj, &["spec", "storageClassName"]))
        .to_owned()
}

/// Short access-mode names in fixed order, each at most once: "RWO,ROX,RWX,RWOP".
fn access_modes(modes: &[Value]) -> String {
    let has = |mode: &str| modes.iter().any(|m| m.as_str() == Some(mode));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .into_iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The value, or "<unset>" when the optional field is absent.
fn or_unset(v: Option<&str>) -> String {
    v.unwrap_or("<unset>").to_owned()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn bound_volume_and_claim() {
        let pv = json!({
            "metadata": {"name": "pvc-3f2a", "creationTimestamp": ago(86400 * 3)},
            "spec": {"capacity": {"storage": "10Gi"},
                     "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Delete",
                     "claimRef": {"namespace": "default", "name": "data"},
                     "storageClassName": "standard", "volumeMode": "Filesystem"},
            "status": {"phase": "Bound"}
        });
        assert_eq!(
            pv_cells(&pv, now()),
            vec![
                json!("pvc-3f2a"),
                json!("10Gi"),
                json!("RWO,RWX"),
                json!("Delete"),
                json!("Bound"),
                json!("default/data"),
                json!("standard"),
                json!("<unset>"),
                json!(""),
                json!("3d"),
                json!("Filesystem")
            ]
        );

        let pvc = json!({
            "metadata": {"name": "data", "creationTimestamp": ago(86400 * 3),
                         "annotations": {"volume.beta.kubernetes.io/storage-class": "legacy"}},
            "spec": {"volumeName": "pvc-3f2a", "storageClassName": "standard",
                     "resources": {"requests": {"storage": "8Gi"}}, "volumeMode": "Filesystem"},
            "status": {"phase": "Bound", "capacity": {"storage": "10Gi"},
                       "accessModes": ["ReadWriteOnce"]}
        });
        assert_eq!(
            pvc_cells(&pvc, now()),
            vec![
                json!("data"),
                json!("Bound"),
                json!("pvc-3f2a"),
                json!("10Gi"),
                json!("RWO"),
                json!("legacy"),
                json!("<unset>"),
                json!("3d"),
                json!("Filesystem")
            ]
        );
    }

    #[test]
    fn pending_claim_and_terminating_volume() {
        let pvc = json!({"metadata": {"name": "c"}, "spec": {}, "status": {"phase": "Pending"}});
        let c = pvc_cells(&pvc, now());
        assert_eq!(c[1], json!("Pending"));
        assert_eq!(c[3], json!(""));
        assert_eq!(c[4], json!(""));
        assert_eq!(c[5], json!(""));
        let pv = json!({"metadata": {"name": "v", "deletionTimestamp": ago(1)},
                        "status": {"phase": "Released"}});
        let c = pv_cells(&pv, now());
        assert_eq!(c[1], json!("0"));
        assert_eq!(c[4], json!("Terminating"));
    }
}
