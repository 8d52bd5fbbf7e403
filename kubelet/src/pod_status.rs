//! The pod status the kubelet reports: container states from the runtime, phase, conditions
//! and addresses, computed as upstream's `generateAPIPodStatus` does.

use std::collections::HashMap;

use cri_proto::v1::ContainerStatus as CriContainer;
use k8s_openapi::{
    api::core::v1::{
        Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
        ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
    },
    apimachinery::pkg::apis::meta::v1::Time,
};

use crate::runtime_pod::{attempt, is_exited, is_running, RuntimePod};

/// What the pod worker knows beyond the runtime's state.
#[derive(Debug, Default, Clone)]
pub struct WorkerView {
    /// Why a container is waiting (reason, message), e.g. CrashLoopBackOff.
    pub waiting: HashMap<String, (String, String)>,
    /// Readiness by container name (from readiness probes; running containers without one are ready).
    pub ready: HashMap<String, bool>,
    /// Whether the startup probe of a container has succeeded.
    pub started: HashMap<String, bool>,
    pub pod_ips: Vec<String>,
    pub host_ip: String,
    pub sandbox_ready: bool,
    pub runtime_name: String,
}

fn time_from_nanos(n: i64) -> Option<Time> {
    (n > 0)
        .then(|| {
            jiff::Timestamp::from_nanosecond(i128::from(n))
                .ok()
                .map(Time)
        })
        .flatten()
}

/// The terminated state of a container instance, with upstream's reasons.
fn terminated(
    c: &CriContainer,
    runtime: &str,
    message: Option<String>,
) -> ContainerStateTerminated {
    let reason = if !c.reason.is_empty() && c.reason != "Completed" && c.reason != "Error" {
        c.reason.clone()
    } else if c.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    ContainerStateTerminated {
        exit_code: c.exit_code,
        reason: Some(reason),
        message: message.or_else(|| Some(c.message.clone()).filter(|m| !m.is_empty())),
        started_at: time_from_nanos(c.started_at),
        finished_at: time_from_nanos(c.finished_at),
        container_id: Some(format!("{runtime}://{}", c.id)),
        signal: None,
    }
}

/// The termination message the container wrote to its termination-log file.
fn termination_message(c: &CriContainer) -> Option<String> {
    c.mounts
        .iter()
        .find(|m| {
            m.container_path.ends_with("termination-log")
                || m.host_path.ends_with(".termination-log")
        })
        .and_then(|m| std::fs::read_to_string(&m.host_path).ok())
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(4096).collect())
}

fn container_status(
    spec: &Container,
    runtime: &RuntimePod,
    view: &WorkerView,
    default_waiting: &str,
) -> ContainerStatus {
    let mut instances = runtime.instances(&spec.name);
    let latest = instances.next();
    let previous = instances.next();
    let rt = view.runtime_name.as_str();
    let waiting = view.waiting.get(&spec.name);
    let (state, last_state) = match (latest, waiting) {
        (Some(c), _) if is_running(c) => (
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: time_from_nanos(c.started_at),
                }),
                ..Default::default()
            },
            previous.filter(|p| is_exited(p)).map(|p| ContainerState {
                terminated: Some(terminated(p, rt, termination_message(p))),
                ..Default::default()
            }),
        ),
        (Some(c), Some((reason, message))) if is_exited(c) => (
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.clone()),
                    message: Some(message.clone()),
                }),
                ..Default::default()
            },
            Some(ContainerState {
                terminated: Some(terminated(c, rt, termination_message(c))),
                ..Default::default()
            }),
        ),
        (Some(c), None) if is_exited(c) => (
            ContainerState {
                terminated: Some(terminated(c, rt, termination_message(c))),
                ..Default::default()
            },
            previous.filter(|p| is_exited(p)).map(|p| ContainerState {
                terminated: Some(terminated(p, rt, termination_message(p))),
                ..Default::default()
            }),
        ),
        (_, Some((reason, message))) => (
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.clone()),
                    message: Some(message.clone()).filter(|m| !m.is_empty()),
                }),
                ..Default::default()
            },
            latest.filter(|c| is_exited(c)).map(|c| ContainerState {
                terminated: Some(terminated(c, rt, termination_message(c))),
                ..Default::default()
            }),
        ),
        _ => (
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(default_waiting.into()),
                    message: None,
                }),
                ..Default::default()
            },
            None,
        ),
    };
    let running = state.running.is_some();
    ContainerStatus {
        name: spec.name.clone(),
        image: spec.image.clone().unwrap_or_default(),
        image_id: latest.map(|c| c.image_ref.clone()).unwrap_or_default(),
        container_id: latest.map(|c| format!("{rt}://{}", c.id)),
        ready: running && view.ready.get(&spec.name).copied().unwrap_or(true),
        started: Some(running && view.started.get(&spec.name).copied().unwrap_or(true)),
        restart_count: latest.map(|c| attempt(c) as i32).unwrap_or(0),
        state: Some(state),
        last_state: Some(last_state.unwrap_or_default()),
        ..Default::default()
    }
}

/// Whether an init container finished successfully.
fn succeeded(status: &ContainerStatus) -> bool {
    status
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .is_some_and(|t| t.exit_code == 0)
}

/// Upstream's pod phase from the container statuses and the restart policy.
pub fn phase(pod: &Pod, init: &[ContainerStatus], containers: &[ContainerStatus]) -> &'static str {
    let policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    let init_specs = pod.spec.as_ref().and_then(|s| s.init_containers.as_ref());
    for status in init {
        // Sidecars (restartPolicy Always on an init container) only need to be started.
        let sidecar = init_specs
            .and_then(|l| l.iter().find(|c| c.name == status.name))
            .is_some_and(|c| c.restart_policy.as_deref() == Some("Always"));
        if sidecar && status.state.as_ref().is_some_and(|s| s.running.is_some()) {
            continue;
        }
        if succeeded(status) {
            continue;
        }
        let failed = status
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some_and(|t| t.exit_code != 0)
            || status
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .is_some_and(|t| t.exit_code != 0);
        if failed && policy == "Never" {
            return "Failed";
        }
        return "Pending";
    }
    let (mut running, mut waiting, mut stopped, mut succeeded_n) = (0, 0, 0, 0);
    for status in containers {
        let state = status.state.clone().unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = state.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded_n += 1;
            }
        } else if status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some()
        {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        match policy {
            "Always" => "Running",
            _ if stopped == succeeded_n => "Succeeded",
            "Never" => "Failed",
            _ => "Running",
        }
    } else {
        "Pending"
    }
}

fn condition(
    kind: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    previous: Option<&PodStatus>,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    // Keep the transition time while the condition's status is unchanged.
    let transition = previous
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == kind))
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(jiff::Timestamp::now()));
    PodCondition {
        type_: kind.into(),
        status: status.into(),
        reason: if ok { None } else { reason.map(String::from) },
        message: if ok { None } else { message },
        last_transition_time: Some(transition),
        last_probe_time: None,
        observed_generation: None,
    }
}

/// Whether the status in the API disagrees with `ours` on what matters to readers: phase,
/// condition statuses, and container readiness and restarts.
pub fn differs(api: Option<&PodStatus>, ours: &PodStatus) -> bool {
    let Some(api) = api else { return true };
    let conditions = |s: &PodStatus| -> Vec<(String, String)> {
        let mut c: Vec<(String, String)> = s
            .conditions
            .iter()
            .flatten()
            .map(|c| (c.type_.clone(), c.status.clone()))
            .collect();
        c.sort();
        c
    };
    let containers = |s: &PodStatus| -> Vec<(String, bool, i32)> {
        s.container_statuses
            .iter()
            .flatten()
            .map(|c| (c.name.clone(), c.ready, c.restart_count))
            .collect()
    };
    api.phase != ours.phase
        || conditions(api) != conditions(ours)
        || containers(api) != containers(ours)
}

/// The pod's status as of now.
pub fn compute(pod: &Pod, runtime: &RuntimePod, view: &WorkerView) -> PodStatus {
    let spec = pod.spec.clone().unwrap_or_default();
    let previous = pod.status.as_ref();
    let init: Vec<ContainerStatus> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| container_status(c, runtime, view, "PodInitializing"))
        .collect();
    let initialized = init.iter().all(|s| {
        succeeded(s)
            || spec.init_containers.iter().flatten().any(|c| {
                c.name == s.name
                    && c.restart_policy.as_deref() == Some("Always")
                    && s.state.as_ref().is_some_and(|st| st.running.is_some())
            })
    });
    let waiting_reason = if initialized {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let containers: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(c, runtime, view, waiting_reason))
        .collect();
    // A finished pod never runs again: its phase (and why, e.g. Evicted) stays.
    let previous_phase = previous.and_then(|s| s.phase.as_deref());
    let phase = match previous_phase {
        Some(p @ ("Succeeded" | "Failed")) => {
            if p == "Failed" {
                "Failed"
            } else {
                "Succeeded"
            }
        }
        _ => phase(pod, &init, &containers),
    };
    let terminal = phase == "Succeeded" || phase == "Failed";
    let unready: Vec<String> = containers
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.name.clone())
        .collect();
    let uninitialized: Vec<String> = init
        .iter()
        .filter(|c| !succeeded(c))
        .map(|c| c.name.clone())
        .collect();
    let containers_ready = unready.is_empty();
    let not_ready_reason = if terminal {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    };
    let not_ready_message =
        (!terminal).then(|| format!("containers with unready status: [{}]", unready.join(" ")));
    let mut conditions = vec![
        condition(
            "PodReadyToStartContainers",
            view.sandbox_ready,
            None,
            None,
            previous,
        ),
        condition(
            "Initialized",
            initialized || terminal,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                uninitialized.join(" ")
            )),
            previous,
        ),
        condition(
            "Ready",
            containers_ready && !terminal,
            Some(not_ready_reason),
            not_ready_message.clone(),
            previous,
        ),
        condition(
            "ContainersReady",
            containers_ready && !terminal,
            Some(not_ready_reason),
            not_ready_message,
            previous,
        ),
    ];
    if let Some(scheduled) = previous
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
    {
        conditions.push(scheduled.clone());
    }
    // Keep the last known pod IPs once the sandbox is gone (a finished pod keeps its address).
    let pod_ips = if view.pod_ips.is_empty() {
        previous
            .and_then(|s| s.pod_ips.clone())
            .map(|l| l.into_iter().map(|p| p.ip).collect())
            .unwrap_or_default()
    } else {
        view.pod_ips.clone()
    };
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        container_statuses: Some(containers),
        init_container_statuses: (!init.is_empty()).then_some(init),
        host_ip: Some(view.host_ip.clone()).filter(|s| !s.is_empty()),
        host_ips: Some(vec![HostIP {
            ip: view.host_ip.clone(),
        }])
        .filter(|_| !view.host_ip.is_empty()),
        pod_ip: pod_ips.first().cloned(),
        pod_ips: (!pod_ips.is_empty())
            .then(|| pod_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        start_time: previous
            .and_then(|s| s.start_time.clone())
            .or_else(|| Some(Time(jiff::Timestamp::now()))),
        qos_class: previous.and_then(|s| s.qos_class.clone()),
        reason: previous.and_then(|s| s.reason.clone()),
        message: previous.and_then(|s| s.message.clone()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;

    fn status(state: ContainerState) -> ContainerStatus {
        ContainerStatus {
            name: "c".into(),
            state: Some(state),
            ..Default::default()
        }
    }

    fn pod(policy: &str) -> Pod {
        Pod {
            spec: Some(PodSpec {
                restart_policy: Some(policy.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn readers_see_differences_in_readiness() {
        let ready = |r: bool| PodStatus {
            phase: Some("Running".into()),
            container_statuses: Some(vec![ContainerStatus {
                name: "c".into(),
                ready: r,
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert!(!differs(Some(&ready(true)), &ready(true)));
        assert!(differs(Some(&ready(false)), &ready(true)));
        assert!(differs(None, &ready(true)));
    }

    #[test]
    fn phases_follow_upstream() {
        let running = status(ContainerState {
            running: Some(Default::default()),
            ..Default::default()
        });
        let ok = status(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 0,
                ..Default::default()
            }),
            ..Default::default()
        });
        let failed = status(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 1,
                ..Default::default()
            }),
            ..Default::default()
        });
        let creating = status(ContainerState {
            waiting: Some(Default::default()),
            ..Default::default()
        });
        assert_eq!(
            phase(&pod("Always"), &[], std::slice::from_ref(&running)),
            "Running"
        );
        assert_eq!(
            phase(&pod("Never"), &[], std::slice::from_ref(&ok)),
            "Succeeded"
        );
        assert_eq!(
            phase(&pod("Never"), &[], std::slice::from_ref(&failed)),
            "Failed"
        );
        assert_eq!(
            phase(&pod("OnFailure"), &[], std::slice::from_ref(&failed)),
            "Running"
        );
        assert_eq!(
            phase(&pod("Always"), &[], std::slice::from_ref(&ok)),
            "Running"
        );
        assert_eq!(
            phase(&pod("Always"), &[], std::slice::from_ref(&creating)),
            "Pending"
        );
        assert_eq!(phase(&pod("Never"), &[failed], &[creating]), "Failed");
    }
}
