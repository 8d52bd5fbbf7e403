//! Storage: PersistentVolumeClaims and PersistentVolumes (core), StorageClasses
//! (`storage.k8s.io`) — the essentials of upstream's checks, with its paths and messages.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::names::is_qualified_name;
use super::path::Path;
use super::quantity::Quantity;
use super::selector::validate_label_selector;
use serde_json::Value;

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];
const RECLAIM_POLICIES: &[&str] = &["Delete", "Retain"];
const PV_RECLAIM_POLICIES: &[&str] = &["Delete", "Recycle", "Retain"];
const BINDING_MODES: &[&str] = &["Immediate", "WaitForFirstConsumer"];

/// The volume sources a PersistentVolume may name (exactly one).
const PV_SOURCES: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "csi",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "glusterfs",
    "hostPath",
    "iscsi",
    "local",
    "nfs",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "rbd",
    "scaleIO",
    "storageos",
    "vsphereVolume",
];

fn access_modes(spec: &Value, path: &Path, required_detail: &str, errs: &mut Errors) {
    let modes: Vec<&str> = access::array(spec, "accessModes", path, errs)
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let modes_path = path.child("accessModes");
    if modes.is_empty() {
        errs.push(FieldError::required(&modes_path, required_detail));
    }
    for mode in &modes {
        if !ACCESS_MODES.contains(mode) {
            errs.push(FieldError::not_supported(&modes_path, *mode, ACCESS_MODES));
        }
    }
    if modes.contains(&"ReadWriteOncePod") && modes.len() > 1 {
        errs.push(FieldError::forbidden(
            &modes_path,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

fn volume_mode(spec: &Value, path: &Path, errs: &mut Errors) {
    if let Some(mode) = access::string(spec, "volumeMode", path, errs) {
        if !VOLUME_MODES.contains(&mode) {
            errs.push(FieldError::not_supported(
                &path.child("volumeMode"),
                mode,
                VOLUME_MODES,
            ));
        }
    }
}

/// A positive `storage` quantity under `list[storage]`.
fn positive_storage(list: Option<&Value>, path: &Path, errs: &mut Errors) {
    let storage = list.and_then(|l| access::get(l, "storage"));
    let Some(value) = storage else {
        errs.push(FieldError::required(path, ""));
        return;
    };
    match Quantity::from_json(value) {
        Some(q) if Quantity::parse("0").is_some_and(|zero| q.cmp_value(&zero).is_gt()) => {}
        Some(_) => errs.push(FieldError::invalid(
            path,
            value.clone(),
            "must be greater than zero",
        )),
        None => errs.push(FieldError::invalid(
            path,
            value.clone(),
            super::quantity::QUANTITY_SYNTAX_ERROR,
        )),
    }
}

/// Upstream `ValidatePersistentVolumeClaimSpec`: access modes, a positive storage request,
/// the selector and the volume mode.
pub fn validate_claim(obj: &Value, errs: &mut Errors) {
    let path = Path::new("spec");
    let spec = access::get(obj, "spec").unwrap_or(&Value::Null);
    access_modes(spec, &path, "at least 1 access mode is required", errs);
    if let Some(sel) = access::object(spec, "selector", &path, errs) {
        validate_label_selector(sel, &path.child("selector"), errs);
    }
    let requests = access::get(spec, "resources").and_then(|r| access::get(r, "requests"));
    positive_storage(requests, &path.child("resources").key("storage"), errs);
    volume_mode(spec, &path, errs);
}

/// Upstream `ValidatePersistentVolumeSpec` essentials: access modes, a storage capacity and
/// exactly one volume source.
pub fn validate_volume(obj: &Value, errs: &mut Errors) {
    let path = Path::new("spec");
    let spec = access::get(obj, "spec").unwrap_or(&Value::Null);
    access_modes(spec, &path, "", errs);
    let capacity = access::object(spec, "capacity", &path, errs);
    if capacity
        .and_then(Value::as_object)
        .is_none_or(|c| c.is_empty())
    {
        errs.push(FieldError::required(&path.child("capacity"), ""));
    } else {
        positive_storage(capacity, &path.child("capacity").key("storage"), errs);
    }
    let sources = PV_SOURCES
        .iter()
        .filter(|s| access::get(spec, s).is_some())
        .count();
    if sources == 0 {
        errs.push(FieldError::required(&path, "must specify a volume type"));
    } else if sources > 1 {
        errs.push(FieldError::forbidden(
            &path,
            "may not specify more than 1 volume type",
        ));
    }
    if let Some(policy) = access::string(spec, "persistentVolumeReclaimPolicy", &path, errs) {
        if !PV_RECLAIM_POLICIES.contains(&policy) {
            errs.push(FieldError::not_supported(
                &path.child("persistentVolumeReclaimPolicy"),
                policy,
                PV_RECLAIM_POLICIES,
            ));
        }
    }
    volume_mode(spec, &path, errs);
}

/// Upstream `ValidateStorageClass` essentials: a qualified provisioner name, a supported
/// reclaim policy and volume binding mode.
pub fn validate_storage_class(obj: &Value, errs: &mut Errors) {
    let root = Path::new("");
    let provisioner = access::str_or_empty(obj, "provisioner", &root, errs);
    let provisioner_path = Path::new("provisioner");
    if provisioner.is_empty() {
        errs.push(FieldError::required(&provisioner_path, ""));
    } else {
        for msg in is_qualified_name(&provisioner.to_lowercase()) {
            errs.push(FieldError::invalid(&provisioner_path, provisioner, &msg));
        }
    }
    if let Some(policy) = access::string(obj, "reclaimPolicy", &root, errs) {
        if !RECLAIM_POLICIES.contains(&policy) {
            errs.push(FieldError::not_supported(
                &Path::new("reclaimPolicy"),
                policy,
                RECLAIM_POLICIES,
            ));
        }
    }
    match access::string(obj, "volumeBindingMode", &root, errs) {
        None => errs.push(FieldError::required(&Path::new("volumeBindingMode"), "")),
        Some(mode) if !BINDING_MODES.contains(&mode) => errs.push(FieldError::not_supported(
            &Path::new("volumeBindingMode"),
            mode,
            BINDING_MODES,
        )),
        Some(_) => {}
    }
}

/// Upstream `ValidateStorageClassUpdate`: parameters, provisioner, reclaim policy and binding
/// mode are fixed once created.
pub fn validate_storage_class_update(new: &Value, old: &Value, errs: &mut Errors) {
    for (field, what) in [
        ("parameters", "parameters"),
        ("provisioner", "provisioner"),
        ("reclaimPolicy", "reclaimPolicy"),
    ] {
        if access::get(new, field) != access::get(old, field) {
            errs.push(FieldError::forbidden(
                &Path::new(field),
                &format!("updates to {what} are forbidden."),
            ));
        }
    }
    super::metadata::immutable(
        access::get(new, "volumeBindingMode"),
        access::get(old, "volumeBindingMode"),
        &Path::new("volumeBindingMode"),
        errs,
    );
}
