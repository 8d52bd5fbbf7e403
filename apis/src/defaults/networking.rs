//! Defaulting of the `networking.k8s.io` group: NetworkPolicy and IngressClass.

use serde_json::{json, Value};

use super::fields::{default_unset, for_each_object, is_empty, object_mut, struct_mut, Object};

/// Defaults a `networking.k8s.io` object of `kind`; kinds without defaults are left untouched.
pub(crate) fn apply(kind: &str, obj: &mut Object) {
    match kind {
        "NetworkPolicy" => network_policy(obj),
        "IngressClass" => {
            let parameters = object_mut(obj, "spec").and_then(|s| object_mut(s, "parameters"));
            if let Some(parameters) = parameters {
                default_unset(parameters, "scope", Value::from("Cluster"));
            }
        }
        _ => {}
    }
}

/// Ports are TCP; a policy naming no types is an ingress policy, and an egress one too when it
/// has egress rules.
fn network_policy(obj: &mut Object) {
    let Some(spec) = struct_mut(obj, "spec") else {
        return;
    };
    for direction in ["ingress", "egress"] {
        for_each_object(spec, direction, |rule| {
            for_each_object(rule, "ports", |port| {
                default_unset(port, "protocol", Value::from("TCP"));
            });
        });
    }
    if is_empty(spec, "policyTypes") {
        let types = if is_empty(spec, "egress") {
            json!(["Ingress"])
        } else {
            json!(["Ingress", "Egress"])
        };
        spec.insert("policyTypes".into(), types);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(kind: &str, mut obj: Value) -> Value {
        apply(kind, obj.as_object_mut().unwrap());
        obj
    }

    #[test]
    fn network_policy_types_and_ports() {
        let out = defaulted(
            "NetworkPolicy",
            json!({"spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}}),
        );
        assert_eq!(
            out,
            json!({"spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 80, "protocol": "TCP"}]}], "policyTypes": ["Ingress"]}})
        );
        let out = defaulted(
            "NetworkPolicy",
            json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}}),
        );
        assert_eq!(out["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(
            out["spec"]["egress"][0]["ports"][0]["protocol"],
            json!("UDP")
        );
        let out = defaulted(
            "NetworkPolicy",
            json!({"spec": {"podSelector": {}, "policyTypes": ["Egress"]}}),
        );
        assert_eq!(out["spec"]["policyTypes"], json!(["Egress"]));
    }

    #[test]
    fn ingress_class_parameters_scope() {
        let out = defaulted(
            "IngressClass",
            json!({"spec": {"controller": "x/y", "parameters": {"kind": "K", "name": "n"}}}),
        );
        assert_eq!(out["spec"]["parameters"]["scope"], json!("Cluster"));
        let plain = json!({"spec": {"controller": "x/y"}});
        assert_eq!(defaulted("IngressClass", plain.clone()), plain);
        let ingress = json!({"spec": {"rules": []}});
        assert_eq!(defaulted("Ingress", ingress.clone()), ingress);
    }
}
