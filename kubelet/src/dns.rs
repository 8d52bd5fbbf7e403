//! A pod's resolv.conf, from its `dnsPolicy` and `dnsConfig` as upstream computes it.

use std::path::Path;

use cri_proto::v1::DnsConfig;
use k8s_openapi::api::core::v1::Pod;

/// The cluster DNS settings from the kubelet configuration.
#[derive(Debug, Clone)]
pub struct ClusterDns<'a> {
    pub servers: &'a [String],
    pub domain: &'a str,
    pub host_resolv_conf: &'a Path,
}

/// The host's resolv.conf as servers, searches and options.
fn host_config(path: &Path) -> DnsConfig {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut config = DnsConfig::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => config.servers.extend(words.next().map(String::from)),
            Some("search") | Some("domain") => config.searches = words.map(String::from).collect(),
            Some("options") => config.options.extend(words.map(String::from)),
            _ => {}
        }
    }
    config
}

/// The DNS configuration of `pod`.
pub fn pod_dns_config(pod: &Pod, cluster: &ClusterDns<'_>) -> DnsConfig {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let policy = spec
        .and_then(|s| s.dns_policy.clone())
        .unwrap_or_else(|| "ClusterFirst".into());
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let cluster_first = match policy.as_str() {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network,
        _ => false,
    };
    let mut config = match policy.as_str() {
        "None" => DnsConfig::default(),
        _ if cluster_first && !cluster.servers.is_empty() => {
            let mut searches = Vec::new();
            if !cluster.domain.is_empty() {
                searches.push(format!("{namespace}.svc.{}", cluster.domain));
                searches.push(format!("svc.{}", cluster.domain));
                searches.push(cluster.domain.to_string());
            }
            searches.extend(host_config(cluster.host_resolv_conf).searches);
            DnsConfig {
                servers: cluster.servers.to_vec(),
                searches,
                options: vec!["ndots:5".into()],
            }
        }
        // Default, or ClusterFirst without cluster DNS (upstream falls back to the host's).
        _ => host_config(cluster.host_resolv_conf),
    };
    if let Some(extra) = spec.and_then(|s| s.dns_config.as_ref()) {
        for s in extra.nameservers.iter().flatten() {
            if !config.servers.contains(s) {
                config.servers.push(s.clone());
            }
        }
        for s in extra.searches.iter().flatten() {
            if !config.searches.contains(s) {
                config.searches.push(s.clone());
            }
        }
        for o in extra.options.iter().flatten() {
            let rendered = match &o.value {
                Some(v) => format!("{}:{v}", o.name.clone().unwrap_or_default()),
                None => o.name.clone().unwrap_or_default(),
            };
            let key = o.name.clone().unwrap_or_default();
            config
                .options
                .retain(|existing| existing.split(':').next() != Some(key.as_str()));
            config.options.push(rendered);
        }
    }
    config.servers.truncate(3);
    config.searches.truncate(32);
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;

    fn pod(policy: &str, host_network: bool) -> Pod {
        Pod {
            metadata: kube::api::ObjectMeta {
                namespace: Some("team".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                dns_policy: Some(policy.into()),
                host_network: Some(host_network),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn cluster_first_uses_cluster_dns() {
        let dir = tempfile::tempdir().unwrap();
        let resolv = dir.path().join("resolv.conf");
        std::fs::write(
            &resolv,
            "nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n",
        )
        .unwrap();
        let servers = vec!["10.96.0.10".to_string()];
        let cluster = ClusterDns {
            servers: &servers,
            domain: "cluster.local",
            host_resolv_conf: &resolv,
        };
        let c = pod_dns_config(&pod("ClusterFirst", false), &cluster);
        assert_eq!(c.servers, vec!["10.96.0.10"]);
        assert_eq!(
            c.searches,
            vec![
                "team.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example"
            ]
        );
        assert_eq!(c.options, vec!["ndots:5"]);
        let host = pod_dns_config(&pod("ClusterFirst", true), &cluster);
        assert_eq!(host.servers, vec!["192.0.2.53"]);
        assert_eq!(host.options, vec!["edns0"]);
        let none = pod_dns_config(&pod("None", false), &cluster);
        assert!(none.servers.is_empty());
    }
}
