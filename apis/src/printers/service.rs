//! `kubectl get services`: type, cluster IP, external IPs or load-balancer ingress, ports
//! as "80/TCP" or "80:30080/TCP", and (wide) the pod selector.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::{fields, labels};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "How the service is exposed: ClusterIP, NodePort, LoadBalancer or ExternalName.",
        0,
    ),
    col(
        "Cluster-IP",
        "string",
        "The service's primary cluster IP.",
        0,
    ),
    col(
        "External-IP",
        "string",
        "External IPs, load-balancer ingress, or the external name.",
        0,
    ),
    col(
        "Port(s)",
        "string",
        "Service ports, with node ports where allocated.",
        0,
    ),
    AGE,
    col(
        "Selector",
        "string",
        "Labels of the pods the service routes to.",
        1,
    ),
];

pub(super) fn cells(svc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let cluster_ip = fields::array(svc, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .or_else(|| fields::opt_str(svc, &["spec", "clusterIP"]))
        .filter(|ip| !ip.is_empty())
        .unwrap_or("<none>");
    let ports = ports(svc);
    vec![
        fields::name(svc).into(),
        fields::str(svc, &["spec", "type"]).into(),
        cluster_ip.into(),
        external_ip(svc).into(),
        if ports.is_empty() {
            "<none>".to_owned()
        } else {
            ports
        }
        .into(),
        fields::age(svc, now).into(),
        labels::format_labels(fields::map(svc, &["spec", "selector"])).into(),
    ]
}

/// The EXTERNAL-IP cell for each service type; "<pending>" for a load balancer that has
/// no ingress yet.
fn external_ip(svc: &Value) -> String {
    let external_ips: Vec<&str> = fields::array(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match fields::str(svc, &["spec", "type"]) {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_owned()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let mut all = load_balancer_ingress(svc);
            all.extend(external_ips);
            if all.is_empty() {
                "<pending>".to_owned()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => fields::str(svc, &["spec", "externalName"]).to_owned(),
        _ => "<unknown>".to_owned(),
    }
}

/// Sorted, unique ingress IPs (or hostnames, where an entry has no IP). The server always
/// renders wide cells, so the list is never clipped.
fn load_balancer_ingress(svc: &Value) -> Vec<&str> {
    let set: BTreeSet<&str> = fields::array(svc, &["status", "loadBalancer", "ingress"])
        .iter()
        .filter_map(|ing| {
            let ip = fields::str(ing, &["ip"]);
            let host = fields::str(ing, &["hostname"]);
            [ip, host].into_iter().find(|s| !s.is_empty())
        })
        .collect();
    set.into_iter().collect()
}

/// "port/PROTO" per port, "port:nodePort/PROTO" when a node port is allocated.
fn ports(svc: &Value) -> String {
    fields::array(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = fields::int(p, &["port"]);
            let protocol = fields::str(p, &["protocol"]);
            let node_port = fields::int(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn cluster_ip_service() {
        let svc = json!({
            "metadata": {"name": "kubernetes", "creationTimestamp": ago(10 * 86400)},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                "targetPort": 6443}]}
        });
        assert_eq!(
            cells(&svc, now()),
            vec![
                json!("kubernetes"),
                json!("ClusterIP"),
                json!("10.96.0.1"),
                json!("<none>"),
                json!("443/TCP"),
                json!("10d"),
                json!("<none>"),
            ]
        );
    }

    #[test]
    fn node_port_and_load_balancer() {
        let np = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(300)},
            "spec": {"type": "NodePort", "clusterIPs": ["10.96.12.4"],
                     "selector": {"app": "web", "tier": "frontend"},
                     "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                               {"port": 53, "protocol": "UDP"}]}
        });
        assert_eq!(
            cells(&np, now()),
            vec![
                json!("web"),
                json!("NodePort"),
                json!("10.96.12.4"),
                json!("<none>"),
                json!("80:30080/TCP,53/UDP"),
                json!("5m"),
                json!("app=web,tier=frontend"),
            ]
        );

        let pending = json!({"spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.9"]}});
        assert_eq!(external_ip(&pending), "<pending>");
        let lb = json!({
            "spec": {"type": "LoadBalancer", "externalIPs": ["198.51.100.1"]},
            "status": {"loadBalancer": {"ingress": [
                {"ip": "203.0.113.20"}, {"hostname": "lb.example.com"}, {"ip": "203.0.113.10"}
            ]}}
        });
        assert_eq!(
            external_ip(&lb),
            "203.0.113.10,203.0.113.20,lb.example.com,198.51.100.1"
        );
    }

    #[test]
    fn headless_and_external_name() {
        let headless = json!({"metadata": {"name": "db"},
            "spec": {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]}});
        let c = cells(&headless, now());
        assert_eq!(c[2], json!("None"));
        assert_eq!(c[4], json!("<none>"));

        let ext = json!({"metadata": {"name": "mail"},
            "spec": {"type": "ExternalName", "externalName": "mail.example.com"}});
        let c = cells(&ext, now());
        assert_eq!(c[2], json!("<none>"));
        assert_eq!(c[3], json!("mail.example.com"));
        assert_eq!(cells(&json!({}), now())[3], json!("<unknown>"));
    }
}
