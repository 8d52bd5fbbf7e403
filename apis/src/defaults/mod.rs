//! Defaulting of the built-in types, as upstream's apiserver applies it to every object it
//! decodes (request bodies on create, update and patch, and objects read back from storage).
//!
//! Defaults work on the JSON the client sent, so unknown fields and the exact input survive;
//! they fill only fields that are unset, and leave malformed values for validation to reject.
//! Shared structures (pod templates, containers, probes, volumes, claims) are defaulted by
//! one function each, whichever object contains them.
//!
//! Values the registries set on create (a Pod's `status.phase: Pending` and `qosClass`, a
//! Namespace's `spec.finalizers`, a Service's cluster IPs and IP families, a Job's selector)
//! are not defaults and are not set here.

mod admissionregistration;
mod apiextensions;
mod apps;
mod autoscaling;
mod batch;
mod container;
mod core;
mod discovery;
mod field_ref;
mod fields;
mod flowcontrol;
mod image;
mod limit_range;
mod namespace;
mod networking;
mod persistent_volume;
mod pod;
mod pod_spec;
mod probe;
mod rbac;
mod scheduling;
mod service;
mod storage;
mod volume;

use serde_json::Value;

/// Applies upstream's defaults to `obj` (the JSON of an object of that group/kind, as a client
/// sent it) in place. The core group is `""`; kinds without defaults, and anything that is not
/// a JSON object, are left untouched.
pub fn apply(group: &str, kind: &str, obj: &mut Value) {
    let Some(obj) = obj.as_object_mut() else {
        return;
    };
    match group {
        "" | "core" => core::apply(kind, obj),
        "apps" => apps::apply(kind, obj),
        "batch" => batch::apply(kind, obj),
        "autoscaling" => autoscaling::apply(kind, obj),
        "discovery.k8s.io" => discovery::apply(kind, obj),
        "networking.k8s.io" => networking::apply(kind, obj),
        "rbac.authorization.k8s.io" => rbac::apply(kind, obj),
        "scheduling.k8s.io" => scheduling::apply(kind, obj),
        "storage.k8s.io" => storage::apply(kind, obj),
        "admissionregistration.k8s.io" => admissionregistration::apply(kind, obj),
        "flowcontrol.apiserver.k8s.io" => flowcontrol::apply(kind, obj),
        "apiextensions.k8s.io" => apiextensions::apply(kind, obj),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dispatches_by_group_and_kind() {
        let mut secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}});
        apply("", "Secret", &mut secret);
        assert_eq!(secret["type"], json!("Opaque"));

        let mut deployment = json!({"spec": {}});
        apply("apps", "Deployment", &mut deployment);
        assert_eq!(deployment["spec"]["replicas"], json!(1));

        let mut pc = json!({"value": 1});
        apply("scheduling.k8s.io", "PriorityClass", &mut pc);
        assert_eq!(pc["preemptionPolicy"], json!("PreemptLowerPriority"));
    }

    #[test]
    fn same_kind_in_another_group_is_not_confused() {
        let mut obj = json!({"spec": {}});
        apply("example.com", "Deployment", &mut obj);
        assert_eq!(obj, json!({"spec": {}}));
        let mut event = json!({"reason": "x"});
        apply("events.k8s.io", "Event", &mut event);
        assert_eq!(event, json!({"reason": "x"}));
    }

    #[test]
    fn defaulting_is_idempotent() {
        let mut pod = json!({"spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
            "livenessProbe": {"httpGet": {"port": 80}}, "resources": {"limits": {"cpu": "1"}}}],
            "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "s"}}]}});
        apply("", "Pod", &mut pod);
        let once = pod.clone();
        apply("", "Pod", &mut pod);
        assert_eq!(pod, once);
    }

    #[test]
    fn non_objects_and_wrong_shapes_never_panic() {
        let inputs = [
            json!(null),
            json!([1, 2]),
            json!("pod"),
            json!({"spec": null}),
            json!({"spec": 5}),
            json!({"spec": {"template": "x", "strategy": [], "updateStrategy": 1, "jobTemplate": {"spec": 3}}}),
            json!({"spec": {"containers": [null, 1, {"image": null, "probe": {}}], "volumes": {}}}),
            json!({"metadata": 3, "status": "x", "subsets": [{"ports": [7]}], "webhooks": [{"rules": 1}]}),
        ];
        let kinds = [
            ("", "Pod"),
            ("", "Service"),
            ("", "Namespace"),
            ("", "ReplicationController"),
            ("", "Node"),
            ("", "LimitRange"),
            ("", "PersistentVolume"),
            ("", "PersistentVolumeClaim"),
            ("", "Endpoints"),
            ("", "PodTemplate"),
            ("apps", "Deployment"),
            ("apps", "StatefulSet"),
            ("apps", "DaemonSet"),
            ("batch", "Job"),
            ("batch", "CronJob"),
            ("autoscaling", "HorizontalPodAutoscaler"),
            ("networking.k8s.io", "NetworkPolicy"),
            ("rbac.authorization.k8s.io", "RoleBinding"),
            ("storage.k8s.io", "CSIDriver"),
            (
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration",
            ),
            ("discovery.k8s.io", "EndpointSlice"),
            ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
            ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ];
        for input in &inputs {
            for (group, kind) in kinds {
                let mut obj = input.clone();
                apply(group, kind, &mut obj);
                if !input.is_object() {
                    assert_eq!(&obj, input);
                }
            }
        }
    }
}
