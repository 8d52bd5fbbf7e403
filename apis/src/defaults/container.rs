//! Defaults of a container, shared by containers, init containers and ephemeral containers.

use serde_json::Value;

use super::fields::{default_string, for_each_object, object_mut, string_of, Object};
use super::{field_ref, image, probe};

/// Where a container writes its termination message unless it says otherwise.
const TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

/// Applies the per-container defaults: pull policy, termination message, port protocols,
/// downward-API env vars, probes and lifecycle hooks.
pub(crate) fn apply(container: &mut Object) {
    if string_of(container, "imagePullPolicy") == Some("") {
        let image = container
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let policy = image::default_pull_policy(image);
        container.insert("imagePullPolicy".into(), policy.into());
    }
    default_string(
        container,
        "terminationMessagePath",
        TERMINATION_MESSAGE_PATH,
    );
    default_string(container, "terminationMessagePolicy", "File");
    for_each_object(container, "ports", |port| {
        default_string(port, "protocol", "TCP")
    });
    for_each_object(container, "env", |var| {
        if let Some(source) = object_mut(var, "valueFrom") {
            field_ref::apply_in(source);
        }
    });
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = object_mut(container, key) {
            probe::apply(p);
        }
    }
    if let Some(lifecycle) = object_mut(container, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(action) = object_mut(lifecycle, hook).and_then(|h| object_mut(h, "httpGet"))
            {
                probe::http_get(action);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaulted(mut container: Value) -> Value {
        apply(container.as_object_mut().unwrap());
        container
    }

    #[test]
    fn bare_container_gets_pull_policy_and_termination_message() {
        assert_eq!(
            defaulted(json!({"name": "c", "image": "busybox:1.36", "resources": {}})),
            json!({
                "name": "c",
                "image": "busybox:1.36",
                "resources": {},
                "imagePullPolicy": "IfNotPresent",
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File"
            })
        );
    }

    #[test]
    fn explicit_values_are_kept() {
        let input = json!({
            "name": "c",
            "image": "nginx",
            "imagePullPolicy": "Never",
            "terminationMessagePath": "/tmp/msg",
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "ports": [{"containerPort": 53, "protocol": "UDP"}]
        });
        assert_eq!(defaulted(input.clone()), input);
    }

    #[test]
    fn nested_parts_are_defaulted() {
        let out = defaulted(json!({
            "name": "c",
            "image": "nginx",
            "ports": [{"containerPort": 80}],
            "env": [
                {"name": "A", "value": "x"},
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
            ],
            "readinessProbe": {"tcpSocket": {"port": 80}},
            "lifecycle": {"preStop": {"httpGet": {"port": 80, "path": "/stop"}}, "postStart": {"exec": {"command": ["true"]}}}
        }));
        assert_eq!(out["imagePullPolicy"], json!("Always"));
        assert_eq!(
            out["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}])
        );
        assert_eq!(
            out["env"][1]["valueFrom"]["fieldRef"],
            json!({"fieldPath": "spec.nodeName", "apiVersion": "v1"})
        );
        assert_eq!(
            out["readinessProbe"],
            json!({"tcpSocket": {"port": 80}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(
            out["lifecycle"]["preStop"]["httpGet"],
            json!({"port": 80, "path": "/stop", "scheme": "HTTP"})
        );
        assert_eq!(
            out["lifecycle"]["postStart"],
            json!({"exec": {"command": ["true"]}})
        );
    }

    #[test]
    fn wrong_types_are_left_for_validation() {
        let out = defaulted(
            json!({"name": "c", "image": 7, "imagePullPolicy": 3, "ports": "80", "env": [1]}),
        );
        assert_eq!(out["imagePullPolicy"], json!(3));
        assert_eq!(out["ports"], json!("80"));
        assert_eq!(out["env"], json!([1]));
    }
}
