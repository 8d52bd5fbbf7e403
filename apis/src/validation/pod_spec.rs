//! `PodSpec` and `PodTemplateSpec`, shared by pods and every workload's template.

use super::access::{self, Errors};
use super::container::{
    validate_containers, validate_host_ports, validate_init_containers, validate_security_ids,
};
use super::field_error::FieldError;
use super::labels::{validate_annotations, validate_labels};
use super::names::{inclusive_range_error, is_dns1123_label, is_dns1123_subdomain};
use super::path::Path;
use super::toleration::validate_tolerations;
use super::volume::validate_volumes;
use serde_json::Value;

const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];

fn validate_subdomain_field(spec: &Value, key: &str, path: &Path, errs: &mut Errors) {
    let value = access::str_or_empty(spec, key, path, errs);
    if !value.is_empty() {
        for msg in is_dns1123_subdomain(value) {
            errs.push(FieldError::invalid(&path.child(key), value, &msg));
        }
    }
}

/// Upstream `ValidatePodSpec`.
pub fn validate_pod_spec(spec: &Value, path: &Path, errs: &mut Errors) {
    let volumes = validate_volumes(spec, path, errs);
    let names = validate_containers(spec, &volumes, path, errs);
    validate_init_containers(spec, &volumes, names, path, errs);
    validate_host_ports(spec, path, errs);
    let restart = access::str_or_empty(spec, "restartPolicy", path, errs);
    if restart.is_empty() {
        errs.push(FieldError::required(&path.child("restartPolicy"), ""));
    } else if !RESTART_POLICIES.contains(&restart) {
        errs.push(FieldError::not_supported(
            &path.child("restartPolicy"),
            restart,
            RESTART_POLICIES,
        ));
    }
    let dns = access::str_or_empty(spec, "dnsPolicy", path, errs);
    if dns.is_empty() {
        errs.push(FieldError::required(&path.child("dnsPolicy"), ""));
    } else if !DNS_POLICIES.contains(&dns) {
        errs.push(FieldError::not_supported(
            &path.child("dnsPolicy"),
            dns,
            DNS_POLICIES,
        ));
    }
    validate_labels(spec, "nodeSelector", path, errs);
    if let Some(sc) = access::object(spec, "securityContext", path, errs) {
        validate_security_ids(sc, &path.child("securityContext"), errs);
    }
    validate_subdomain_field(spec, "serviceAccountName", path, errs);
    validate_subdomain_field(spec, "nodeName", path, errs);
    if let Some(ads) = access::integer(spec, "activeDeadlineSeconds", path, errs) {
        if !(1..=i64::from(i32::MAX)).contains(&ads) {
            errs.push(FieldError::invalid(
                &path.child("activeDeadlineSeconds"),
                ads,
                &inclusive_range_error(1, i64::from(i32::MAX)),
            ));
        }
    }
    for key in ["hostname", "subdomain"] {
        let value = access::str_or_empty(spec, key, path, errs);
        if !value.is_empty() {
            for msg in is_dns1123_label(value) {
                errs.push(FieldError::invalid(&path.child(key), value, &msg));
            }
        }
    }
    let tolerations = access::array(spec, "tolerations", path, errs);
    validate_tolerations(tolerations, &path.child("tolerations"), errs);
    validate_subdomain_field(spec, "priorityClassName", path, errs);
    if let Some(policy) = access::string(spec, "preemptionPolicy", path, errs) {
        let valid = ["Never", "PreemptLowerPriority"];
        if !valid.contains(&policy) {
            errs.push(FieldError::not_supported(
                &path.child("preemptionPolicy"),
                policy,
                &valid,
            ));
        }
    }
    if let Some(grace) = access::integer(spec, "terminationGracePeriodSeconds", path, errs) {
        if grace < 0 {
            errs.push(FieldError::invalid(
                &path.child("terminationGracePeriodSeconds"),
                grace,
                "must be greater than or equal to 0",
            ));
        }
    }
    let pull_path = path.child("imagePullSecrets");
    for (i, s) in access::array(spec, "imagePullSecrets", path, errs)
        .iter()
        .enumerate()
    {
        if access::str_or_empty(s, "name", &pull_path.index(i), errs).is_empty() {
            errs.push(FieldError::required(&pull_path.index(i).child("name"), ""));
        }
    }
}

/// Upstream `ValidatePodTemplateSpec`. Note that, as upstream, the template's labels and
/// annotations are reported at `<path>.labels`, not `<path>.metadata.labels`.
pub fn validate_pod_template_spec(template: &Value, path: &Path, errs: &mut Errors) {
    let meta = access::object(template, "metadata", path, errs).unwrap_or(&Value::Null);
    validate_labels(meta, "labels", path, errs);
    validate_annotations(meta, "annotations", path, errs);
    let spec_path = path.child("spec");
    match access::object(template, "spec", path, errs) {
        Some(spec) => {
            validate_pod_spec(spec, &spec_path, errs);
            if !access::array(spec, "ephemeralContainers", &spec_path, errs).is_empty() {
                errs.push(FieldError::forbidden(
                    &spec_path.child("ephemeralContainers"),
                    "ephemeral containers not allowed in pod template",
                ));
            }
        }
        None => validate_pod_spec(&Value::Null, &spec_path, errs),
    }
}

/// The template's labels, for selector matching.
pub fn template_labels(template: &Value) -> Vec<(&str, &str)> {
    let mut scratch = Errors::new();
    let meta = access::get(template, "metadata").unwrap_or(&Value::Null);
    access::string_map(meta, "labels", &Path::default(), &mut scratch)
}

/// The template's labels as a JSON map, for error bad values.
pub fn template_labels_value(template: &Value) -> Value {
    access::get(template, "metadata")
        .and_then(|m| access::get(m, "labels"))
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()))
}
