//! What the Endpoints and EndpointSlice controllers share: which pods back a Service, their
//! readiness as endpoints, and service ports resolved against each pod's named ports.

use std::sync::Arc;

use component_base::{
    informer::{key_of, Change, Informer},
    workqueue::WorkQueue,
};
use k8s_openapi::{
    api::core::v1::{Pod, Service},
    apimachinery::pkg::util::intstr::IntOrString,
};
use kube::ResourceExt;

use crate::selector;

/// A service port as it applies to one pod.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResolvedPort {
    pub name: Option<String>,
    pub protocol: String,
    pub port: i32,
    pub app_protocol: Option<String>,
}

/// A pod as an endpoint of a service.
pub struct Endpoint {
    pub pod: Arc<Pod>,
    pub ip: String,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub ports: Vec<ResolvedPort>,
    /// The pod's hostname when its subdomain is this service (a DNS record per pod).
    pub hostname: Option<String>,
}

/// The pods a service selects that belong in its endpoints: selected, with an IP, not
/// finished; terminating ones are included and marked.
pub fn endpoints_for(svc: &Service, pods: &Informer<Pod>) -> Vec<Endpoint> {
    let Some(sel) = selector::from_map(svc.spec.as_ref().and_then(|s| s.selector.as_ref())) else {
        return Vec::new();
    };
    let publish_not_ready = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let mut out: Vec<Endpoint> = pods
        .list_in(&svc.namespace().unwrap_or_default())
        .into_iter()
        .filter(|p| selector::matches(&sel, p.metadata.labels.as_ref()))
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .filter_map(|pod| {
            let ip = pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .filter(|ip| !ip.is_empty())?;
            let terminating = pod.metadata.deletion_timestamp.is_some();
            let serving = crate::pods::is_ready(&pod) || publish_not_ready;
            let ports = resolve_ports(svc, &pod);
            let hostname = pod
                .spec
                .as_ref()
                .filter(|s| s.subdomain.as_deref() == svc.metadata.name.as_deref())
                .and_then(|s| s.hostname.clone());
            Some(Endpoint {
                hostname,
                ready: serving && !terminating,
                serving,
                terminating,
                ip,
                ports,
                pod,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        a.ip.cmp(&b.ip)
            .then_with(|| a.pod.name_any().cmp(&b.pod.name_any()))
    });
    out
}

/// The service's ports with target ports resolved for `pod`; a named target port the pod does
/// not declare is left out.
pub fn resolve_ports(svc: &Service, pod: &Pod) -> Vec<ResolvedPort> {
    let mut out = Vec::new();
    for sp in svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default()
    {
        let protocol = sp.protocol.clone().unwrap_or_else(|| "TCP".into());
        let port = match &sp.target_port {
            None => Some(sp.port),
            Some(IntOrString::Int(n)) => Some(*n),
            Some(IntOrString::String(name)) => match name.parse::<i32>() {
                Ok(n) => Some(n),
                Err(_) => pod
                    .spec
                    .iter()
                    .flat_map(|s| s.containers.iter())
                    .flat_map(|c| c.ports.iter().flatten())
                    .find(|p| {
                        p.name.as_deref() == Some(name)
                            && p.protocol.as_deref().unwrap_or("TCP") == protocol
                    })
                    .map(|p| p.container_port),
            },
        };
        if let Some(port) = port {
            out.push(ResolvedPort {
                name: sp.name.clone().filter(|n| !n.is_empty()),
                protocol,
                port,
                app_protocol: sp.app_protocol.clone(),
            });
        }
    }
    out
}

/// Queues every service in the pod's namespace whose selector matches the pod (before or after
/// the change).
pub fn enqueue_services_for_pod(
    change: &Change<Pod>,
    services: &Informer<Service>,
    queue: &WorkQueue<String>,
) {
    let pods: Vec<&Arc<Pod>> = match change {
        Change::Added(p) | Change::Deleted(p) => vec![p],
        Change::Updated { old, new } => vec![old, new],
    };
    let Some(ns) = pods.first().and_then(|p| p.namespace()) else {
        return;
    };
    for svc in services.list_in(&ns) {
        let Some(sel) = selector::from_map(svc.spec.as_ref().and_then(|s| s.selector.as_ref()))
        else {
            continue;
        };
        if pods
            .iter()
            .any(|p| selector::matches(&sel, p.metadata.labels.as_ref()))
        {
            queue.add(key_of(svc.as_ref()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn named_target_ports_resolve_per_pod() {
        let svc: Service = serde_json::from_value(json!({
            "metadata": { "name": "s", "namespace": "d" },
            "spec": { "ports": [
                { "name": "http", "port": 80, "targetPort": "web" },
                { "name": "metrics", "port": 9090, "targetPort": 9091 },
            ]},
        }))
        .unwrap();
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "name": "p" },
            "spec": { "containers": [{ "name": "c", "ports": [{ "name": "web", "containerPort": 8080 }] }] },
        }))
        .unwrap();
        let ports = resolve_ports(&svc, &pod);
        assert_eq!(
            ports.iter().map(|p| p.port).collect::<Vec<_>>(),
            [8080, 9091]
        );
        let bare: Pod = serde_json::from_value(
            json!({ "metadata": { "name": "q" }, "spec": { "containers": [] } }),
        )
        .unwrap();
        assert_eq!(resolve_ports(&svc, &bare).len(), 1);
    }
}
