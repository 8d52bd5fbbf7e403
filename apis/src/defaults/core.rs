//! Defaulting of the core (`""`) API group: dispatch by kind, plus the kinds whose defaults
//! are a line or two.

use serde_json::Value;

use super::fields::{
    default_empty, default_string, default_unset, for_each_object, object_mut, struct_mut, Object,
};
use super::{limit_range, namespace, persistent_volume, pod, pod_spec, service};

/// Defaults a core-group object of `kind`; kinds without defaults are left untouched.
pub(crate) fn apply(kind: &str, obj: &mut Object) {
    match kind {
        "Pod" => pod::apply(obj),
        "PodTemplate" => pod_spec::apply_template_at(obj, "template"),
        "ReplicationController" => replication_controller(obj),
        "Service" => service::apply(obj),
        "Endpoints" => endpoints(obj),
        "Namespace" => namespace::apply(obj),
        "Secret" => default_string(obj, "type", "Opaque"),
        "Node" => node(obj),
        "LimitRange" => limit_range::apply(obj),
        "PersistentVolume" => persistent_volume::persistent_volume(obj),
        "PersistentVolumeClaim" => persistent_volume::claim(obj),
        _ => {}
    }
}

/// Endpoint ports are TCP unless they say otherwise.
fn endpoints(obj: &mut Object) {
    for_each_object(obj, "subsets", |subset| {
        for_each_object(subset, "ports", |port| {
            default_string(port, "protocol", "TCP")
        });
    });
}

/// A node reporting capacity but no allocatable can allocate all of its capacity.
fn node(obj: &mut Object) {
    let Some(status) = object_mut(obj, "status") else {
        return;
    };
    if let Some(capacity) = status.get("capacity").filter(|c| c.is_object()).cloned() {
        default_unset(status, "allocatable", capacity);
    }
}

/// One replica; selector and object labels fall back to the pod template's labels.
fn replication_controller(obj: &mut Object) {
    if let Some(labels) = pod_spec::template_labels(obj) {
        if let Some(spec) = object_mut(obj, "spec") {
            default_empty(spec, "selector", labels.clone());
        }
        if let Some(metadata) = struct_mut(obj, "metadata") {
            default_empty(metadata, "labels", labels);
        }
    }
    let Some(spec) = struct_mut(obj, "spec") else {
        return;
    };
    default_unset(spec, "replicas", Value::from(1));
    if let Some(template) = object_mut(spec, "template") {
        pod_spec::apply_template(template);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaulted(kind: &str, mut obj: Value) -> Value {
        apply(kind, obj.as_object_mut().unwrap());
        obj
    }

    #[test]
    fn secret_type_defaults_to_opaque() {
        assert_eq!(
            defaulted(
                "Secret",
                json!({"metadata": {"name": "s"}, "data": {"k": "dg=="}})
            ),
            json!({"metadata": {"name": "s"}, "data": {"k": "dg=="}, "type": "Opaque"})
        );
        let tls = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls"});
        assert_eq!(defaulted("Secret", tls.clone()), tls);
    }

    #[test]
    fn endpoints_ports_are_tcp() {
        assert_eq!(
            defaulted(
                "Endpoints",
                json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}]})
            ),
            json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}]})
        );
    }

    #[test]
    fn node_allocatable_from_capacity() {
        assert_eq!(
            defaulted(
                "Node",
                json!({"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "4", "pods": "110"}}})
            ),
            json!({"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "4", "pods": "110"}, "allocatable": {"cpu": "4", "pods": "110"}}})
        );
        let bare = json!({"metadata": {"name": "n"}, "spec": {}});
        assert_eq!(defaulted("Node", bare.clone()), bare);
    }

    #[test]
    fn replication_controller_from_template() {
        let out = defaulted(
            "ReplicationController",
            json!({"metadata": {"name": "rc"}, "spec": {"template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "c", "image": "x:1"}]}
            }}}),
        );
        assert_eq!(
            out,
            json!({"metadata": {"name": "rc", "labels": {"app": "x"}}, "spec": {
                "replicas": 1, "selector": {"app": "x"},
                "template": {"metadata": {"labels": {"app": "x"}}, "spec": {
                    "containers": [{"name": "c", "image": "x:1", "imagePullPolicy": "IfNotPresent",
                                    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
                    "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                    "securityContext": {}, "terminationGracePeriodSeconds": 30
                }}
            }})
        );
    }

    #[test]
    fn pod_template_gets_template_defaults_only() {
        let out = defaulted(
            "PodTemplate",
            json!({"template": {"spec": {"containers": [{"name": "c", "image": "x:1", "resources": {"limits": {"cpu": "1"}}}]}}}),
        );
        assert_eq!(out["template"]["spec"]["dnsPolicy"], json!("ClusterFirst"));
        assert!(out["template"]["spec"].get("enableServiceLinks").is_none());
        assert!(out["template"]["spec"]["containers"][0]["resources"]
            .get("requests")
            .is_none());
    }

    #[test]
    fn kinds_without_defaults_are_untouched() {
        for kind in [
            "ConfigMap",
            "ServiceAccount",
            "Event",
            "ResourceQuota",
            "Binding",
        ] {
            let obj = json!({"metadata": {"name": "x"}, "spec": {"hard": {"pods": "10"}}});
            assert_eq!(defaulted(kind, obj.clone()), obj, "{kind}");
        }
    }
}
