//! Defaults only a Pod gets, on top of the PodSpec defaults its templates share.

use serde_json::Value;

use super::fields::{default_unset, for_each_object, object_mut, struct_mut, Object};
use super::pod_spec;

/// Defaults a Pod object in place.
pub(crate) fn apply(pod: &mut Object) {
    let Some(spec) = struct_mut(pod, "spec") else {
        return;
    };
    for key in ["containers", "initContainers"] {
        for_each_object(spec, key, requests_from_limits);
    }
    default_unset(spec, "enableServiceLinks", Value::Bool(true));
    if spec.get("hostNetwork") == Some(&Value::Bool(true)) {
        for key in ["containers", "initContainers"] {
            for_each_object(spec, key, |container| {
                for_each_object(container, "ports", host_port_from_container_port);
            });
        }
    }
    pod_spec::apply(spec);
}

/// A container that sets only limits for a resource requests exactly that much.
fn requests_from_limits(container: &mut Object) {
    let Some(resources) = object_mut(container, "resources") else {
        return;
    };
    let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    let requests = match resources.get("requests") {
        None | Some(Value::Null) => Some(Object::new()),
        Some(Value::Object(existing)) => Some(existing.clone()),
        Some(_) => None,
    };
    let Some(mut requests) = requests else {
        return;
    };
    for (name, quantity) in limits {
        requests.entry(name).or_insert(quantity);
    }
    if !requests.is_empty() {
        resources.insert("requests".into(), Value::Object(requests));
    }
}

/// On the host network a container port is also a host port.
fn host_port_from_container_port(port: &mut Object) {
    let host_port_unset = match port.get("hostPort") {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => n.as_i64() == Some(0),
        Some(_) => false,
    };
    let container_port = port
        .get("containerPort")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if host_port_unset && container_port != 0 {
        port.insert("hostPort".into(), Value::from(container_port));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaulted(mut pod: Value) -> Value {
        apply(pod.as_object_mut().unwrap());
        pod
    }

    #[test]
    fn kubectl_run_pod() {
        // The body of `kubectl run nginx --image=nginx`.
        let input = json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "nginx", "creationTimestamp": null, "labels": {"run": "nginx"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}],
                     "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"},
            "status": {}
        });
        assert_eq!(
            defaulted(input),
            json!({
                "kind": "Pod", "apiVersion": "v1",
                "metadata": {"name": "nginx", "creationTimestamp": null, "labels": {"run": "nginx"}},
                "spec": {
                    "containers": [{
                        "name": "nginx", "image": "nginx", "resources": {},
                        "imagePullPolicy": "Always",
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"
                    }],
                    "restartPolicy": "Always",
                    "dnsPolicy": "ClusterFirst",
                    "enableServiceLinks": true,
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                    "terminationGracePeriodSeconds": 30
                },
                "status": {}
            })
        );
    }

    #[test]
    fn requests_default_to_limits_per_resource() {
        let out = defaulted(json!({"spec": {
            "containers": [
                {"name": "a", "image": "x:1", "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}}},
                {"name": "b", "image": "x:1", "resources": {"limits": {"memory": "1Gi"}}},
                {"name": "c", "image": "x:1", "resources": {"limits": {}}}
            ],
            "initContainers": [{"name": "i", "image": "x:1", "resources": {"limits": {"cpu": "1"}}}]
        }}));
        let spec = &out["spec"];
        assert_eq!(
            spec["containers"][0]["resources"]["requests"],
            json!({"cpu": "100m", "memory": "128Mi"})
        );
        assert_eq!(
            spec["containers"][1]["resources"]["requests"],
            json!({"memory": "1Gi"})
        );
        assert_eq!(spec["containers"][2]["resources"], json!({"limits": {}}));
        assert_eq!(
            spec["initContainers"][0]["resources"]["requests"],
            json!({"cpu": "1"})
        );
    }

    #[test]
    fn host_network_copies_container_ports() {
        let out = defaulted(
            json!({"spec": {"hostNetwork": true, "enableServiceLinks": false, "containers": [
                {"name": "a", "image": "x:1", "ports": [{"containerPort": 8080}, {"containerPort": 9090, "hostPort": 9090}]}
            ]}}),
        );
        assert_eq!(
            out["spec"]["containers"][0]["ports"],
            json!([
                {"containerPort": 8080, "hostPort": 8080, "protocol": "TCP"},
                {"containerPort": 9090, "hostPort": 9090, "protocol": "TCP"}
            ])
        );
        assert_eq!(out["spec"]["enableServiceLinks"], json!(false));
    }

    #[test]
    fn malformed_pods_do_not_panic() {
        for input in [
            json!({"spec": "x"}),
            json!({"spec": {"containers": "x", "volumes": [1, null]}}),
        ] {
            let out = defaulted(input.clone());
            assert_eq!(out["spec"].is_string(), input["spec"].is_string());
        }
    }
}
