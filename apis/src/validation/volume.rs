//! Pod volumes: unique DNS-label names, exactly one source each, and the common sources' own
//! required fields.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::names::is_dns1123_label;
use super::path::Path;
use serde_json::Value;

/// Volume sources in the order upstream checks them.
const SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "csi",
    "projected",
    "scaleIO",
    "storageos",
    "ephemeral",
    "image",
];

const FILE_MODE_ERROR: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// Upstream `validatePathNoBacksteps` + absolute check (`validateLocalDescendingPath`).
pub fn validate_local_descending_path(target: &str, path: &Path, errs: &mut Errors) {
    if target.starts_with('/') {
        errs.push(FieldError::invalid(path, target, "must be a relative path"));
    }
    if target
        .replace('\\', "/")
        .split('/')
        .any(|part| part == "..")
    {
        errs.push(FieldError::invalid(path, target, "must not contain '..'"));
    }
}

fn validate_local_non_reserved_path(target: &str, path: &Path, errs: &mut Errors) {
    validate_local_descending_path(target, path, errs);
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(FieldError::invalid(
            path,
            target,
            "must not start with '..'",
        ));
    }
}

fn validate_mode(obj: &Value, key: &str, path: &Path, errs: &mut Errors) {
    if let Some(mode) = access::integer(obj, key, path, errs) {
        if !(0..=0o777).contains(&mode) {
            errs.push(FieldError::invalid(&path.child(key), mode, FILE_MODE_ERROR));
        }
    }
}

fn validate_items(src: &Value, path: &Path, errs: &mut Errors) {
    let items_path = path.child("items");
    for (i, item) in access::array(src, "items", path, errs).iter().enumerate() {
        let p = items_path.index(i);
        if access::str_or_empty(item, "key", &p, errs).is_empty() {
            errs.push(FieldError::required(&p.child("key"), ""));
        }
        let target = access::str_or_empty(item, "path", &p, errs);
        if target.is_empty() {
            errs.push(FieldError::required(&p.child("path"), ""));
        }
        validate_local_non_reserved_path(target, &p.child("path"), errs);
        validate_mode(item, "mode", &p, errs);
    }
}

fn required_string(src: &Value, key: &str, path: &Path, errs: &mut Errors) {
    if access::str_or_empty(src, key, path, errs).is_empty() {
        errs.push(FieldError::required(&path.child(key), ""));
    }
}

fn validate_source(kind: &str, src: &Value, path: &Path, errs: &mut Errors) {
    match kind {
        "hostPath" => required_string(src, "path", path, errs),
        "secret" => {
            required_string(src, "secretName", path, errs);
            validate_mode(src, "defaultMode", path, errs);
            validate_items(src, path, errs);
        }
        "configMap" => {
            required_string(src, "name", path, errs);
            validate_mode(src, "defaultMode", path, errs);
            validate_items(src, path, errs);
        }
        "persistentVolumeClaim" => required_string(src, "claimName", path, errs),
        "nfs" => {
            required_string(src, "server", path, errs);
            let p = access::str_or_empty(src, "path", path, errs);
            if p.is_empty() {
                errs.push(FieldError::required(&path.child("path"), ""));
            } else if !p.starts_with('/') {
                errs.push(FieldError::invalid(
                    &path.child("path"),
                    p,
                    "must be an absolute path",
                ));
            }
        }
        "csi" => required_string(src, "driver", path, errs),
        "downwardAPI" | "projected" => validate_mode(src, "defaultMode", path, errs),
        "emptyDir" => {
            if let Some(limit) = access::get(src, "sizeLimit") {
                let negative =
                    super::quantity::Quantity::from_json(limit).is_none_or(|q| q.is_negative());
                if negative {
                    errs.push(FieldError::forbidden(
                        &path.child("sizeLimit"),
                        "SizeLimit field must be a valid resource quantity",
                    ));
                }
            }
        }
        _ => {}
    }
}

/// Upstream `ValidateVolumes`; returns the names of the volumes that validated, which
/// volumeMounts may reference.
pub fn validate_volumes(spec: &Value, path: &Path, errs: &mut Errors) -> Vec<String> {
    let vols_path = path.child("volumes");
    let mut valid: Vec<String> = Vec::new();
    for (i, vol) in access::array(spec, "volumes", path, errs)
        .iter()
        .enumerate()
    {
        let p = vols_path.index(i);
        let mut el = Errors::new();
        let mut source: Option<&str> = None;
        for kind in SOURCES {
            let Some(src) = access::get(vol, kind) else {
                continue;
            };
            if source.is_some() {
                el.push(FieldError::forbidden(
                    &p.child(kind),
                    "may not specify more than 1 volume type",
                ));
                continue;
            }
            source = Some(kind);
            validate_source(kind, src, &p.child(kind), &mut el);
        }
        if source.is_none() {
            el.push(FieldError::required(&p, "must specify a volume type"));
        }
        let name = access::str_or_empty(vol, "name", &p, &mut el);
        let name_path = p.child("name");
        if name.is_empty() {
            el.push(FieldError::required(&name_path, ""));
        } else {
            for msg in is_dns1123_label(name) {
                el.push(FieldError::invalid(&name_path, name, &msg));
            }
        }
        if valid.iter().any(|v| v == name) {
            el.push(FieldError::duplicate(&name_path, name));
        }
        if el.is_empty() {
            valid.push(name.to_string());
        } else {
            errs.extend(el);
        }
    }
    valid
}
