//! Pieces shared by controllers that own pods through a selector and a pod template.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::path::Path;
use super::pod_spec::{template_labels, template_labels_value, validate_pod_template_spec};
use super::selector::{is_empty_selector, validate_label_selector, Selector};
use serde_json::Value;

pub fn spec_of(obj: &Value) -> &Value {
    access::get(obj, "spec").unwrap_or(&Value::Null)
}

/// A non-negative integer field of `obj`.
pub fn non_negative(obj: &Value, key: &str, path: &Path, errs: &mut Errors) {
    if let Some(v) = access::integer(obj, key, path, errs) {
        if v < 0 {
            errs.push(FieldError::invalid(
                &path.child(key),
                v,
                "must be greater than or equal to 0",
            ));
        }
    }
}

/// A required selector: present, valid and not empty (`empty selector is invalid for <what>`).
pub fn validate_required_selector(spec: &Value, what: &str, path: &Path, errs: &mut Errors) {
    let sel_path = path.child("selector");
    match access::object(spec, "selector", path, errs) {
        None => errs.push(FieldError::required(&sel_path, "")),
        Some(sel) => {
            validate_label_selector(sel, &sel_path, errs);
            if is_empty_selector(sel) {
                errs.push(FieldError::invalid(
                    &sel_path,
                    sel.clone(),
                    &format!("empty selector is invalid for {what}"),
                ));
            }
        }
    }
}

/// The selector converted for matching; `None` when malformed.
pub fn selector_of(spec: &Value) -> Option<Selector> {
    Selector::from_json(access::get(spec, "selector"))
}

/// The template must carry labels the selector selects.
pub fn check_selector_matches(
    selector: &Selector,
    template: &Value,
    path: &Path,
    errs: &mut Errors,
) {
    if !selector.matches(&template_labels(template)) {
        errs.push(FieldError::invalid(
            &path.child("metadata").child("labels"),
            template_labels_value(template),
            "`selector` does not match template `labels`",
        ));
    }
}

/// Upstream `ValidatePodTemplateSpecForReplicaSet` (Deployments and ReplicaSets).
pub fn validate_template_for_replica_set(
    spec: &Value,
    selector: &Selector,
    path: &Path,
    errs: &mut Errors,
) {
    let tpath = path.child("template");
    let Some(template) = access::object(spec, "template", path, errs) else {
        errs.push(FieldError::required(&tpath, ""));
        return;
    };
    if !selector.is_everything() {
        check_selector_matches(selector, template, &tpath, errs);
    }
    validate_pod_template_spec(template, &tpath, errs);
    restart_always_only_without_deadline(template, &tpath, "ReplicaSet", errs);
}

/// The template of a ReplicaSet or DaemonSet: `restartPolicy: Always` and no
/// `activeDeadlineSeconds`, which `kind` does not support.
pub fn restart_always_only_without_deadline(
    template: &Value,
    tpath: &Path,
    kind: &str,
    errs: &mut Errors,
) {
    restart_always_only(template, tpath, errs);
    if let Some(ads) = template_spec_field(template, "activeDeadlineSeconds") {
        errs.push(FieldError::invalid(
            &tpath.child("spec").child("activeDeadlineSeconds"),
            ads.clone(),
            &format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
}

pub fn template_spec_field<'a>(template: &'a Value, key: &str) -> Option<&'a Value> {
    access::get(template, "spec").and_then(|s| access::get(s, key))
}

/// Long-running controllers only accept `restartPolicy: Always` in their template.
pub fn restart_always_only(template: &Value, tpath: &Path, errs: &mut Errors) {
    let restart = template_spec_field(template, "restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("");
    if restart != "Always" {
        errs.push(FieldError::not_supported(
            &tpath.child("spec").child("restartPolicy"),
            restart,
            &["Always"],
        ));
    }
}
