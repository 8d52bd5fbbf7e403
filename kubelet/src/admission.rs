//! Admission on the node: a pod is rejected when it does not fit the node's allocatable
//! resources or wants a host port another pod holds, with upstream's reasons (OutOfcpu,
//! OutOfmemory, OutOfpods, NodePorts).

use std::collections::HashSet;

use k8s_openapi::api::core::v1::Pod;

use crate::quantity;

/// A rejection: the status reason and message the pod fails with.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub reason: String,
    pub message: String,
}

/// Upstream's QoS classes: Guaranteed when every container limits cpu and memory with requests
/// equal to limits, BestEffort when nothing is requested or limited, else Burstable.
pub fn qos_class(pod: &Pod) -> String {
    let Some(spec) = &pod.spec else {
        return "BestEffort".into();
    };
    let containers: Vec<_> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in containers {
        let res = c.resources.clone().unwrap_or_default();
        let requests = res.requests.unwrap_or_default();
        let limits = res.limits.unwrap_or_default();
        for name in ["cpu", "memory"] {
            any |= requests.contains_key(name) || limits.contains_key(name);
            match (requests.get(name), limits.get(name)) {
                (_, None) => guaranteed = false,
                (Some(r), Some(l)) if quantity::parse(r) != quantity::parse(l) => {
                    guaranteed = false
                }
                _ => {}
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
    .into()
}

/// The effective requests of a pod: the larger of the sum of its containers and its largest
/// init container, as upstream computes them.
pub fn pod_requests(pod: &Pod) -> (i64, i64) {
    let Some(spec) = &pod.spec else { return (0, 0) };
    let request = |c: &k8s_openapi::api::core::v1::Container, name: &str| {
        let res = c.resources.as_ref();
        res.and_then(|r| r.requests.as_ref())
            .and_then(|m| m.get(name))
            .or_else(|| {
                res.and_then(|r| r.limits.as_ref())
                    .and_then(|m| m.get(name))
            })
            .and_then(|q| {
                if name == "cpu" {
                    quantity::milli_cpu(q)
                } else {
                    quantity::bytes(q)
                }
            })
            .unwrap_or(0)
    };
    let sum = |name: &str| {
        spec.containers
            .iter()
            .map(|c| request(c, name))
            .sum::<i64>()
    };
    let init = |name: &str| {
        spec.init_containers
            .iter()
            .flatten()
            .map(|c| request(c, name))
            .max()
            .unwrap_or(0)
    };
    (
        sum("cpu").max(init("cpu")),
        sum("memory").max(init("memory")),
    )
}

fn host_ports(pod: &Pod) -> HashSet<(String, i32)> {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|h| *h > 0)?;
            Some((p.protocol.clone().unwrap_or_else(|| "TCP".into()), port))
        })
        .collect()
}

/// Under memory pressure BestEffort pods are turned away, under disk pressure all pods, with
/// upstream's reason Evicted.
pub fn admit_under_pressure(pod: &Pod, memory: bool, disk: bool) -> Result<(), Rejection> {
    let condition = if disk {
        "DiskPressure"
    } else if memory && qos_class(pod) == "BestEffort" {
        "MemoryPressure"
    } else {
        return Ok(());
    };
    Err(Rejection {
        reason: "Evicted".into(),
        message: format!("The node had condition: [{condition}]. "),
    })
}

/// Whether `pod` may run next to `active` on a node with `allocatable` (millicores, bytes, pods).
pub fn admit(pod: &Pod, active: &[Pod], allocatable: (i64, i64, i64)) -> Result<(), Rejection> {
    let (cpu_cap, mem_cap, pods_cap) = allocatable;
    if active.len() as i64 + 1 > pods_cap {
        return Err(Rejection {
            reason: "OutOfpods".into(),
            message: format!("Node didn't have enough resource: pods, requested: 1, used: {}, capacity: {pods_cap}", active.len()),
        });
    }
    let (cpu, mem) = pod_requests(pod);
    let (cpu_used, mem_used) = active
        .iter()
        .map(pod_requests)
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    if cpu > 0 && cpu_used + cpu > cpu_cap {
        return Err(Rejection {
            reason: "OutOfcpu".into(),
            message: format!("Node didn't have enough resource: cpu, requested: {cpu}, used: {cpu_used}, capacity: {cpu_cap}"),
        });
    }
    if mem > 0 && mem_used + mem > mem_cap {
        return Err(Rejection {
            reason: "OutOfmemory".into(),
            message: format!("Node didn't have enough resource: memory, requested: {mem}, used: {mem_used}, capacity: {mem_cap}"),
        });
    }
    let wanted = host_ports(pod);
    if active
        .iter()
        .any(|other| !host_ports(other).is_disjoint(&wanted))
    {
        return Err(Rejection {
            reason: "NodePorts".into(),
            message: "Node didn't have free ports for the requested pod ports".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::{
        api::core::v1::{Container, ContainerPort, PodSpec, ResourceRequirements},
        apimachinery::pkg::api::resource::Quantity,
    };
    use std::collections::BTreeMap;

    fn pod(cpu: &str, host_port: Option<i32>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    resources: Some(ResourceRequirements {
                        requests: Some(BTreeMap::from([("cpu".into(), Quantity(cpu.into()))])),
                        ..Default::default()
                    }),
                    ports: host_port.map(|p| {
                        vec![ContainerPort {
                            container_port: 80,
                            host_port: Some(p),
                            ..Default::default()
                        }]
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn rejects_what_does_not_fit() {
        let alloc = (2000, 1 << 30, 110);
        assert!(admit(&pod("1", None), &[pod("500m", None)], alloc).is_ok());
        assert_eq!(
            admit(&pod("2", None), &[pod("500m", None)], alloc)
                .unwrap_err()
                .reason,
            "OutOfcpu"
        );
        assert_eq!(
            admit(&pod("1m", Some(8080)), &[pod("1m", Some(8080))], alloc)
                .unwrap_err()
                .reason,
            "NodePorts"
        );
        assert_eq!(
            admit(&pod("1m", None), &[], (2000, 1 << 30, 0))
                .unwrap_err()
                .reason,
            "OutOfpods"
        );
        assert_eq!(qos_class(&pod("1", None)), "Burstable");
    }
}
