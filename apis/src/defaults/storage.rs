//! Defaulting of the `storage.k8s.io` group: StorageClass and CSIDriver.

use serde_json::{json, Value};

use super::fields::{default_empty, default_unset, struct_mut, Object};

/// Defaults a `storage.k8s.io` object of `kind`; kinds without defaults are left untouched.
pub(crate) fn apply(kind: &str, obj: &mut Object) {
    match kind {
        "StorageClass" => {
            default_unset(obj, "reclaimPolicy", Value::from("Delete"));
            default_unset(obj, "volumeBindingMode", Value::from("Immediate"));
        }
        "CSIDriver" => {
            if let Some(spec) = struct_mut(obj, "spec") {
                csi_driver(spec);
            }
        }
        _ => {}
    }
}

/// A driver needs attach and nothing else unless it says so; it serves persistent volumes and
/// applies fsGroup only to read-write-once volumes with a filesystem type.
fn csi_driver(spec: &mut Object) {
    default_unset(spec, "attachRequired", Value::Bool(true));
    default_unset(spec, "podInfoOnMount", Value::Bool(false));
    default_unset(spec, "storageCapacity", Value::Bool(false));
    default_unset(
        spec,
        "fsGroupPolicy",
        Value::from("ReadWriteOnceWithFSType"),
    );
    default_empty(spec, "volumeLifecycleModes", json!(["Persistent"]));
    default_unset(spec, "requiresRepublish", Value::Bool(false));
    default_unset(spec, "seLinuxMount", Value::Bool(false));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_class() {
        let mut sc = json!({"metadata": {"name": "fast"}, "provisioner": "example.com/x"});
        apply("StorageClass", sc.as_object_mut().unwrap());
        assert_eq!(
            sc,
            json!({"metadata": {"name": "fast"}, "provisioner": "example.com/x", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"})
        );
    }

    #[test]
    fn csi_driver_spec() {
        let mut driver = json!({"metadata": {"name": "d"}, "spec": {"attachRequired": false}});
        apply("CSIDriver", driver.as_object_mut().unwrap());
        assert_eq!(
            driver["spec"],
            json!({
                "attachRequired": false, "podInfoOnMount": false, "storageCapacity": false,
                "fsGroupPolicy": "ReadWriteOnceWithFSType", "volumeLifecycleModes": ["Persistent"],
                "requiresRepublish": false, "seLinuxMount": false
            })
        );
    }
}
