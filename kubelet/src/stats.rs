//! Resource usage for `/stats/summary` (upstream's statsapi Summary) and `/metrics/resource`
//! (the metrics-server's source): the node from /proc, containers from CRI `ListContainerStats`,
//! pods as the sum of their containers.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Instant,
};

use cri_proto::v1::ContainerStats;
use serde_json::{json, Value};

use crate::{
    cri::{Runtime, CONTAINER_NAME_LABEL, POD_NAMESPACE_LABEL, POD_NAME_LABEL, POD_UID_LABEL},
    host,
};

/// Cumulative CPU time of the whole node in nanoseconds, from /proc/stat.
fn node_cpu_nanos() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal, in USER_HZ (100 per second).
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|i| fields.get(*i))
        .sum();
    Some(busy * 10_000_000)
}

/// A pod's usage: the sum of its containers.
#[derive(Default)]
struct PodTotals {
    namespace: String,
    name: String,
    containers: Vec<Value>,
    cpu_nanos: u64,
    nano_cores: u64,
    working_set: u64,
}

/// Collects usage on demand, remembering the previous node sample to derive a rate.
pub struct StatsProvider {
    runtime: Runtime,
    node_name: String,
    root_dir: PathBuf,
    start_time: String,
    last_cpu: Mutex<Option<(Instant, u64)>>,
}

/// One container's usage, keyed by its pod.
struct Usage {
    namespace: String,
    pod: String,
    uid: String,
    container: String,
    cpu_nanos: u64,
    nano_cores: Option<u64>,
    working_set: u64,
    usage: u64,
    rss: u64,
}

fn usage(s: &ContainerStats) -> Option<Usage> {
    let attrs = s.attributes.as_ref()?;
    let label = |k: &str| attrs.labels.get(k).cloned().unwrap_or_default();
    let cpu = s.cpu.as_ref();
    let memory = s.memory.as_ref();
    Some(Usage {
        namespace: label(POD_NAMESPACE_LABEL),
        pod: label(POD_NAME_LABEL),
        uid: attrs.labels.get(POD_UID_LABEL)?.clone(),
        container: attrs
            .labels
            .get(CONTAINER_NAME_LABEL)
            .cloned()
            .or_else(|| attrs.metadata.as_ref().map(|m| m.name.clone()))?,
        cpu_nanos: cpu
            .and_then(|c| c.usage_core_nano_seconds.as_ref())
            .map(|v| v.value)
            .unwrap_or(0),
        nano_cores: cpu
            .and_then(|c| c.usage_nano_cores.as_ref())
            .map(|v| v.value),
        working_set: memory
            .and_then(|m| m.working_set_bytes.as_ref())
            .map(|v| v.value)
            .unwrap_or(0),
        usage: memory
            .and_then(|m| m.usage_bytes.as_ref())
            .map(|v| v.value)
            .unwrap_or(0),
        rss: memory
            .and_then(|m| m.rss_bytes.as_ref())
            .map(|v| v.value)
            .unwrap_or(0),
    })
}

impl StatsProvider {
    pub fn new(runtime: Runtime, node_name: String, root_dir: PathBuf) -> Arc<StatsProvider> {
        Arc::new(StatsProvider {
            runtime,
            node_name,
            root_dir,
            start_time: jiff::Timestamp::now().to_string(),
            last_cpu: Mutex::new(None),
        })
    }

    /// Node CPU: cumulative nanoseconds and the rate since the previous sample.
    fn node_cpu(&self) -> (u64, u64) {
        let now = Instant::now();
        let total = node_cpu_nanos().unwrap_or(0);
        let mut last = self.last_cpu.lock().unwrap_or_else(|p| p.into_inner());
        let rate = match *last {
            Some((at, prev)) if now > at && total >= prev => {
                ((total - prev) as f64 / now.duration_since(at).as_secs_f64()) as u64
            }
            _ => 0,
        };
        *last = Some((now, total));
        (total, rate)
    }

    async fn containers(&self) -> Vec<Usage> {
        match self.runtime.list_container_stats().await {
            Ok(stats) => stats.iter().filter_map(usage).collect(),
            Err(err) => {
                tracing::debug!(%err, "listing container stats");
                Vec::new()
            }
        }
    }

    /// The statsapi Summary.
    pub async fn summary(&self) -> Value {
        let now = jiff::Timestamp::now().to_string();
        let (cpu_total, cpu_rate) = self.node_cpu();
        let mem_total = host::meminfo_kib("MemTotal").unwrap_or(0) * 1024;
        let mem_available = host::meminfo_kib("MemAvailable").unwrap_or(0) * 1024;
        let fs = host::filesystem(&self.root_dir);
        let mut pods: BTreeMap<String, PodTotals> = BTreeMap::new();
        for u in self.containers().await {
            let entry = pods.entry(u.uid.clone()).or_insert_with(|| PodTotals {
                namespace: u.namespace.clone(),
                name: u.pod.clone(),
                ..Default::default()
            });
            entry.containers.push(json!({
                "name": u.container,
                "cpu": {"time": now, "usageCoreNanoSeconds": u.cpu_nanos, "usageNanoCores": u.nano_cores.unwrap_or(0)},
                "memory": {"time": now, "workingSetBytes": u.working_set, "usageBytes": u.usage, "rssBytes": u.rss},
            }));
            entry.cpu_nanos += u.cpu_nanos;
            entry.nano_cores += u.nano_cores.unwrap_or(0);
            entry.working_set += u.working_set;
        }
        let pods: Vec<Value> = pods
            .into_iter()
            .map(|(uid, p)| {
                json!({
                    "podRef": {"name": p.name, "namespace": p.namespace, "uid": uid},
                    "containers": p.containers,
                    "cpu": {"time": now, "usageCoreNanoSeconds": p.cpu_nanos, "usageNanoCores": p.nano_cores},
                    "memory": {"time": now, "workingSetBytes": p.working_set},
                })
            })
            .collect();
        json!({
            "node": {
                "nodeName": self.node_name,
                "startTime": self.start_time,
                "cpu": {"time": now, "usageCoreNanoSeconds": cpu_total, "usageNanoCores": cpu_rate},
                "memory": {
                    "time": now,
                    "availableBytes": mem_available,
                    "usageBytes": mem_total.saturating_sub(mem_available),
                    "workingSetBytes": mem_total.saturating_sub(mem_available),
                },
                "fs": fs.map(|f| json!({"time": now, "availableBytes": f.available, "capacityBytes": f.capacity, "usedBytes": f.capacity.saturating_sub(f.available)})),
            },
            "pods": pods,
        })
    }

    /// `/metrics/resource` in the Prometheus text format, with upstream's metric names.
    pub async fn resource_metrics(&self) -> String {
        let (cpu_total, _) = self.node_cpu();
        let mem_total = host::meminfo_kib("MemTotal").unwrap_or(0) * 1024;
        let mem_available = host::meminfo_kib("MemAvailable").unwrap_or(0) * 1024;
        let containers = self.containers().await;
        let mut out = String::new();
        let mut family = |name: &str, help: &str, kind: &str, samples: Vec<(String, f64)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        family(
            "node_cpu_usage_seconds_total",
            "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
            "counter",
            vec![(String::new(), cpu_total as f64 / 1e9)],
        );
        family(
            "node_memory_working_set_bytes",
            "[STABLE] Current working set of the node in bytes",
            "gauge",
            vec![(
                String::new(),
                mem_total.saturating_sub(mem_available) as f64,
            )],
        );
        let labels = |u: &Usage| {
            format!(
                "{{container=\"{}\",namespace=\"{}\",pod=\"{}\"}}",
                u.container, u.namespace, u.pod
            )
        };
        family(
            "container_cpu_usage_seconds_total",
            "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
            "counter",
            containers
                .iter()
                .map(|u| (labels(u), u.cpu_nanos as f64 / 1e9))
                .collect(),
        );
        family(
            "container_memory_working_set_bytes",
            "[STABLE] Current working set of the container in bytes",
            "gauge",
            containers
                .iter()
                .map(|u| (labels(u), u.working_set as f64))
                .collect(),
        );
        let mut pods: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
        for u in &containers {
            let e = pods
                .entry((u.namespace.clone(), u.pod.clone()))
                .or_default();
            e.0 += u.cpu_nanos;
            e.1 += u.working_set;
        }
        let pod_labels =
            |(ns, pod): &(String, String)| format!("{{namespace=\"{ns}\",pod=\"{pod}\"}}");
        family(
            "pod_cpu_usage_seconds_total",
            "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
            "counter",
            pods.iter()
                .map(|(k, v)| (pod_labels(k), v.0 as f64 / 1e9))
                .collect(),
        );
        family(
            "pod_memory_working_set_bytes",
            "[STABLE] Current working set of the pod in bytes",
            "gauge",
            pods.iter()
                .map(|(k, v)| (pod_labels(k), v.1 as f64))
                .collect(),
        );
        family(
            "scrape_error",
            "[ALPHA] 1 if there was an error while getting container metrics, 0 otherwise",
            "gauge",
            vec![(String::new(), 0.0)],
        );
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_node_cpu() {
        assert!(super::node_cpu_nanos().is_some_and(|n| n > 0));
    }
}
