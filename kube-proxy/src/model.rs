//! What the proxy programs, independent of mode: one `ServicePort` per (Service, port) with the
//! endpoints traffic may go to, chosen as upstream categorizes them (ready first, then
//! serving-and-terminating; node-local subsets for the Local traffic policies).

use std::{collections::BTreeMap, fmt, net::IpAddr};

use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};

use crate::net::Family;

/// The transport protocol of a service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    fn parse(s: Option<&str>) -> Option<Protocol> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The lower-case name packet filters use.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// `namespace/name:port-name` plus protocol: the identity of one service port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePortName {
    pub namespace: String,
    pub name: String,
    pub port_name: String,
    pub protocol: Protocol,
}

impl fmt::Display for ServicePortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)?;
        if !self.port_name.is_empty() {
            write!(f, ":{}", self.port_name)?;
        }
        Ok(())
    }
}

/// One endpoint of a service port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub node_name: Option<String>,
}

/// A service port as the proxy programs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub name: ServicePortName,
    pub cluster_ips: Vec<IpAddr>,
    pub port: u16,
    pub node_port: Option<u16>,
    pub external_ips: Vec<IpAddr>,
    pub load_balancer_ips: Vec<IpAddr>,
    /// `sessionAffinity: ClientIP` timeout in seconds.
    pub affinity_timeout: Option<u32>,
    pub external_policy_local: bool,
    pub internal_policy_local: bool,
    pub health_check_node_port: Option<u16>,
    /// `loadBalancerSourceRanges`: the clients that may use the load-balancer IPs (empty: all).
    pub source_ranges: Vec<crate::net::Cidr>,
    /// Every endpoint the slices list for this port.
    pub endpoints: Vec<Endpoint>,
    /// Where traffic to the cluster IP goes (honouring internalTrafficPolicy).
    pub cluster_endpoints: Vec<Endpoint>,
    /// Where traffic to node ports and external IPs goes (honouring externalTrafficPolicy).
    pub external_endpoints: Vec<Endpoint>,
    /// This node's usable endpoints (what the health-check node port counts).
    pub local_endpoints: Vec<Endpoint>,
}

impl ServicePort {
    pub fn has_external(&self) -> bool {
        self.node_port.is_some()
            || !self.external_ips.is_empty()
            || !self.load_balancer_ips.is_empty()
    }

    /// The cluster IPs of one family.
    pub fn cluster_ips_of(&self, family: Family) -> impl Iterator<Item = &IpAddr> {
        self.cluster_ips
            .iter()
            .filter(move |ip| Family::of(ip) == family)
    }

    /// External and load-balancer IPs of one family.
    pub fn external_ips_of(&self, family: Family) -> impl Iterator<Item = &IpAddr> {
        self.external_ips
            .iter()
            .chain(self.load_balancer_ips.iter())
            .filter(move |ip| Family::of(ip) == family)
    }

    /// Whether this port has any address of `family` (a node port counts for every family the
    /// service has a cluster IP in).
    pub fn has_family(&self, family: Family) -> bool {
        self.cluster_ips_of(family).next().is_some()
    }
}

/// The usable subset: ready endpoints, or (when none is ready) serving-and-terminating ones.
fn usable(endpoints: impl Iterator<Item = Endpoint> + Clone) -> Vec<Endpoint> {
    let ready: Vec<Endpoint> = endpoints.clone().filter(|e| e.ready).collect();
    if !ready.is_empty() {
        return ready;
    }
    endpoints.filter(|e| e.serving && e.terminating).collect()
}

/// The label by which another proxy claims a Service; kube-proxy leaves those alone.
pub const SERVICE_PROXY_NAME_LABEL: &str = "service.kubernetes.io/service-proxy-name";

/// Builds the service ports of one Service from the EndpointSlices that belong to it. Headless
/// services, services without a cluster IP (ExternalName) and services another proxy claims
/// have none.
pub fn service_ports(
    svc: &Service,
    slices: &[&EndpointSlice],
    node_name: &str,
) -> Vec<ServicePort> {
    let Some(spec) = &svc.spec else {
        return Vec::new();
    };
    let claimed = svc
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(SERVICE_PROXY_NAME_LABEL));
    if claimed {
        return Vec::new();
    }
    if spec.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    let cluster_ips: Vec<IpAddr> = spec
        .cluster_ips
        .clone()
        .or_else(|| spec.cluster_ip.clone().map(|ip| vec![ip]))
        .unwrap_or_default()
        .iter()
        .filter(|ip| !ip.is_empty() && *ip != "None")
        .filter_map(|ip| ip.parse().ok())
        .collect();
    if cluster_ips.is_empty() {
        return Vec::new();
    }
    let namespace = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let parse_ips = |list: Option<&Vec<String>>| -> Vec<IpAddr> {
        list.into_iter()
            .flatten()
            .filter_map(|s| s.parse().ok())
            .collect()
    };
    let external_ips = parse_ips(spec.external_ips.as_ref());
    let load_balancer_ips: Vec<IpAddr> = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref())
        .filter_map(|ip| ip.parse().ok())
        .collect();
    let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(10800)
    });
    let is_external_type = matches!(
        spec.type_.as_deref(),
        Some("NodePort") | Some("LoadBalancer")
    );
    let external_policy_local = spec.external_traffic_policy.as_deref() == Some("Local")
        && (is_external_type || !external_ips.is_empty());
    let internal_policy_local = spec.internal_traffic_policy.as_deref() == Some("Local");
    let source_ranges: Vec<crate::net::Cidr> = spec
        .load_balancer_source_ranges
        .iter()
        .flatten()
        .filter(|_| spec.type_.as_deref() == Some("LoadBalancer"))
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let health_check_node_port = spec
        .health_check_node_port
        .filter(|_| external_policy_local)
        .and_then(|p| u16::try_from(p).ok());

    let mut out = Vec::new();
    for port in spec.ports.iter().flatten() {
        let Some(protocol) = Protocol::parse(port.protocol.as_deref()) else {
            continue;
        };
        let Ok(svc_port) = u16::try_from(port.port) else {
            continue;
        };
        let port_name = port.name.clone().unwrap_or_default();
        let mut endpoints: Vec<Endpoint> = Vec::new();
        for slice in slices {
            for slice_port in slice.ports.iter().flatten() {
                if slice_port.name.clone().unwrap_or_default() != port_name
                    || Protocol::parse(slice_port.protocol.as_deref()) != Some(protocol)
                {
                    continue;
                }
                let Some(ep_port) = slice_port.port.and_then(|p| u16::try_from(p).ok()) else {
                    continue;
                };
                for ep in &slice.endpoints {
                    let cond = ep.conditions.as_ref();
                    let ready = cond.and_then(|c| c.ready).unwrap_or(true);
                    let serving = cond.and_then(|c| c.serving).unwrap_or(ready);
                    let terminating = cond.and_then(|c| c.terminating).unwrap_or(false);
                    for addr in &ep.addresses {
                        let Ok(ip) = addr.parse::<IpAddr>() else {
                            continue;
                        };
                        if !cluster_ips.iter().any(|c| Family::of(c) == Family::of(&ip)) {
                            continue;
                        }
                        let e = Endpoint {
                            ip,
                            port: ep_port,
                            ready,
                            serving,
                            terminating,
                            node_name: ep.node_name.clone(),
                        };
                        if !endpoints.iter().any(|x| x.ip == e.ip && x.port == e.port) {
                            endpoints.push(e);
                        }
                    }
                }
            }
        }
        endpoints.sort();
        let all = usable(endpoints.iter().cloned());
        let local = usable(
            endpoints
                .iter()
                .filter(|e| e.node_name.as_deref() == Some(node_name))
                .cloned(),
        );
        out.push(ServicePort {
            name: ServicePortName {
                namespace: namespace.clone(),
                name: name.clone(),
                port_name,
                protocol,
            },
            cluster_ips: cluster_ips.clone(),
            port: svc_port,
            node_port: port
                .node_port
                .filter(|_| is_external_type)
                .and_then(|p| u16::try_from(p).ok()),
            external_ips: external_ips.clone(),
            load_balancer_ips: load_balancer_ips.clone(),
            affinity_timeout,
            external_policy_local,
            internal_policy_local,
            health_check_node_port,
            source_ranges: source_ranges.clone(),
            cluster_endpoints: if internal_policy_local {
                local.clone()
            } else {
                all.clone()
            },
            external_endpoints: if external_policy_local {
                local.clone()
            } else {
                all
            },
            local_endpoints: local,
            endpoints,
        });
    }
    out
}

/// Every service port, keyed by name (the proxy's whole desired state).
pub type ServicePortMap = BTreeMap<ServicePortName, ServicePort>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(extra: serde_json::Value) -> Service {
        let mut spec = json!({
            "clusterIP": "10.0.0.10", "clusterIPs": ["10.0.0.10"], "type": "NodePort",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]
        });
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        serde_json::from_value(
            json!({"metadata": {"namespace": "ns", "name": "web"}, "spec": spec}),
        )
        .unwrap()
    }

    fn slice(eps: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"namespace": "ns", "name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": eps
        }))
        .unwrap()
    }

    #[test]
    fn ready_endpoints_win_and_terminating_is_the_fallback() {
        let s = slice(json!([
            {"addresses": ["10.244.0.11"], "conditions": {"ready": true}, "nodeName": "a"},
            {"addresses": ["10.244.0.12"], "conditions": {"ready": false, "serving": true, "terminating": true}, "nodeName": "a"},
        ]));
        let ports = service_ports(&svc(json!({})), &[&s], "a");
        assert_eq!(ports.len(), 1);
        let p = &ports[0];
        assert_eq!(p.node_port, Some(30080));
        assert_eq!(p.cluster_endpoints.len(), 1);
        assert_eq!(p.cluster_endpoints[0].port, 8080);

        let only_terminating = slice(json!([
            {"addresses": ["10.244.0.12"], "conditions": {"ready": false, "serving": true, "terminating": true}},
        ]));
        let ports = service_ports(&svc(json!({})), &[&only_terminating], "a");
        assert_eq!(ports[0].cluster_endpoints.len(), 1);
    }

    #[test]
    fn local_policies_select_node_local_endpoints() {
        let s = slice(json!([
            {"addresses": ["10.244.0.11"], "nodeName": "a"},
            {"addresses": ["10.244.0.12"], "nodeName": "b"},
        ]));
        let service = svc(json!({"externalTrafficPolicy": "Local", "sessionAffinity": "ClientIP"}));
        let p = &service_ports(&service, &[&s], "a")[0];
        assert_eq!(p.cluster_endpoints.len(), 2);
        assert_eq!(p.external_endpoints.len(), 1);
        assert_eq!(p.external_endpoints[0].ip.to_string(), "10.244.0.11");
        assert_eq!(p.affinity_timeout, Some(10800));
    }

    #[test]
    fn source_ranges_apply_to_load_balancers_only() {
        let ranges = json!({"loadBalancerSourceRanges": [" 192.0.2.0/24", "bogus"]});
        let mut lb = ranges.clone();
        lb["type"] = json!("LoadBalancer");
        let p = &service_ports(&svc(lb), &[], "a")[0];
        assert_eq!(p.source_ranges, vec!["192.0.2.0/24".parse().unwrap()]);
        assert!(service_ports(&svc(ranges), &[], "a")[0]
            .source_ranges
            .is_empty());
    }

    #[test]
    fn headless_and_foreign_services_are_skipped() {
        let service = svc(json!({"clusterIP": "None", "clusterIPs": ["None"]}));
        assert!(service_ports(&service, &[], "a").is_empty());
        let mut foreign = svc(json!({}));
        foreign.metadata.labels =
            Some([(SERVICE_PROXY_NAME_LABEL.to_string(), "other".to_string())].into());
        assert!(service_ports(&foreign, &[], "a").is_empty());
        assert_eq!(service_ports(&svc(json!({})), &[], "a").len(), 1);
    }
}
