//! `kubectl get ingresses` and `ingressclasses`.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const INGRESS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Class",
        "string",
        "IngressClass that handles this ingress.",
        0,
    ),
    col("Hosts", "string", "Hosts the ingress rules match.", 0),
    col(
        "Address",
        "string",
        "Load-balancer addresses serving the ingress.",
        0,
    ),
    col("Ports", "string", "Ports the ingress listens on.", 0),
    AGE,
];

pub(super) const INGRESS_CLASS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Controller",
        "string",
        "Controller that implements the class.",
        0,
    ),
    col(
        "Parameters",
        "string",
        "Resource holding extra configuration for the class.",
        0,
    ),
    AGE,
];

/// How many hosts are listed before the rest are summarised as a count.
const SHOWN_HOSTS: usize = 3;

pub(super) fn ingress_cells(ing: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports = if fields::array(ing, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        fields::name(ing).into(),
        fields::opt_str(ing, &["spec", "ingressClassName"])
            .unwrap_or("<none>")
            .into(),
        hosts(ing).into(),
        address(ing).into(),
        ports.into(),
        fields::age(ing, now).into(),
    ]
}

/// Up to three non-empty rule hosts, "+ N more..." counting all further rules, "*" if none.
fn hosts(ing: &Value) -> String {
    let rules = fields::array(ing, &["spec", "rules"]);
    let mut list = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == SHOWN_HOSTS {
            more = true;
        }
        let host = fields::str(rule, &["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_owned();
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", rules.len() - SHOWN_HOSTS)
    } else {
        joined
    }
}

/// Sorted, unique ingress IPs or hostnames; never clipped, as the server renders wide.
fn address(ing: &Value) -> String {
    fields::array(ing, &["status", "loadBalancer", "ingress"])
        .iter()
        .filter_map(|i| {
            [fields::str(i, &["ip"]), fields::str(i, &["hostname"])]
                .into_iter()
                .find(|s| !s.is_empty())
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn ingress_class_cells(class: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let parameters = match fields::get(class, &["spec", "parameters"]) {
        Some(p) => {
            let kind = fields::str(p, &["kind"]);
            let group = fields::opt_str(p, &["apiGroup"])
                .map(|g| format!(".{g}"))
                .unwrap_or_default();
            format!("{kind}{group}/{}", fields::str(p, &["name"]))
        }
        None => "<none>".to_owned(),
    };
    vec![
        fields::name(class).into(),
        fields::str(class, &["spec", "controller"]).into(),
        parameters.into(),
        fields::age(class, now).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn ingress_row() {
        let ing = json!({
            "metadata": {"name": "shop", "creationTimestamp": ago(600)},
            "spec": {"ingressClassName": "nginx",
                     "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
                     "rules": [{"host": "shop.example.com"}, {"host": "api.example.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}
        });
        assert_eq!(
            ingress_cells(&ing, now()),
            vec![
                json!("shop"),
                json!("nginx"),
                json!("shop.example.com,api.example.com"),
                json!("203.0.113.7"),
                json!("80, 443"),
                json!("10m")
            ]
        );
    }

    #[test]
    fn ingress_hosts_summary() {
        let many = json!({"spec": {"rules": [
            {"host": "a"}, {"host": "b"}, {}, {"host": "d"}, {"host": "e"}
        ]}});
        assert_eq!(hosts(&many), "a,b,d + 2 more...");
        assert_eq!(hosts(&json!({"spec": {"rules": [{}]}})), "*");
        let c = ingress_cells(&json!({"metadata": {"name": "x"}}), now());
        assert_eq!(c[1], json!("<none>"));
        assert_eq!(c[3], json!(""));
        assert_eq!(c[4], json!("80"));
    }

    #[test]
    fn ingress_class_row() {
        let class = json!({
            "metadata": {"name": "nginx", "creationTimestamp": ago(60)},
            "spec": {"controller": "k8s.io/ingress-nginx",
                     "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters",
                                    "name": "external-lb"}}
        });
        assert_eq!(
            ingress_class_cells(&class, now()),
            vec![
                json!("nginx"),
                json!("k8s.io/ingress-nginx"),
                json!("IngressParameters.k8s.example.com/external-lb"),
                json!("60s")
            ]
        );
    }
}
