//! Defaults of pod volumes and of the volume sources persistent volumes share with them.

use serde_json::{json, Value};

use super::fields::{default_string, default_unset, for_each_object, is_unset, object_mut, Object};
use super::{field_ref, persistent_volume};

/// File mode (0644) of files projected from secrets, config maps and the downward API.
const DEFAULT_FILE_MODE: i64 = 0o644;
/// Lifetime of a projected service-account token: one hour.
const TOKEN_EXPIRATION_SECONDS: i64 = 3600;

/// Every volume source a `Volume` may name; a volume naming none of them is an `emptyDir`.
const SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

/// Defaults one entry of `spec.volumes`.
pub(crate) fn apply(volume: &mut Object) {
    if SOURCES.iter().all(|source| is_unset(volume, source)) {
        volume.insert("emptyDir".into(), json!({}));
    }
    if let Some(source) = object_mut(volume, "hostPath") {
        host_path(source);
    }
    for key in ["secret", "configMap"] {
        if let Some(source) = object_mut(volume, key) {
            default_mode(source);
        }
    }
    if let Some(source) = object_mut(volume, "downwardAPI") {
        default_mode(source);
        for_each_object(source, "items", field_ref::apply_in);
    }
    if let Some(source) = object_mut(volume, "projected") {
        projected(source);
    }
    if let Some(source) = object_mut(volume, "iscsi") {
        iscsi(source);
    }
    if let Some(source) = object_mut(volume, "rbd") {
        rbd(source);
    }
    if let Some(source) = object_mut(volume, "azureDisk") {
        azure_disk(source);
    }
    if let Some(source) = object_mut(volume, "scaleIO") {
        scale_io(source);
    }
    let claim_spec = object_mut(volume, "ephemeral")
        .and_then(|e| object_mut(e, "volumeClaimTemplate"))
        .and_then(|t| object_mut(t, "spec"));
    if let Some(spec) = claim_spec {
        persistent_volume::claim_spec(spec);
    }
}

fn default_mode(source: &mut Object) {
    default_unset(source, "defaultMode", Value::from(DEFAULT_FILE_MODE));
}

fn projected(source: &mut Object) {
    default_mode(source);
    for_each_object(source, "sources", |projection| {
        if let Some(downward) = object_mut(projection, "downwardAPI") {
            for_each_object(downward, "items", field_ref::apply_in);
        }
        if let Some(token) = object_mut(projection, "serviceAccountToken") {
            default_unset(
                token,
                "expirationSeconds",
                Value::from(TOKEN_EXPIRATION_SECONDS),
            );
        }
    });
}

/// An unset `hostPath.type` is stored as "" (no check on what is at the path).
pub(crate) fn host_path(source: &mut Object) {
    default_unset(source, "type", Value::String(String::new()));
}

pub(crate) fn iscsi(source: &mut Object) {
    default_string(source, "iscsiInterface", "default");
}

pub(crate) fn rbd(source: &mut Object) {
    default_string(source, "pool", "rbd");
    default_string(source, "user", "admin");
    default_string(source, "keyring", "/etc/ceph/keyring");
}

pub(crate) fn azure_disk(source: &mut Object) {
    default_unset(source, "cachingMode", "ReadWrite".into());
    default_unset(source, "kind", "Shared".into());
    default_unset(source, "fsType", "ext4".into());
    default_unset(source, "readOnly", false.into());
}

pub(crate) fn scale_io(source: &mut Object) {
    default_string(source, "storageMode", "ThinProvisioned");
    default_string(source, "fsType", "xfs");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(mut volume: Value) -> Value {
        apply(volume.as_object_mut().unwrap());
        volume
    }

    #[test]
    fn volume_without_source_is_empty_dir() {
        assert_eq!(
            defaulted(json!({"name": "scratch"})),
            json!({"name": "scratch", "emptyDir": {}})
        );
        assert_eq!(
            defaulted(json!({"name": "tmp", "emptyDir": {"medium": "Memory"}})),
            json!({"name": "tmp", "emptyDir": {"medium": "Memory"}})
        );
    }

    #[test]
    fn file_sources_get_mode_420() {
        assert_eq!(
            defaulted(json!({"name": "s", "secret": {"secretName": "x"}})),
            json!({"name": "s", "secret": {"secretName": "x", "defaultMode": 420}})
        );
        assert_eq!(
            defaulted(json!({"name": "c", "configMap": {"name": "x", "defaultMode": 256}})),
            json!({"name": "c", "configMap": {"name": "x", "defaultMode": 256}})
        );
        assert_eq!(
            defaulted(
                json!({"name": "d", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}})
            ),
            json!({"name": "d", "downwardAPI": {"defaultMode": 420, "items": [{"path": "labels", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}}]}})
        );
    }

    #[test]
    fn projected_service_account_token_volume() {
        let out = defaulted(json!({"name": "kube-api-access", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt"}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}
        ]}}));
        assert_eq!(
            out,
            json!({"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                {"configMap": {"name": "kube-root-ca.crt"}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ]}})
        );
    }

    #[test]
    fn host_path_and_legacy_sources() {
        assert_eq!(
            defaulted(json!({"name": "h", "hostPath": {"path": "/var/log"}})),
            json!({"name": "h", "hostPath": {"path": "/var/log", "type": ""}})
        );
        assert_eq!(
            defaulted(json!({"name": "r", "rbd": {"monitors": ["m"], "image": "i"}}))["rbd"],
            json!({"monitors": ["m"], "image": "i", "pool": "rbd", "user": "admin", "keyring": "/etc/ceph/keyring"})
        );
        assert_eq!(
            defaulted(json!({"name": "a", "azureDisk": {"diskName": "d", "diskURI": "u"}}))
                ["azureDisk"],
            json!({"diskName": "d", "diskURI": "u", "cachingMode": "ReadWrite", "kind": "Shared", "fsType": "ext4", "readOnly": false})
        );
        assert_eq!(
            defaulted(json!({"name": "i", "iscsi": {"targetPortal": "p"}}))["iscsi"]
                ["iscsiInterface"],
            json!("default")
        );
        assert_eq!(
            defaulted(json!({"name": "s", "scaleIO": {"system": "s"}}))["scaleIO"],
            json!({"system": "s", "storageMode": "ThinProvisioned", "fsType": "xfs"})
        );
    }

    #[test]
    fn ephemeral_claim_template_gets_volume_mode() {
        let out = defaulted(
            json!({"name": "e", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}}),
        );
        assert_eq!(
            out["ephemeral"]["volumeClaimTemplate"]["spec"],
            json!({"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"})
        );
    }
}
