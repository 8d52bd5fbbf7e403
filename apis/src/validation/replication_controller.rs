//! ReplicationControllers (core): upstream `ValidateReplicationControllerSpec` — a non-empty
//! label-map selector that the template's labels match, non-negative counts, and a pod
//! template that restarts always.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::path::Path;
use super::pod_spec::{template_labels, validate_pod_template_spec};
use super::workload::{non_negative, restart_always_only_without_deadline, spec_of};
use serde_json::Value;

pub fn validate_spec(obj: &Value, errs: &mut Errors) {
    let path = Path::new("spec");
    let spec = spec_of(obj);
    non_negative(spec, "minReadySeconds", &path, errs);
    let selector = access::string_map(spec, "selector", &path, errs);
    if selector.is_empty() {
        errs.push(FieldError::required(&path.child("selector"), ""));
    }
    non_negative(spec, "replicas", &path, errs);
    let tpath = path.child("template");
    let Some(template) = access::object(spec, "template", &path, errs) else {
        errs.push(FieldError::required(&tpath, ""));
        return;
    };
    let labels = template_labels(template);
    if !selector.iter().all(|s| labels.contains(s)) {
        errs.push(FieldError::invalid(
            &tpath.child("metadata").child("labels"),
            super::pod_spec::template_labels_value(template),
            "selector does not match template labels",
        ));
    }
    validate_pod_template_spec(template, &tpath, errs);
    restart_always_only_without_deadline(template, &tpath, "ReplicationController", errs);
}
