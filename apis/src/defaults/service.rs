//! Defaults of a Service.
//!
//! Cluster IPs, IP families, `ipFamilyPolicy` and node ports are not defaults: the service
//! registry allocates them on create, after defaulting.

use serde_json::{json, Value};

use super::fields::{
    default_string, default_unset, for_each_object, is_empty, object_mut, string_of, struct_mut,
    Object,
};

/// How long (three hours) `ClientIP` affinity sticks when the client sets no timeout.
const CLIENT_IP_AFFINITY_SECONDS: i64 = 10800;

/// Defaults a Service object in place.
pub(crate) fn apply(service: &mut Object) {
    let Some(spec) = struct_mut(service, "spec") else {
        return;
    };
    session_affinity(spec);
    default_string(spec, "type", "ClusterIP");
    for_each_object(spec, "ports", port);
    let service_type = string_of(spec, "type").unwrap_or_default().to_owned();
    let externally_accessible = matches!(service_type.as_str(), "LoadBalancer" | "NodePort")
        || (service_type == "ClusterIP" && !is_empty(spec, "externalIPs"));
    if externally_accessible {
        default_string(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(
        service_type.as_str(),
        "ClusterIP" | "NodePort" | "LoadBalancer"
    ) {
        default_unset(spec, "internalTrafficPolicy", Value::from("Cluster"));
    }
    if service_type == "LoadBalancer" {
        default_unset(spec, "allocateLoadBalancerNodePorts", Value::Bool(true));
        let ingress = object_mut(service, "status").and_then(|s| object_mut(s, "loadBalancer"));
        if let Some(load_balancer) = ingress {
            for_each_object(load_balancer, "ingress", |ingress| {
                if string_of(ingress, "ip").is_some_and(|ip| !ip.is_empty()) {
                    default_unset(ingress, "ipMode", Value::from("VIP"));
                }
            });
        }
    }
}

/// `None` affinity drops any affinity config; `ClientIP` gets a full config with a timeout.
fn session_affinity(spec: &mut Object) {
    default_string(spec, "sessionAffinity", "None");
    match string_of(spec, "sessionAffinity") {
        Some("None") => {
            spec.remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": CLIENT_IP_AFFINITY_SECONDS}}),
                );
            }
        }
        _ => {}
    }
}

/// A port is TCP and forwards to the same port number on the pods unless told otherwise.
fn port(port: &mut Object) {
    default_string(port, "protocol", "TCP");
    let target_unset = match port.get("targetPort") {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => n.as_i64() == Some(0),
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    };
    if !target_unset {
        return;
    }
    match port.get("port") {
        None | Some(Value::Null) => {
            port.insert("targetPort".into(), Value::from(0));
        }
        Some(Value::Number(n)) => {
            let n = n.clone();
            port.insert("targetPort".into(), Value::Number(n));
        }
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(mut service: Value) -> Value {
        apply(service.as_object_mut().unwrap());
        service
    }

    #[test]
    fn kubectl_create_service_clusterip() {
        // The body of `kubectl create service clusterip web --tcp=80:8080`.
        let input = json!({
            "kind": "Service", "apiVersion": "v1",
            "metadata": {"name": "web", "creationTimestamp": null, "labels": {"app": "web"}},
            "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                     "selector": {"app": "web"}, "type": "ClusterIP"},
            "status": {"loadBalancer": {}}
        });
        assert_eq!(
            defaulted(input),
            json!({
                "kind": "Service", "apiVersion": "v1",
                "metadata": {"name": "web", "creationTimestamp": null, "labels": {"app": "web"}},
                "spec": {
                    "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                    "selector": {"app": "web"}, "type": "ClusterIP",
                    "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"
                },
                "status": {"loadBalancer": {}}
            })
        );
    }

    #[test]
    fn minimal_ports_get_protocol_and_target_port() {
        let out = defaulted(
            json!({"spec": {"ports": [{"port": 443}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}, {"port": 80, "targetPort": ""}]}}),
        );
        assert_eq!(
            out["spec"]["ports"],
            json!([
                {"port": 443, "protocol": "TCP", "targetPort": 443},
                {"port": 53, "protocol": "UDP", "targetPort": "dns"},
                {"port": 80, "protocol": "TCP", "targetPort": 80}
            ])
        );
        assert_eq!(out["spec"]["type"], json!("ClusterIP"));
        assert!(out["spec"].get("externalTrafficPolicy").is_none());
    }

    #[test]
    fn load_balancer_defaults() {
        let out = defaulted(json!({
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}, {"hostname": "lb.example"}]}}
        }));
        assert_eq!(
            out,
            json!({
                "spec": {
                    "type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                    "sessionAffinity": "None", "externalTrafficPolicy": "Cluster",
                    "internalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": true
                },
                "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4", "ipMode": "VIP"}, {"hostname": "lb.example"}]}}
            })
        );
    }

    #[test]
    fn external_name_and_external_ips() {
        let out =
            defaulted(json!({"spec": {"type": "ExternalName", "externalName": "example.com"}}));
        assert_eq!(
            out["spec"],
            json!({"type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None"})
        );
        let out = defaulted(json!({"spec": {"externalIPs": ["10.0.0.1"]}}));
        assert_eq!(out["spec"]["externalTrafficPolicy"], json!("Cluster"));
    }

    #[test]
    fn session_affinity_config() {
        let out = defaulted(
            json!({"spec": {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}}}),
        );
        assert!(out["spec"].get("sessionAffinityConfig").is_none());
        let out = defaulted(json!({"spec": {"sessionAffinity": "ClientIP"}}));
        assert_eq!(
            out["spec"]["sessionAffinityConfig"],
            json!({"clientIP": {"timeoutSeconds": 10800}})
        );
        let out = defaulted(
            json!({"spec": {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}}),
        );
        assert_eq!(
            out["spec"]["sessionAffinityConfig"],
            json!({"clientIP": {"timeoutSeconds": 60}})
        );
    }
}
