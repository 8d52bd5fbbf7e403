//! The CRI configuration of one container of a pod: image, command and args with `$(VAR)`
//! expansion, environment, mounts, log path, cgroup resources and security context.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use cri_proto::v1::{
    Capability, ContainerConfig, ContainerMetadata, ImageSpec, Int64Value, KeyValue,
    LinuxContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext, Mount,
    MountPropagation, NamespaceMode, NamespaceOption,
};
use k8s_openapi::api::core::v1::{Container, Pod};

use crate::{cri::CONTAINER_NAME_LABEL, envvars, quantity, sandbox};

/// The pod's `terminationGracePeriodSeconds`, 30 when unset.
pub fn grace_period(pod: &Pod) -> i64 {
    pod.spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30)
}

/// Annotations upstream's kubelet keeps on containers to rebuild state after a restart.
pub const RESTART_COUNT_ANNOTATION: &str = "io.kubernetes.container.restartCount";
pub const TERMINATION_MESSAGE_PATH_ANNOTATION: &str =
    "io.kubernetes.container.terminationMessagePath";
pub const GRACE_PERIOD_ANNOTATION: &str = "io.kubernetes.pod.terminationGracePeriod";

/// Paths upstream masks or makes read-only in unprivileged containers.
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Inputs that are fixed for one start of a container.
pub struct ContainerInputs<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub attempt: u32,
    pub env: Vec<(String, String)>,
    pub volumes: &'a HashMap<String, PathBuf>,
    /// The pod's managed /etc/hosts, when it has one.
    pub hosts_file: Option<&'a Path>,
    pub termination_log: &'a Path,
    pub image_ref: String,
    pub node_memory_bytes: i64,
}

/// The container's host-side termination message file.
pub fn termination_log_path(pod_dir: &Path, container: &str, attempt: u32) -> PathBuf {
    pod_dir
        .join("containers")
        .join(container)
        .join(format!("{attempt}.termination-log"))
}

pub fn config(inputs: &ContainerInputs<'_>) -> ContainerConfig {
    let c = inputs.container;
    let pod = inputs.pod;
    let env = &inputs.env;
    let mut labels: HashMap<String, String> = sandbox::pod_labels(pod);
    labels.insert(CONTAINER_NAME_LABEL.into(), c.name.clone());
    let grace = grace_period(pod);
    let message_path = c
        .termination_message_path
        .clone()
        .unwrap_or_else(|| "/dev/termination-log".into());
    let annotations = HashMap::from([
        (
            RESTART_COUNT_ANNOTATION.to_string(),
            inputs.attempt.to_string(),
        ),
        (
            TERMINATION_MESSAGE_PATH_ANNOTATION.to_string(),
            message_path.clone(),
        ),
        (GRACE_PERIOD_ANNOTATION.to_string(), grace.to_string()),
    ]);
    let mut mounts: Vec<Mount> = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let Some(base) = inputs.volumes.get(&m.name) else {
            continue;
        };
        let host = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => base.join(envvars::expand(sub, env)),
            None => base.clone(),
        };
        mounts.push(Mount {
            container_path: m.mount_path.clone(),
            host_path: host.display().to_string(),
            readonly: m.read_only.unwrap_or(false),
            propagation: match m.mount_propagation.as_deref() {
                Some("HostToContainer") => MountPropagation::PropagationHostToContainer,
                Some("Bidirectional") => MountPropagation::PropagationBidirectional,
                _ => MountPropagation::PropagationPrivate,
            } as i32,
            ..Default::default()
        });
    }
    let mounted = |mounts: &[Mount], path: &str| mounts.iter().any(|m| m.container_path == path);
    if let Some(hosts) = inputs
        .hosts_file
        .filter(|_| !mounted(&mounts, "/etc/hosts"))
    {
        mounts.push(Mount {
            container_path: "/etc/hosts".into(),
            host_path: hosts.display().to_string(),
            ..Default::default()
        });
    }
    if !mounted(&mounts, &message_path) {
        mounts.push(Mount {
            container_path: message_path,
            host_path: inputs.termination_log.display().to_string(),
            ..Default::default()
        });
    }
    let log_path = format!("{}/{}.log", c.name, inputs.attempt);
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: c.name.clone(),
            attempt: inputs.attempt,
        }),
        image: Some(ImageSpec {
            image: inputs.image_ref.clone(),
            user_specified_image: c.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: c
            .command
            .iter()
            .flatten()
            .map(|s| envvars::expand(s, env))
            .collect(),
        args: c
            .args
            .iter()
            .flatten()
            .map(|s| envvars::expand(s, env))
            .collect(),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: env
            .iter()
            .map(|(key, value)| KeyValue {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        mounts,
        labels,
        annotations,
        log_path,
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(LinuxContainerConfig {
            resources: Some(resources(pod, c, inputs.node_memory_bytes)),
            security_context: Some(security_context(pod, c)),
        }),
        ..Default::default()
    }
}

/// cgroup settings from requests and limits: shares from the cpu request, CFS quota from the cpu
/// limit, the memory limit, and an OOM score by QoS class.
pub fn resources(pod: &Pod, c: &Container, node_memory_bytes: i64) -> LinuxContainerResources {
    let res = c.resources.clone().unwrap_or_default();
    let limits = res.limits.unwrap_or_default();
    let requests = res.requests.unwrap_or_default();
    let cpu_limit = limits.get("cpu").and_then(quantity::milli_cpu);
    let cpu_request = requests
        .get("cpu")
        .and_then(quantity::milli_cpu)
        .or(cpu_limit);
    let memory_limit = limits.get("memory").and_then(quantity::bytes);
    let memory_request = requests
        .get("memory")
        .and_then(quantity::bytes)
        .or(memory_limit);
    const PERIOD: i64 = 100_000;
    let qos = pod
        .status
        .as_ref()
        .and_then(|s| s.qos_class.as_deref())
        .unwrap_or("BestEffort");
    let oom_score_adj = match qos {
        "Guaranteed" => -997,
        "BestEffort" => 1000,
        _ => {
            let request = memory_request.unwrap_or(0);
            let score = if node_memory_bytes > 0 {
                1000 - (1000 * request) / node_memory_bytes
            } else {
                999
            };
            score.clamp(2, 999)
        }
    };
    LinuxContainerResources {
        cpu_period: if cpu_limit.is_some() { PERIOD } else { 0 },
        cpu_quota: cpu_limit
            .map(|m| (m * PERIOD / 1000).max(1000))
            .unwrap_or(0),
        cpu_shares: cpu_request.map(|m| (m * 1024 / 1000).max(2)).unwrap_or(2),
        memory_limit_in_bytes: memory_limit.unwrap_or(0),
        oom_score_adj,
        ..Default::default()
    }
}

fn security_context(pod: &Pod, c: &Container) -> LinuxContainerSecurityContext {
    let spec = pod.spec.clone().unwrap_or_default();
    let pod_sc = spec.security_context.clone().unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    let privileged = sc.privileged.unwrap_or(false);
    let run_as_user = sc.run_as_user.or(pod_sc.run_as_user);
    let run_as_group = sc.run_as_group.or(pod_sc.run_as_group);
    let pid = if spec.host_pid.unwrap_or(false) {
        NamespaceMode::Node
    } else if spec.share_process_namespace.unwrap_or(false) {
        NamespaceMode::Pod
    } else {
        NamespaceMode::Container
    };
    let node_or_pod = |host: Option<bool>| if host.unwrap_or(false) { NamespaceMode::Node } else { NamespaceMode::Pod } as i32;
    let caps = sc.capabilities.clone().unwrap_or_default();
    let unmasked = privileged || sc.proc_mount.as_deref() == Some("Unmasked");
    LinuxContainerSecurityContext {
        capabilities: Some(Capability {
            add_capabilities: caps.add.unwrap_or_default(),
            drop_capabilities: caps.drop.unwrap_or_default(),
            ..Default::default()
        }),
        privileged,
        namespace_options: Some(NamespaceOption {
            network: node_or_pod(spec.host_network),
            pid: pid as i32,
            ipc: node_or_pod(spec.host_ipc),
            ..Default::default()
        }),
        run_as_user: run_as_user.map(|value| Int64Value { value }),
        run_as_group: run_as_group.map(|value| Int64Value { value }),
        readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
        supplemental_groups: pod_sc.supplemental_groups.unwrap_or_default(),
        no_new_privs: sc.allow_privilege_escalation == Some(false),
        masked_paths: if unmasked {
            Vec::new()
        } else {
            MASKED_PATHS.iter().map(|s| s.to_string()).collect()
        },
        readonly_paths: if unmasked {
            Vec::new()
        } else {
            READONLY_PATHS.iter().map(|s| s.to_string()).collect()
        },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::{
        api::core::v1::{PodStatus, ResourceRequirements},
        apimachinery::pkg::api::resource::Quantity,
    };
    use std::collections::BTreeMap;

    #[test]
    fn cgroup_settings_follow_requests_and_limits() {
        let pod = Pod {
            status: Some(PodStatus {
                qos_class: Some("Burstable".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let c = Container {
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([
                    ("cpu".into(), Quantity("250m".into())),
                    ("memory".into(), Quantity("64Mi".into())),
                ])),
                limits: Some(BTreeMap::from([
                    ("cpu".into(), Quantity("500m".into())),
                    ("memory".into(), Quantity("128Mi".into())),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = resources(&pod, &c, 1 << 30);
        assert_eq!(r.cpu_shares, 256);
        assert_eq!(r.cpu_quota, 50_000);
        assert_eq!(r.cpu_period, 100_000);
        assert_eq!(r.memory_limit_in_bytes, 128 << 20);
        assert_eq!(r.oom_score_adj, 938);
    }
}
