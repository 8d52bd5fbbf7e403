//! Defaults of a PodSpec, shared by Pod and every pod template (PodTemplate, workload
//! controllers, Jobs and CronJobs).

use serde_json::{json, Value};

use super::fields::{default_string, default_unset, for_each_object, struct_mut, Object};
use super::{container, volume};

/// Seconds a pod gets between SIGTERM and SIGKILL unless it asks for another period.
const TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;

/// Defaults a PodSpec in place.
pub(crate) fn apply(spec: &mut Object) {
    default_string(spec, "dnsPolicy", "ClusterFirst");
    default_string(spec, "restartPolicy", "Always");
    default_unset(spec, "securityContext", json!({}));
    default_unset(
        spec,
        "terminationGracePeriodSeconds",
        Value::from(TERMINATION_GRACE_PERIOD_SECONDS),
    );
    default_string(spec, "schedulerName", "default-scheduler");
    for_each_object(spec, "volumes", volume::apply);
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        for_each_object(spec, key, container::apply);
    }
}

/// Defaults the `spec` of a PodTemplateSpec; templates get only PodSpec defaults, never the
/// Pod-only ones (service links, requests from limits).
pub(crate) fn apply_template(template: &mut Object) {
    if let Some(spec) = struct_mut(template, "spec") {
        apply(spec);
    }
}

/// The non-empty labels of a workload's pod template (`spec.template.metadata.labels`), which
/// the workload's own labels (and a replication controller's selector) fall back to.
pub(crate) fn template_labels(workload: &Object) -> Option<Value> {
    workload
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.as_object().is_some_and(|l| !l.is_empty()))
        .cloned()
}

/// Defaults the pod template at `key` of a workload spec, when there is one.
pub(crate) fn apply_template_at(workload_spec: &mut Object, key: &str) {
    if let Some(template) = struct_mut(workload_spec, key) {
        apply_template(template);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_spec_is_defaulted_without_pod_only_fields() {
        let mut template = json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {"limits": {"cpu": "1"}}}]}
        });
        apply_template(template.as_object_mut().unwrap());
        assert_eq!(
            template,
            json!({
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "nginx", "image": "nginx", "resources": {"limits": {"cpu": "1"}},
                        "imagePullPolicy": "Always",
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"
                    }],
                    "dnsPolicy": "ClusterFirst",
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                    "terminationGracePeriodSeconds": 30
                }
            })
        );
    }

    #[test]
    fn explicit_spec_values_win() {
        let mut spec = json!({
            "dnsPolicy": "None", "restartPolicy": "Never", "securityContext": {"runAsUser": 1000},
            "terminationGracePeriodSeconds": 0, "schedulerName": "custom", "containers": []
        });
        let expected = spec.clone();
        apply(spec.as_object_mut().unwrap());
        assert_eq!(spec, expected);
    }

    #[test]
    fn init_and_ephemeral_containers_and_volumes() {
        let mut spec = json!({
            "initContainers": [{"name": "init", "image": "busybox:1.36"}],
            "ephemeralContainers": [{"name": "debug", "image": "busybox"}],
            "volumes": [{"name": "v"}]
        });
        apply(spec.as_object_mut().unwrap());
        assert_eq!(
            spec["initContainers"][0]["imagePullPolicy"],
            json!("IfNotPresent")
        );
        assert_eq!(
            spec["ephemeralContainers"][0]["imagePullPolicy"],
            json!("Always")
        );
        assert_eq!(
            spec["ephemeralContainers"][0]["terminationMessagePolicy"],
            json!("File")
        );
        assert_eq!(spec["volumes"], json!([{"name": "v", "emptyDir": {}}]));
    }
}
