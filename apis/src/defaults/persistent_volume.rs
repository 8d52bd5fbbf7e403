//! Defaults of PersistentVolume and PersistentVolumeClaim (also used by claim templates).

use serde_json::Value;

use super::fields::{default_string, default_unset, object_mut, struct_mut, Object};
use super::volume;

/// A claim's volume mode is a filesystem unless it asks for a raw block device.
pub(crate) fn claim_spec(spec: &mut Object) {
    default_unset(spec, "volumeMode", Value::from("Filesystem"));
}

/// A whole claim: a new claim is `Pending` until bound.
pub(crate) fn claim(pvc: &mut Object) {
    if let Some(status) = struct_mut(pvc, "status") {
        default_string(status, "phase", "Pending");
    }
    if let Some(spec) = struct_mut(pvc, "spec") {
        claim_spec(spec);
    }
}

/// A persistent volume: `Pending`, retained on release, a filesystem, with its source defaulted.
pub(crate) fn persistent_volume(pv: &mut Object) {
    if let Some(status) = struct_mut(pv, "status") {
        default_string(status, "phase", "Pending");
    }
    let Some(spec) = struct_mut(pv, "spec") else {
        return;
    };
    default_string(spec, "persistentVolumeReclaimPolicy", "Retain");
    default_unset(spec, "volumeMode", Value::from("Filesystem"));
    if let Some(source) = object_mut(spec, "hostPath") {
        volume::host_path(source);
    }
    if let Some(source) = object_mut(spec, "rbd") {
        volume::rbd(source);
    }
    if let Some(source) = object_mut(spec, "iscsi") {
        volume::iscsi(source);
    }
    if let Some(source) = object_mut(spec, "azureDisk") {
        volume::azure_disk(source);
    }
    if let Some(source) = object_mut(spec, "scaleIO") {
        volume::scale_io(source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claim_is_pending_filesystem() {
        let mut pvc = json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
        });
        claim(pvc.as_object_mut().unwrap());
        assert_eq!(
            pvc,
            json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"},
                "status": {"phase": "Pending"}
            })
        );
    }

    #[test]
    fn block_claim_keeps_its_mode() {
        let mut pvc = json!({"spec": {"volumeMode": "Block"}, "status": {"phase": "Bound"}});
        claim(pvc.as_object_mut().unwrap());
        assert_eq!(
            pvc,
            json!({"spec": {"volumeMode": "Block"}, "status": {"phase": "Bound"}})
        );
    }

    #[test]
    fn host_path_volume() {
        let mut pv = json!({
            "metadata": {"name": "pv1"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/data"}}
        });
        persistent_volume(pv.as_object_mut().unwrap());
        assert_eq!(
            pv,
            json!({
                "metadata": {"name": "pv1"},
                "spec": {
                    "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                    "hostPath": {"path": "/data", "type": ""},
                    "persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem"
                },
                "status": {"phase": "Pending"}
            })
        );
    }
}
