//! Node-pressure eviction: when `memory.available` or `nodefs.available` falls below its hard
//! threshold (`evictionHard`, upstream defaults 100Mi and 10%), the node reports MemoryPressure
//! or DiskPressure, admission turns pods away, and one pod per round is evicted — BestEffort
//! before Burstable before Guaranteed, the largest user of memory first — failing with reason
//! Evicted.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use k8s_openapi::{api::core::v1::Pod, apimachinery::pkg::api::resource::Quantity};
use tokio::sync::watch;

use crate::{admission, cri::Runtime, cri::POD_UID_LABEL, host, pod_workers::PodWorkers, quantity};

const MONITOR_PERIOD: Duration = Duration::from_secs(10);

/// A hard threshold: an absolute quantity or a share of capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Bytes(u64),
    Percent(f64),
}

impl Threshold {
    pub fn parse(text: &str) -> Option<Threshold> {
        match text.strip_suffix('%') {
            Some(p) => p.trim().parse().ok().map(Threshold::Percent),
            None => quantity::bytes(&Quantity(text.to_string()))
                .map(|b| Threshold::Bytes(b.max(0) as u64)),
        }
    }

    fn bytes(&self, capacity: u64) -> u64 {
        match self {
            Threshold::Bytes(b) => *b,
            Threshold::Percent(p) => (capacity as f64 * p / 100.0) as u64,
        }
    }
}

/// The thresholds of `evictionHard` this kubelet acts on.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub memory_available: Threshold,
    pub nodefs_available: Threshold,
}

impl Thresholds {
    pub fn from_config(hard: &BTreeMap<String, String>) -> Thresholds {
        let get = |k: &str, default: Threshold| {
            hard.get(k)
                .and_then(|v| Threshold::parse(v))
                .unwrap_or(default)
        };
        Thresholds {
            memory_available: get("memory.available", Threshold::Bytes(100 * 1024 * 1024)),
            nodefs_available: get("nodefs.available", Threshold::Percent(10.0)),
        }
    }
}

/// The node's current pressure, shared with node status and admission.
#[derive(Debug, Default)]
pub struct Pressure {
    pub memory: AtomicBool,
    pub disk: AtomicBool,
}

impl Pressure {
    pub fn memory(&self) -> bool {
        self.memory.load(Ordering::Relaxed)
    }

    pub fn disk(&self) -> bool {
        self.disk.load(Ordering::Relaxed)
    }
}

/// Observes the signals and updates `pressure`; returns (memory, disk).
pub fn observe(
    thresholds: &Thresholds,
    root: &std::path::Path,
    pressure: &Pressure,
) -> (bool, bool) {
    let mem_capacity = host::meminfo_kib("MemTotal").unwrap_or(0) * 1024;
    let mem_available = host::meminfo_kib("MemAvailable").unwrap_or(u64::MAX / 1024) * 1024;
    let memory = mem_available < thresholds.memory_available.bytes(mem_capacity);
    let disk = host::filesystem(root)
        .is_some_and(|fs| fs.available < thresholds.nodefs_available.bytes(fs.capacity));
    pressure.memory.store(memory, Ordering::Relaxed);
    pressure.disk.store(disk, Ordering::Relaxed);
    (memory, disk)
}

fn qos_rank(pod: &Pod) -> u8 {
    match admission::qos_class(pod).as_str() {
        "BestEffort" => 0,
        "Burstable" => 1,
        _ => 2,
    }
}

/// The pod to evict first: lowest QoS class, then the largest memory user.
pub fn pick_victim<'a>(pods: &'a [Pod], usage: &HashMap<String, u64>) -> Option<&'a Pod> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .min_by_key(|p| {
            let used = p
                .metadata
                .uid
                .as_ref()
                .and_then(|u| usage.get(u))
                .copied()
                .unwrap_or(0);
            (qos_rank(p), std::cmp::Reverse(used))
        })
}

/// Memory working set per pod UID, from CRI stats.
async fn pod_usage(runtime: &Runtime) -> HashMap<String, u64> {
    let mut usage = HashMap::new();
    for s in runtime.list_container_stats().await.unwrap_or_default() {
        let uid = s
            .attributes
            .as_ref()
            .and_then(|a| a.labels.get(POD_UID_LABEL))
            .cloned();
        let ws = s
            .memory
            .as_ref()
            .and_then(|m| m.working_set_bytes.as_ref())
            .map(|v| v.value)
            .unwrap_or(0);
        if let Some(uid) = uid {
            *usage.entry(uid).or_default() += ws;
        }
    }
    usage
}

/// Watches the signals until `shutdown` flips, evicting one pod per round under pressure.
pub async fn run(
    thresholds: Thresholds,
    root: PathBuf,
    runtime: Runtime,
    workers: Arc<PodWorkers>,
    pressure: Arc<Pressure>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(MONITOR_PERIOD);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let (memory, disk) = observe(&thresholds, &root, &pressure);
        if !memory && !disk {
            continue;
        }
        let resource = if memory {
            "memory"
        } else {
            "ephemeral-storage"
        };
        let pods = workers.pods();
        let usage = pod_usage(&runtime).await;
        if let Some(victim) = pick_victim(&pods, &usage) {
            let uid = victim.metadata.uid.clone().unwrap_or_default();
            tracing::info!(pod = %victim.metadata.name.as_deref().unwrap_or_default(), %resource, "evicting pod under node pressure");
            workers.evict(&uid, &format!("The node was low on resource: {resource}. "));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};

    fn pod(uid: &str, cpu: Option<&str>) -> Pod {
        Pod {
            metadata: kube::api::ObjectMeta {
                uid: Some(uid.into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    resources: cpu.map(|c| ResourceRequirements {
                        requests: Some(BTreeMap::from([("cpu".into(), Quantity(c.into()))])),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn thresholds_parse() {
        assert_eq!(Threshold::parse("100Mi"), Some(Threshold::Bytes(100 << 20)));
        assert_eq!(Threshold::parse("10%"), Some(Threshold::Percent(10.0)));
        assert_eq!(Threshold::Percent(10.0).bytes(1000), 100);
        let t = Thresholds::from_config(&BTreeMap::new());
        assert_eq!(t.memory_available, Threshold::Bytes(100 << 20));
    }

    #[test]
    fn best_effort_and_big_users_go_first() {
        let pods = vec![
            pod("burst", Some("1")),
            pod("small", None),
            pod("big", None),
        ];
        let usage = HashMap::from([
            ("small".to_string(), 10),
            ("big".to_string(), 1000),
            ("burst".to_string(), 5000),
        ]);
        assert_eq!(
            pick_victim(&pods, &usage).and_then(|p| p.metadata.uid.as_deref()),
            Some("big")
        );
    }
}
