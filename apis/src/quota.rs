//! Quota evaluation of the built-in types, as upstream's `pkg/quota/v1/evaluator/core`: what an
//! object consumes of each quota resource (`pods`, `requests.cpu`, `services.nodeports`,
//! `count/deployments.apps`, ...), which quota scopes it falls in, and which resources a pod
//! must state explicitly before a quota on them admits it. The apiserver's ResourceQuota
//! admission charges this usage; upstream's quota controller recomputes usage with the same
//! evaluators, so ferrokube's controller can share this module.

use std::collections::{BTreeMap, BTreeSet};

use apimachinery::quantity::Quantity;
use serde_json::Value;

/// Resource name to amount, sorted as upstream prints them.
pub type ResourceList = BTreeMap<String, Quantity>;

/// Resources a pod quota on which requires every container to state them (upstream's
/// backward-compatible `validationSet`).
const POD_EXPLICIT: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

/// The compute resources of a pod's containers, under their quota names (also standard
/// resource names for validation).
pub(crate) const COMPUTE_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
];

const SERVICE_RESOURCES: &[&str] = &[
    "services",
    "count/services",
    "services.nodeports",
    "services.loadbalancers",
];

const PVC_RESOURCES: &[&str] = &[
    "persistentvolumeclaims",
    "count/persistentvolumeclaims",
    "requests.storage",
];

/// Core resources that kept their pre-`count/` quota names.
const LEGACY_COUNTED: &[&str] = &[
    "configmaps",
    "secrets",
    "resourcequotas",
    "replicationcontrollers",
];

const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

/// The evaluator of one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evaluator {
    Pod,
    Service,
    PersistentVolumeClaim,
    /// Object counts (`count/<resource>.<group>`, and the legacy name for a few core kinds).
    Count {
        group: &'static str,
        plural: &'static str,
    },
}

impl Evaluator {
    /// The evaluator of a resource; every resource is at least counted.
    pub fn of(group: &'static str, plural: &'static str) -> Evaluator {
        match (group, plural) {
            ("", "pods") => Evaluator::Pod,
            ("", "services") => Evaluator::Service,
            ("", "persistentvolumeclaims") => Evaluator::PersistentVolumeClaim,
            _ => Evaluator::Count { group, plural },
        }
    }

    /// Whether updates can change usage (pods: only through a resize, which is not served).
    pub fn handles_update(&self) -> bool {
        matches!(self, Evaluator::Service | Evaluator::PersistentVolumeClaim)
    }

    fn count_name(&self) -> String {
        match self {
            Evaluator::Pod => "count/pods".into(),
            Evaluator::Service => "count/services".into(),
            Evaluator::PersistentVolumeClaim => "count/persistentvolumeclaims".into(),
            Evaluator::Count { group: "", plural } => format!("count/{plural}"),
            Evaluator::Count { group, plural } => format!("count/{plural}.{group}"),
        }
    }

    /// Whether this evaluator accounts for the quota resource `name`.
    pub fn handles_resource(&self, name: &str) -> bool {
        match self {
            Evaluator::Pod => {
                matches!(name, "pods" | "count/pods")
                    || COMPUTE_RESOURCES.contains(&name)
                    || name.starts_with("hugepages-")
                    || name.starts_with("requests.hugepages-")
                    || name
                        .strip_prefix("requests.")
                        .is_some_and(is_extended_resource)
            }
            Evaluator::Service => SERVICE_RESOURCES.contains(&name),
            Evaluator::PersistentVolumeClaim => {
                PVC_RESOURCES.contains(&name)
                    || name.split_once(STORAGE_CLASS_SUFFIX).is_some_and(|(_, r)| {
                        r == "persistentvolumeclaims" || r == "requests.storage"
                    })
            }
            Evaluator::Count { group, plural } => {
                name == self.count_name()
                    || (group.is_empty() && name == *plural && LEGACY_COUNTED.contains(plural))
            }
        }
    }

    /// What `obj` consumes.
    pub fn usage(&self, obj: &Value) -> ResourceList {
        let mut out = ResourceList::new();
        out.insert(self.count_name(), one());
        match self {
            Evaluator::Pod => pod_usage(obj, &mut out),
            Evaluator::Service => service_usage(obj, &mut out),
            Evaluator::PersistentVolumeClaim => pvc_usage(obj, &mut out),
            Evaluator::Count { group, plural } => {
                if group.is_empty() && LEGACY_COUNTED.contains(plural) {
                    out.insert(plural.to_string(), one());
                }
            }
        }
        out
    }

    /// Whether `obj` falls in every scope of `quota` (a quota without scopes covers all).
    /// Only pods have scopes; a scoped quota covers nothing else.
    pub fn matches_scopes(&self, quota: &Value, obj: &Value) -> bool {
        scopes(quota)
            .iter()
            .all(|s| *self == Evaluator::Pod && pod_matches_scope(obj, s))
    }

    /// For pods: refuses one whose containers do not state a resource the quota limits
    /// (`must specify limits.cpu for: app; requests.memory for: app,sidecar`).
    pub fn constraints(&self, restricted: &BTreeSet<String>, obj: &Value) -> Result<(), String> {
        if *self != Evaluator::Pod {
            return Ok(());
        }
        let required: BTreeSet<&str> = restricted
            .iter()
            .map(String::as_str)
            .filter(|r| POD_EXPLICIT.contains(r))
            .collect();
        if required.is_empty() {
            return Ok(());
        }
        let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for c in containers(obj, "containers").chain(containers(obj, "initContainers")) {
            let mut stated = ResourceList::new();
            compute_usage(
                &resource_list(c, "requests"),
                &resource_list(c, "limits"),
                &mut stated,
            );
            for r in &required {
                if !stated.contains_key(*r) {
                    let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
                    missing.entry(r).or_default().insert(name.to_string());
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let parts: Vec<String> = missing
            .iter()
            .map(|(r, names)| {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                format!("{r} for: {}", names.join(","))
            })
            .collect();
        Err(format!("must specify {}", parts.join("; ")))
    }
}

fn one() -> Quantity {
    Quantity::parse("1").unwrap_or_else(Quantity::zero)
}

fn count(n: usize) -> Quantity {
    Quantity::parse(&n.to_string()).unwrap_or_else(Quantity::zero)
}

/// Upstream's extended resources: domain-qualified names outside `kubernetes.io`.
fn is_extended_resource(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/")
}

/// A quota's scopes: `spec.scopes` (as `Exists`) and `spec.scopeSelector.matchExpressions`.
fn scopes(quota: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| serde_json::json!({ "scopeName": s, "operator": "Exists" }))
        .collect();
    out.extend(
        quota
            .pointer("/spec/scopeSelector/matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .cloned(),
    );
    out
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn pod_matches_scope(pod: &Value, scope: &Value) -> bool {
    let deadline = pod.pointer("/spec/activeDeadlineSeconds");
    match str_at(scope, "/scopeName") {
        "Terminating" => deadline.and_then(Value::as_i64).is_some_and(|d| d >= 0),
        "NotTerminating" => deadline.is_none_or(Value::is_null),
        "BestEffort" => is_best_effort(pod),
        "NotBestEffort" => !is_best_effort(pod),
        "PriorityClass" => {
            let class = str_at(pod, "/spec/priorityClassName");
            let values: Vec<&str> = scope
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            // Upstream matches a label set that always holds the class (possibly empty).
            match str_at(scope, "/operator") {
                "Exists" => !class.is_empty(),
                "In" => values.contains(&class),
                "NotIn" => !values.contains(&class),
                _ => false,
            }
        }
        "CrossNamespacePodAffinity" => has_cross_namespace_affinity(pod),
        _ => false,
    }
}

fn has_cross_namespace_affinity(pod: &Value) -> bool {
    ["podAffinity", "podAntiAffinity"].iter().any(|kind| {
        let Some(a) = pod.pointer(&format!("/spec/affinity/{kind}")) else {
            return false;
        };
        let required = a
            .get("requiredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        let preferred = a
            .get("preferredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|w| w.get("podAffinityTerm"));
        required.chain(preferred).any(|t| {
            t.get("namespaceSelector").is_some_and(|s| !s.is_null())
                || t.get("namespaces")
                    .and_then(Value::as_array)
                    .is_some_and(|n| !n.is_empty())
        })
    })
}

fn containers<'v>(pod: &'v Value, field: &str) -> impl Iterator<Item = &'v Value> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Upstream's QoS rule: BestEffort when no container requests or limits cpu or memory.
fn is_best_effort(pod: &Value) -> bool {
    !containers(pod, "containers")
        .chain(containers(pod, "initContainers"))
        .any(|c| {
            ["requests", "limits"].iter().any(|kind| {
                let list = resource_list(c, kind);
                list.contains_key("cpu") || list.contains_key("memory")
            })
        })
}

fn resource_list(container: &Value, kind: &str) -> ResourceList {
    container
        .pointer(&format!("/resources/{kind}"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), Quantity::parse(v.as_str()?)?)))
        .collect()
}

fn add_into(total: &mut ResourceList, list: &ResourceList) {
    for (k, v) in list {
        let sum = match total.get(k) {
            Some(t) => t.checked_add(v).unwrap_or(*t),
            None => *v,
        };
        total.insert(k.clone(), sum);
    }
}

fn max_into(total: &mut ResourceList, list: &ResourceList) {
    for (k, v) in list {
        let bigger = total
            .get(k)
            .is_none_or(|t| v.value.cmp_value(&t.value).is_gt());
        if bigger {
            total.insert(k.clone(), *v);
        }
    }
}

/// A pod's effective requests or limits as upstream's `PodRequests`/`PodLimits`: the sum of
/// its containers and sidecars, or the largest init container (plus the sidecars started
/// before it) if larger, plus the pod overhead.
pub fn pod_resources(pod: &Value, kind: &str) -> ResourceList {
    let mut total = ResourceList::new();
    for c in containers(pod, "containers") {
        add_into(&mut total, &resource_list(c, kind));
    }
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for c in containers(pod, "initContainers") {
        let list = resource_list(c, kind);
        if str_at(c, "/restartPolicy") == "Always" {
            add_into(&mut total, &list);
            add_into(&mut sidecars, &list);
        } else {
            let mut with_sidecars = sidecars.clone();
            add_into(&mut with_sidecars, &list);
            max_into(&mut init_max, &with_sidecars);
        }
    }
    max_into(&mut total, &init_max);
    if let Some(overhead) = pod.pointer("/spec/overhead").and_then(Value::as_object) {
        let overhead: ResourceList = overhead
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), Quantity::parse(v.as_str()?)?)))
            .filter(|(k, _)| total.contains_key(k))
            .collect();
        add_into(&mut total, &overhead);
    }
    total
}

/// Upstream's `podComputeUsageHelper`: quota names of what requests and limits state.
fn compute_usage(requests: &ResourceList, limits: &ResourceList, out: &mut ResourceList) {
    out.insert("pods".into(), one());
    for r in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(r) {
            out.insert(r.into(), *q);
            out.insert(format!("requests.{r}"), *q);
        }
        if let Some(q) = limits.get(r) {
            out.insert(format!("limits.{r}"), *q);
        }
    }
    for (name, q) in requests {
        if name.starts_with("hugepages-") {
            out.insert(name.clone(), *q);
            out.insert(format!("requests.{name}"), *q);
        } else if is_extended_resource(name) {
            out.insert(format!("requests.{name}"), *q);
        }
    }
}

/// Terminal pods (and those past their deletion grace) keep only their object count.
fn pod_usage(pod: &Value, out: &mut ResourceList) {
    let phase = str_at(pod, "/status/phase");
    if phase == "Succeeded" || phase == "Failed" {
        return;
    }
    compute_usage(
        &pod_resources(pod, "requests"),
        &pod_resources(pod, "limits"),
        out,
    );
}

fn service_usage(svc: &Value, out: &mut ResourceList) {
    out.insert("services".into(), one());
    let ports: Vec<&Value> = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let (node_ports, load_balancers) = match str_at(svc, "/spec/type") {
        "NodePort" => (ports.len(), 0),
        "LoadBalancer" => {
            let allocate = svc
                .pointer("/spec/allocateLoadBalancerNodePorts")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let n = if allocate {
                ports.len()
            } else {
                ports
                    .iter()
                    .filter(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0)
                    .count()
            };
            (n, 1)
        }
        _ => (0, 0),
    };
    out.insert("services.nodeports".into(), count(node_ports));
    out.insert("services.loadbalancers".into(), count(load_balancers));
}

fn pvc_usage(pvc: &Value, out: &mut ResourceList) {
    out.insert("persistentvolumeclaims".into(), one());
    let mut class = str_at(pvc, "/spec/storageClassName");
    if class.is_empty() {
        class = str_at(
            pvc,
            "/metadata/annotations/volume.beta.kubernetes.io~1storage-class",
        );
    }
    let storage = pvc
        .pointer("/spec/resources/requests/storage")
        .and_then(Value::as_str)
        .and_then(Quantity::parse);
    if !class.is_empty() {
        out.insert(
            format!("{class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"),
            one(),
        );
    }
    if let Some(q) = storage {
        out.insert("requests.storage".into(), q);
        if !class.is_empty() {
            out.insert(format!("{class}{STORAGE_CLASS_SUFFIX}requests.storage"), q);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(list: &ResourceList) -> BTreeMap<String, String> {
        list.iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect()
    }

    fn pod(containers: Value) -> Value {
        json!({"spec": {"containers": containers}})
    }

    #[test]
    fn pod_usage_sums_containers_and_takes_the_larger_init() {
        let p = json!({"spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}, "limits": {"cpu": "200m"}}},
                {"name": "b", "resources": {"requests": {"cpu": "200m", "memory": "512Mi", "example.com/gpu": "1"}}}
            ],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1"}}}]
        }});
        let usage = text(&Evaluator::Pod.usage(&p));
        assert_eq!(usage["pods"], "1");
        assert_eq!(usage["count/pods"], "1");
        assert_eq!(usage["requests.cpu"], "1");
        assert_eq!(usage["cpu"], "1");
        assert_eq!(usage["requests.memory"], "1536Mi");
        assert_eq!(usage["limits.cpu"], "200m");
        assert_eq!(usage["requests.example.com/gpu"], "1");
        assert!(!usage.contains_key("limits.memory"));
    }

    #[test]
    fn terminal_pods_count_only_as_objects() {
        let mut p = pod(json!([{"name": "a", "resources": {"requests": {"cpu": "1"}}}]));
        p["status"] = json!({"phase": "Succeeded"});
        assert_eq!(
            Evaluator::Pod.usage(&p).keys().collect::<Vec<_>>(),
            vec!["count/pods"]
        );
    }

    #[test]
    fn scopes_follow_upstream() {
        let best_effort = pod(json!([{"name": "a"}]));
        let mut burstable = pod(json!([{"name": "a", "resources": {"requests": {"cpu": "1"}}}]));
        burstable["spec"]["activeDeadlineSeconds"] = json!(30);
        burstable["spec"]["priorityClassName"] = json!("high");
        let quota = |scopes: Value| json!({"spec": {"scopes": scopes}});
        let e = Evaluator::Pod;
        assert!(e.matches_scopes(&quota(json!(["BestEffort"])), &best_effort));
        assert!(!e.matches_scopes(&quota(json!(["BestEffort"])), &burstable));
        assert!(e.matches_scopes(&quota(json!(["NotBestEffort", "Terminating"])), &burstable));
        assert!(e.matches_scopes(&quota(json!(["NotTerminating"])), &best_effort));
        let selector = |op: &str, values: Value| {
            json!({"spec": {"scopeSelector": {"matchExpressions": [
                {"scopeName": "PriorityClass", "operator": op, "values": values}]}}})
        };
        assert!(e.matches_scopes(&selector("In", json!(["high"])), &burstable));
        assert!(!e.matches_scopes(&selector("In", json!(["high"])), &best_effort));
        assert!(e.matches_scopes(&selector("NotIn", json!(["high"])), &best_effort));
        assert!(e.matches_scopes(&selector("Exists", json!(null)), &burstable));
        let svc = Evaluator::of("", "services");
        assert!(!svc.matches_scopes(&quota(json!(["BestEffort"])), &json!({})));
        assert!(svc.matches_scopes(&json!({"spec": {}}), &json!({})));
    }

    #[test]
    fn pods_must_state_quota_constrained_resources() {
        let p = pod(json!([
            {"name": "app", "resources": {"requests": {"cpu": "1"}}},
            {"name": "side"}
        ]));
        let restricted: BTreeSet<String> = ["requests.cpu", "limits.memory", "pods"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            Evaluator::Pod.constraints(&restricted, &p),
            Err("must specify limits.memory for: app,side; requests.cpu for: side".into())
        );
        let only_pods: BTreeSet<String> = ["pods".to_string()].into();
        assert_eq!(Evaluator::Pod.constraints(&only_pods, &p), Ok(()));
    }

    #[test]
    fn services_count_node_ports_and_load_balancers() {
        let svc = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}});
        let usage = text(&Evaluator::of("", "services").usage(&svc));
        assert_eq!(usage["services"], "1");
        assert_eq!(usage["services.nodeports"], "2");
        assert_eq!(usage["services.loadbalancers"], "1");
        let cluster_ip = json!({"spec": {"ports": [{"port": 80}]}});
        let usage = text(&Evaluator::of("", "services").usage(&cluster_ip));
        assert_eq!(usage["services.nodeports"], "0");
    }

    #[test]
    fn claims_and_counts() {
        let pvc = json!({"spec": {"storageClassName": "fast", "resources": {"requests": {"storage": "5Gi"}}}});
        let e = Evaluator::of("", "persistentvolumeclaims");
        let usage = text(&e.usage(&pvc));
        assert_eq!(usage["requests.storage"], "5Gi");
        assert_eq!(
            usage["fast.storageclass.storage.k8s.io/requests.storage"],
            "5Gi"
        );
        assert!(e.handles_resource("fast.storageclass.storage.k8s.io/persistentvolumeclaims"));
        let cm = Evaluator::of("", "configmaps");
        assert!(cm.handles_resource("configmaps"));
        assert!(cm.handles_resource("count/configmaps"));
        let deploy = Evaluator::of("apps", "deployments");
        assert!(deploy.handles_resource("count/deployments.apps"));
        assert!(!deploy.handles_resource("deployments"));
        assert_eq!(
            text(&deploy.usage(&json!({}))),
            BTreeMap::from([("count/deployments.apps".to_string(), "1".to_string())])
        );
    }
}
