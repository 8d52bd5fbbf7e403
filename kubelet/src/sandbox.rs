//! The CRI sandbox of a pod: its configuration (metadata, hostname, DNS, ports, namespaces,
//! cgroup parent, log directory) and the hosts file its containers mount.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use cri_proto::v1::{
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata, PortMapping, Protocol,
};
use k8s_openapi::api::core::v1::Pod;

use crate::{
    cri::{POD_NAMESPACE_LABEL, POD_NAME_LABEL, POD_UID_LABEL},
    dns::{self, ClusterDns},
};

/// Node-level settings the sandbox configuration needs.
pub struct SandboxContext<'a> {
    pub node_name: &'a str,
    pub pod_logs_dir: &'a Path,
    pub cgroup_root: &'a str,
    pub dns: ClusterDns<'a>,
}

/// `/var/log/pods/<namespace>_<name>_<uid>`, upstream's on-disk log layout.
pub fn log_directory(logs: &Path, pod: &Pod) -> PathBuf {
    logs.join(format!(
        "{}_{}_{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    ))
}

/// The labels identifying a pod's runtime objects.
pub fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    HashMap::from([
        (
            POD_NAME_LABEL.to_string(),
            pod.metadata.name.clone().unwrap_or_default(),
        ),
        (
            POD_NAMESPACE_LABEL.to_string(),
            pod.metadata.namespace.clone().unwrap_or_default(),
        ),
        (
            POD_UID_LABEL.to_string(),
            pod.metadata.uid.clone().unwrap_or_default(),
        ),
    ])
}

pub fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// The pod's hostname: `spec.hostname` or its name, cut to 63 characters.
pub fn hostname(pod: &Pod, node_name: &str) -> String {
    if host_network(pod) {
        return node_name.to_string();
    }
    let name = pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty())
        .or_else(|| pod.metadata.name.clone())
        .unwrap_or_default();
    name.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches(['-', '.'])
        .to_string()
}

/// The cgroup of the pod under the kubelet's cgroup root, by QoS class, as upstream's cgroupfs
/// driver lays it out (`/kubepods/burstable/pod<uid>`).
pub fn cgroup_parent(root: &str, pod: &Pod) -> String {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let qos = pod
        .status
        .as_ref()
        .and_then(|s| s.qos_class.as_deref())
        .unwrap_or("BestEffort");
    let base = root.trim_end_matches('/');
    match qos {
        "Guaranteed" => format!("{base}/kubepods/pod{uid}"),
        "Burstable" => format!("{base}/kubepods/burstable/pod{uid}"),
        _ => format!("{base}/kubepods/besteffort/pod{uid}"),
    }
}

/// Removes the pod's (empty) cgroup from every hierarchy once its containers are gone; the
/// runtime creates it as the sandbox's parent but leaves it behind.
/// All QoS classes are tried, as a pod cleaned up as an orphan has no known class.
pub fn remove_pod_cgroup(root: &str, pod: &Pod) {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    if uid.is_empty() {
        return;
    }
    let base = root.trim_matches('/');
    let candidates: Vec<String> = ["", "burstable/", "besteffort/"]
        .iter()
        .map(|class| {
            format!("{base}/kubepods/{class}pod{uid}")
                .trim_start_matches('/')
                .to_string()
        })
        .collect();
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut mounts: Vec<PathBuf> = hierarchies.flatten().map(|h| h.path()).collect();
    mounts.push(PathBuf::from("/sys/fs/cgroup"));
    let dirs = mounts
        .iter()
        .flat_map(|m| candidates.iter().map(move |c| m.join(c)));
    for dir in dirs.into_iter().filter(|d| d.is_dir()) {
        if let Err(err) = std::fs::remove_dir(&dir) {
            tracing::debug!(path = %dir.display(), %err, "removing pod cgroup");
        }
    }
}

/// The sandbox configuration of `pod`, attempt `attempt`.
pub fn config(ctx: &SandboxContext<'_>, pod: &Pod, attempt: u32) -> PodSandboxConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let mut labels: HashMap<String, String> = pod
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    labels.extend(pod_labels(pod));
    let annotations = pod
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let port_mappings = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => Protocol::Udp,
                Some("SCTP") => Protocol::Sctp,
                _ => Protocol::Tcp,
            } as i32,
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    let privileged = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| {
            c.security_context
                .as_ref()
                .and_then(|s| s.privileged)
                .unwrap_or(false)
        });
    let node_or_pod = |host: Option<bool>| if host.unwrap_or(false) { NamespaceMode::Node } else { NamespaceMode::Pod } as i32;
    let pod_security = spec.security_context.clone().unwrap_or_default();
    let sysctls = pod_security
        .sysctls
        .iter()
        .flatten()
        .map(|s| (s.name.clone(), s.value.clone()))
        .collect();
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            attempt,
        }),
        // A host-network pod shares the host's UTS namespace: the runtime must not set a name.
        hostname: if spec.host_network.unwrap_or(false) {
            String::new()
        } else {
            hostname(pod, ctx.node_name)
        },
        log_directory: log_directory(ctx.pod_logs_dir, pod).display().to_string(),
        dns_config: Some(dns::pod_dns_config(pod, &ctx.dns)),
        port_mappings,
        labels,
        annotations,
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent(ctx.cgroup_root, pod),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: node_or_pod(spec.host_network),
                    pid: if spec.host_pid.unwrap_or(false) {
                        NamespaceMode::Node
                    } else {
                        NamespaceMode::Container
                    } as i32,
                    ipc: node_or_pod(spec.host_ipc),
                    ..Default::default()
                }),
                run_as_user: pod_security
                    .run_as_user
                    .map(|value| cri_proto::v1::Int64Value { value }),
                // The runtime rejects a group without a user; the pod-level group then only
                // applies to the containers, which resolve their user.
                run_as_group: pod_security
                    .run_as_group
                    .filter(|_| pod_security.run_as_user.is_some())
                    .map(|value| cri_proto::v1::Int64Value { value }),
                supplemental_groups: pod_security.supplemental_groups.clone().unwrap_or_default(),
                privileged,
                ..Default::default()
            }),
            sysctls,
            ..Default::default()
        }),
        windows: None,
    }
}

/// The kubelet-managed /etc/hosts of a pod on the pod network.
pub fn hosts_file(pod: &Pod, pod_ips: &[String], node_name: &str, cluster_domain: &str) -> String {
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    let host = hostname(pod, node_name);
    let subdomain = pod
        .spec
        .as_ref()
        .and_then(|s| s.subdomain.clone())
        .filter(|s| !s.is_empty());
    for ip in pod_ips {
        match (&subdomain, cluster_domain.is_empty()) {
            (Some(sub), false) => {
                let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
                out.push_str(&format!(
                    "{ip}\t{host}.{sub}.{ns}.svc.{cluster_domain}\t{host}\n"
                ));
            }
            _ => out.push_str(&format!("{ip}\t{host}\n")),
        }
    }
    let aliases = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_aliases.clone())
        .unwrap_or_default();
    if !aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for alias in aliases {
            out.push_str(&format!(
                "{}\t{}\n",
                alias.ip,
                alias.hostnames.unwrap_or_default().join("\t")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HostAlias, PodSpec};

    #[test]
    fn hosts_file_lists_pod_and_aliases() {
        let pod = Pod {
            metadata: kube::api::ObjectMeta {
                name: Some("web-0".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                subdomain: Some("web".into()),
                host_aliases: Some(vec![HostAlias {
                    ip: "10.0.0.9".into(),
                    hostnames: Some(vec!["db".into()]),
                }]),
                ..Default::default()
            }),
            status: None,
        };
        let text = hosts_file(&pod, &["10.1.0.4".into()], "node", "cluster.local");
        assert!(text.contains("10.1.0.4\tweb-0.web.ns.svc.cluster.local\tweb-0\n"));
        assert!(text.contains("10.0.0.9\tdb\n"));
        assert_eq!(
            cgroup_parent("/", &pod),
            format!("/kubepods/besteffort/pod")
        );
    }
}
