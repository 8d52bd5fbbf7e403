//! Resource arithmetic as the scheduler sees it: quantities as integers (milli-cpu, bytes,
//! counts) and a pod's effective requests computed the way upstream's `PodRequests` does
//! (init containers, restartable sidecars, pod overhead).

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{Container, Pod},
    apimachinery::pkg::api::resource::Quantity,
};

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
pub const PODS: &str = "pods";

/// The cpu a container without a cpu request counts as when scoring (upstream's 100m).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// The memory a container without a memory request counts as when scoring (200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of every resource: cpu in milli-cores, everything else in base units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub pods: i64,
    /// Extended and other resources (hugepages, `example.com/gpu`, ...).
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// Reads a `ResourceList`.
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let mut r = Resources::default();
        for (name, q) in list.into_iter().flatten() {
            r.set(name, quantity_value(name, q));
        }
        r
    }

    /// The amount of `name` (milli-cores for cpu).
    pub fn get(&self, name: &str) -> i64 {
        match name {
            CPU => self.milli_cpu,
            MEMORY => self.memory,
            EPHEMERAL_STORAGE => self.ephemeral_storage,
            PODS => self.pods,
            other => self.scalar.get(other).copied().unwrap_or(0),
        }
    }

    pub fn set(&mut self, name: &str, value: i64) {
        match name {
            CPU => self.milli_cpu = value,
            MEMORY => self.memory = value,
            EPHEMERAL_STORAGE => self.ephemeral_storage = value,
            PODS => self.pods = value,
            other => {
                self.scalar.insert(other.to_string(), value);
            }
        }
    }

    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.pods += other.pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) += v;
        }
    }

    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.pods -= other.pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) -= v;
        }
    }

    /// Element-wise maximum.
    pub fn max_with(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        self.pods = self.pods.max(other.pods);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
    }
}

/// A quantity as an integer in the unit the scheduler uses for `name`: milli-cores for cpu,
/// the value rounded up otherwise (as upstream's `MilliValue`/`Value`).
pub fn quantity_value(name: &str, q: &Quantity) -> i64 {
    let scale = if name == CPU { 3 } else { 0 };
    parse_scaled(&q.0, scale).unwrap_or(0)
}

/// Parses a quantity string and returns `value * 10^scale`, rounded up.
pub fn parse_scaled(text: &str, scale: i32) -> Option<i64> {
    apimachinery::quantity::parse_scaled(text, scale).and_then(|v| i64::try_from(v).ok())
}

fn container_requests(c: &Container) -> Resources {
    Resources::from_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()))
}

/// Requests with cpu and memory defaulted when missing, for scoring.
fn non_zero(mut r: Resources) -> Resources {
    if r.milli_cpu == 0 {
        r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
    }
    if r.memory == 0 {
        r.memory = DEFAULT_MEMORY_REQUEST;
    }
    r
}

/// The pod's requests as upstream computes them: the sum of the app containers and
/// restartable (sidecar) init containers, at least the peak of any init container plus the
/// sidecars started before it, plus the pod overhead. `non_zero` applies the scoring defaults
/// per container.
pub fn pod_requests(pod: &Pod, non_zero_defaults: bool) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources::default();
    };
    let req = |c: &Container| {
        let r = container_requests(c);
        if non_zero_defaults {
            non_zero(r)
        } else {
            r
        }
    };
    let mut total = Resources::default();
    for c in &spec.containers {
        total.add(&req(c));
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let mut r = req(c);
        if c.restart_policy.as_deref() == Some("Always") {
            total.add(&r);
            sidecars.add(&r);
            r = sidecars.clone();
        } else {
            r.add(&sidecars);
        }
        init_peak.max_with(&r);
    }
    total.max_with(&init_peak);
    if let Some(overhead) = spec.overhead.as_ref() {
        total.add(&Resources::from_list(Some(overhead)));
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_quantities() {
        assert_eq!(parse_scaled("500m", 3), Some(500));
        assert_eq!(parse_scaled("2", 3), Some(2000));
        assert_eq!(parse_scaled("0.1", 3), Some(100));
        assert_eq!(parse_scaled("1Gi", 0), Some(1 << 30));
        assert_eq!(parse_scaled("16Gi", 0), Some(16 << 30));
        assert_eq!(parse_scaled("1.5k", 0), Some(1500));
        assert_eq!(parse_scaled("1e3", 0), Some(1000));
        assert_eq!(parse_scaled("1m", 0), Some(1));
        assert_eq!(parse_scaled("abc", 0), None);
    }

    #[test]
    fn init_containers_sidecars_and_overhead() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "500m"}}}
                ],
                "initContainers": [
                    {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "200m"}}},
                    {"name": "big", "resources": {"requests": {"cpu": "3", "memory": "512Mi"}}}
                ],
                "overhead": {"cpu": "100m"}
            }
        }))
        .unwrap();
        let r = pod_requests(&pod, false);
        // max(1 + 0.5 + 0.2, 3 + 0.2) + 0.1
        assert_eq!(r.milli_cpu, 3300);
        assert_eq!(r.memory, 1 << 30);
        let nz = pod_requests(&pod, true);
        assert_eq!(
            nz.memory,
            (1 << 30) + DEFAULT_MEMORY_REQUEST + DEFAULT_MEMORY_REQUEST
        );
    }
}
