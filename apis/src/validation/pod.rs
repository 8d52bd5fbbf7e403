//! Pods: create-time checks on top of the pod spec, and the narrow set of spec changes an
//! update may make.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::metadata::{validate_object_meta, validate_object_meta_update, MetaRules};
use super::names::{inclusive_range_error, NameRule};
use super::path::Path;
use super::pod_spec::validate_pod_spec;
use super::toleration::validate_tolerations;
use serde_json::{Map, Value};

const RULES: MetaRules = MetaRules {
    namespaced: true,
    name: NameRule::Dns1123Subdomain,
    kube_finalizers: true,
};

const UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

fn spec_of(obj: &Value) -> &Value {
    access::get(obj, "spec").unwrap_or(&Value::Null)
}

fn validate_images_trimmed(spec: &Value, list: &str, errs: &mut Errors) {
    let path = Path::new("spec").child(list);
    let mut scratch = Errors::new();
    for (i, ctr) in access::array(spec, list, &Path::new("spec"), &mut scratch)
        .iter()
        .enumerate()
    {
        let image = access::get(ctr, "image")
            .and_then(Value::as_str)
            .unwrap_or("");
        if image.trim() != image {
            errs.push(FieldError::invalid(
                &path.index(i).child("image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
    }
}

/// Upstream `ValidatePodCreate`.
pub fn validate_pod_create(obj: &Value, errs: &mut Errors) {
    validate_object_meta(obj, RULES, errs);
    let spec_path = Path::new("spec");
    let spec = match access::object(obj, "spec", &Path::default(), errs) {
        Some(s) => s,
        None => &Value::Null,
    };
    validate_pod_spec(spec, &spec_path, errs);
    if !access::array(spec, "ephemeralContainers", &spec_path, errs).is_empty() {
        errs.push(FieldError::forbidden(
            &spec_path.child("ephemeralContainers"),
            "cannot be set on create",
        ));
    }
    let node_name = access::get(spec, "nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let gated = access::get(spec, "schedulingGates")
        .and_then(Value::as_array)
        .is_some_and(|g| !g.is_empty());
    if !node_name.is_empty() && gated {
        errs.push(FieldError::forbidden(
            &spec_path.child("nodeName"),
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    validate_images_trimmed(spec, "containers", errs);
    validate_images_trimmed(spec, "initContainers", errs);
}

/// Upstream `ValidateContainerUpdates`; `true` means stop (containers added or removed).
fn validate_container_updates(new: &Value, old: &Value, list: &str, errs: &mut Errors) -> bool {
    let path = Path::new("spec").child(list);
    let mut scratch = Errors::new();
    let n = access::array(new, list, &Path::new("spec"), &mut scratch);
    let o = access::array(old, list, &Path::new("spec"), &mut scratch);
    if n.len() != o.len() {
        errs.push(FieldError::forbidden(
            &path,
            "pod updates may not add or remove containers",
        ));
        return true;
    }
    for (i, ctr) in n.iter().enumerate() {
        let image = access::get(ctr, "image")
            .and_then(Value::as_str)
            .unwrap_or("");
        if image.is_empty() {
            errs.push(FieldError::required(&path.index(i).child("image"), ""));
        }
        if image.trim() != image {
            errs.push(FieldError::invalid(
                &path.index(i).child("image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
    }
    false
}

/// Upstream `validateOnlyAddedTolerations`: existing tolerations stay, except tolerationSeconds.
fn validate_only_added_tolerations(new: &[Value], old: &[Value], path: &Path, errs: &mut Errors) {
    let strip = |t: &Value| -> Value {
        let mut m: Map<String, Value> = t.as_object().cloned().unwrap_or_default();
        m.remove("tolerationSeconds");
        m.retain(|_, v| !v.is_null() && v != "");
        Value::Object(m)
    };
    for o in old {
        let want = strip(o);
        if !new.iter().any(|n| strip(n) == want) {
            errs.push(FieldError::forbidden(
                path,
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            return;
        }
    }
    validate_tolerations(new, path, errs);
}

fn set_images(spec: &mut Map<String, Value>, list: &str, from: &Value) {
    let old_images: Vec<Value> = access::get(from, list)
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|c| access::get(c, "image").cloned().unwrap_or(Value::Null))
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Array(ctrs)) = spec.get_mut(list) {
        for (ctr, image) in ctrs.iter_mut().zip(old_images) {
            if let Some(c) = ctr.as_object_mut() {
                c.insert("image".to_string(), image);
            }
        }
    }
}

/// Names of top-level spec fields that differ, a short stand-in for upstream's spec diff.
fn changed_fields(a: &Map<String, Value>, b: &Map<String, Value>) -> Vec<String> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !access::same(a.get(*k), b.get(*k)))
        .map(|k| format!("spec.{k}"))
        .collect()
}

/// Upstream `ValidatePodUpdate`.
pub fn validate_pod_update(new: &Value, old: &Value, errs: &mut Errors) {
    validate_object_meta_update(new, old, true, errs);
    let spec_path = Path::new("spec");
    let (ns, os) = (spec_of(new), spec_of(old));
    validate_pod_spec(ns, &spec_path, errs);
    if validate_container_updates(ns, os, "containers", errs)
        || validate_container_updates(ns, os, "initContainers", errs)
    {
        return;
    }
    let ads_path = spec_path.child("activeDeadlineSeconds");
    let new_ads = access::get(ns, "activeDeadlineSeconds").and_then(Value::as_i64);
    let old_ads = access::get(os, "activeDeadlineSeconds").and_then(Value::as_i64);
    match (new_ads, old_ads) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            errs.push(FieldError::invalid(
                &ads_path,
                n,
                &inclusive_range_error(0, i64::from(i32::MAX)),
            ));
            return;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid(
                &ads_path,
                n,
                "must be less than or equal to previous value",
            ));
            return;
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            &ads_path,
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    let mut scratch = Errors::new();
    let new_tol = access::array(ns, "tolerations", &spec_path, &mut scratch);
    let old_tol = access::array(os, "tolerations", &spec_path, &mut scratch);
    validate_only_added_tolerations(new_tol, old_tol, &spec_path.child("tolerations"), errs);
    let old_gates = access::array(os, "schedulingGates", &spec_path, &mut scratch);
    let new_gates = access::array(ns, "schedulingGates", &spec_path, &mut scratch);
    if new_gates.iter().any(|g| !old_gates.contains(g)) {
        errs.push(FieldError::forbidden(
            &spec_path.child("schedulingGates"),
            "only deletion is allowed, but found new scheduling gate",
        ));
    }
    let (Some(new_map), Some(old_map)) = (ns.as_object(), os.as_object()) else {
        return;
    };
    let mut munged = new_map.clone();
    set_images(&mut munged, "containers", os);
    set_images(&mut munged, "initContainers", os);
    for key in ["activeDeadlineSeconds", "tolerations", "schedulingGates"] {
        match old_map.get(key) {
            Some(v) => munged.insert(key.to_string(), v.clone()),
            None => munged.remove(key),
        };
    }
    let old_grace = old_map
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    let new_grace = munged
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    if old_grace.is_some_and(|g| g < 0) && new_grace == Some(1) {
        if let Some(g) = old_map.get("terminationGracePeriodSeconds") {
            munged.insert("terminationGracePeriodSeconds".to_string(), g.clone());
        }
    }
    let changed = changed_fields(&munged, old_map);
    if !changed.is_empty() {
        errs.push(FieldError::forbidden(
            &spec_path,
            &format!("{UPDATE_FORBIDDEN}\n  changed: {}", changed.join(", ")),
        ));
    }
}
