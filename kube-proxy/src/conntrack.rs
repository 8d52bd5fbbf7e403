//! UDP has no connection teardown, so conntrack keeps sending a flow to an endpoint that is gone
//! (or keeps a cached reject for a service that just got endpoints). After each sync the entries
//! those changes made stale are deleted, as upstream does.

use std::net::IpAddr;

use crate::{
    exec,
    model::{Endpoint, Protocol, ServicePortMap},
    net::Family,
    proxier::PortChange,
};

/// One `conntrack -D` filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// Flows to `service_ip` that were DNATed to `endpoint`.
    Endpoint {
        service_ip: IpAddr,
        endpoint: IpAddr,
    },
    /// Flows to a node port that were DNATed to `endpoint`.
    NodePortEndpoint { node_port: u16, endpoint: IpAddr },
    /// Every flow to `service_ip` (it had no endpoints before).
    Service { service_ip: IpAddr },
}

/// The stale UDP entries `changes` leave behind, `ports` being the service ports now.
pub fn stale_entries(changes: &[PortChange], ports: &ServicePortMap) -> Vec<Stale> {
    let mut out = Vec::new();
    for c in changes {
        let new = c.current(ports);
        let proto = c.old.as_ref().or(new).map(|p| p.name.protocol);
        if proto != Some(Protocol::Udp) {
            continue;
        }
        let usable = |p: Option<&crate::model::ServicePort>| -> Vec<Endpoint> {
            p.map(|p| {
                let mut v = p.cluster_endpoints.clone();
                v.extend(p.external_endpoints.iter().cloned());
                v
            })
            .unwrap_or_default()
        };
        let before = usable(c.old.as_ref());
        let after = usable(new);
        if let Some(old) = &c.old {
            for gone in before
                .iter()
                .filter(|e| !after.iter().any(|a| a.ip == e.ip))
            {
                // A dual-stack service's flows to one family's IPs only reach that family's
                // endpoints.
                for ip in old
                    .cluster_ips
                    .iter()
                    .chain(&old.external_ips)
                    .chain(&old.load_balancer_ips)
                    .filter(|ip| Family::of(ip) == Family::of(&gone.ip))
                {
                    out.push(Stale::Endpoint {
                        service_ip: *ip,
                        endpoint: gone.ip,
                    });
                }
                if let Some(np) = old.node_port {
                    out.push(Stale::NodePortEndpoint {
                        node_port: np,
                        endpoint: gone.ip,
                    });
                }
            }
        }
        if let Some(new) = new {
            if before.is_empty() && !after.is_empty() {
                for ip in &new.cluster_ips {
                    out.push(Stale::Service { service_ip: *ip });
                }
            }
        }
    }
    out.dedup();
    out
}

/// Deletes the entries; "0 flow entries" is not an error.
pub async fn flush(entries: &[Stale]) {
    for e in entries {
        let (family_ip, filter) = match e {
            Stale::Endpoint {
                service_ip,
                endpoint,
            } => (
                service_ip,
                vec![
                    "--orig-dst".to_string(),
                    service_ip.to_string(),
                    "--dst-nat".into(),
                    endpoint.to_string(),
                ],
            ),
            Stale::NodePortEndpoint {
                node_port,
                endpoint,
            } => (
                endpoint,
                vec![
                    "--orig-port-dst".to_string(),
                    node_port.to_string(),
                    "--dst-nat".into(),
                    endpoint.to_string(),
                ],
            ),
            Stale::Service { service_ip } => (
                service_ip,
                vec!["--orig-dst".to_string(), service_ip.to_string()],
            ),
        };
        let family = if family_ip.is_ipv4() { "ipv4" } else { "ipv6" };
        let mut args = vec!["-D", "-f", family, "-p", "udp"];
        args.extend(filter.iter().map(String::as_str));
        match exec::run("conntrack", &args, None).await {
            Ok(_) => tracing::debug!(entry = ?e, "deleted stale UDP conntrack entries"),
            Err(err) => tracing::debug!(%err, entry = ?e, "no conntrack entries deleted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ServicePort, ServicePortName};

    #[test]
    fn a_gone_endpoint_is_flushed_in_its_own_family() {
        let ep = |ip: &str| Endpoint {
            ip: ip.parse().unwrap(),
            port: 5353,
            ready: true,
            serving: true,
            terminating: false,
            node_name: None,
        };
        let old = ServicePort {
            name: ServicePortName {
                namespace: "ns".into(),
                name: "dns".into(),
                port_name: String::new(),
                protocol: Protocol::Udp,
            },
            cluster_ips: vec!["10.0.0.10".parse().unwrap(), "fd00:96::10".parse().unwrap()],
            port: 53,
            node_port: None,
            external_ips: vec![],
            load_balancer_ips: vec![],
            affinity_timeout: None,
            external_policy_local: false,
            internal_policy_local: false,
            health_check_node_port: None,
            source_ranges: vec![],
            endpoints: vec![],
            cluster_endpoints: vec![ep("10.244.0.11"), ep("fd00:244::11"), ep("fd00:244::12")],
            external_endpoints: vec![],
            local_endpoints: vec![],
        };
        let mut new = old.clone();
        new.cluster_endpoints
            .retain(|e| e.ip.to_string() != "fd00:244::12");
        let ports = [(new.name.clone(), new)].into_iter().collect();
        let stale = stale_entries(
            &[PortChange {
                name: old.name.clone(),
                old: Some(old),
            }],
            &ports,
        );
        assert_eq!(
            stale,
            vec![Stale::Endpoint {
                service_ip: "fd00:96::10".parse().unwrap(),
                endpoint: "fd00:244::12".parse().unwrap(),
            }]
        );
    }
}
