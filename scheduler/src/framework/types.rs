//! What plugins see: pods with their scheduling-relevant facts computed once (`PodInfo`), nodes
//! with the aggregate of the pods on them (`NodeInfo`), and the per-cycle `Snapshot`.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use k8s_openapi::{
    api::core::v1::{
        Node, ObjectReference, Pod, PodAffinityTerm, PodSpec, PodStatus, Taint, Toleration, Volume,
    },
    apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta},
};

use crate::{
    resources::{pod_requests, Resources},
    selectors::{label_selector_matches, Labels},
};

/// A `hostPort` a container asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    /// Upstream treats `0.0.0.0` as conflicting with every address of the same port/protocol.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// The pods a label selector picks within some namespaces: what PodTopologySpread and
/// InterPodAffinity count per node.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSelector {
    pub namespaces: HashSet<String>,
    pub all_namespaces: bool,
    pub selector: LabelSelector,
    /// PodTopologySpread leaves terminating pods out of its counts.
    pub skip_terminating: bool,
}

impl PodSelector {
    pub fn matches(&self, pod: &PodInfo) -> bool {
        (self.all_namespaces || self.namespaces.contains(&pod.namespace))
            && !(self.skip_terminating && pod.is_terminating())
            && label_selector_matches(&self.selector, &pod.labels)
    }
}

/// How many selectors the nodes count incrementally; others are matched pod by pod.
pub const MAX_COUNTED_SELECTORS: usize = 64;

/// The selectors every node keeps counts for, so that a PreFilter reads one number per node
/// instead of matching every pod in the cluster every cycle (upstream precomputes the same
/// per-domain counts in PreFilter). Append-only; the cache adds the selectors plugins ask for.
pub type CountedSelectors = Arc<Vec<PodSelector>>;

/// Namespace name -> its labels, for `namespaceSelector`s (the only part of a Namespace the
/// scheduler keeps).
pub type NamespaceLabels = HashMap<String, Labels>;

static NO_LABELS: Labels = Labels::new();

/// A pod (anti-)affinity term: the namespaces it lists (or its pod's own) and its
/// `namespaceSelector`, matched against namespace labels as upstream's `AffinityTerm.Matches`.
#[derive(Debug, Clone, PartialEq)]
pub struct AffinityTerm {
    pub namespaces: HashSet<String>,
    /// An empty `namespaceSelector` selects every namespace.
    pub all_namespaces: bool,
    /// A non-empty `namespaceSelector`.
    pub namespace_selector: Option<LabelSelector>,
    pub selector: Option<LabelSelector>,
    pub topology_key: String,
    pub weight: i64,
}

impl AffinityTerm {
    fn new(owner_ns: &str, term: &PodAffinityTerm, weight: i64) -> AffinityTerm {
        let mut namespaces: HashSet<String> = term.namespaces.iter().flatten().cloned().collect();
        let all_namespaces = term.namespace_selector.as_ref().is_some_and(|s| {
            s.match_labels.as_ref().is_none_or(|m| m.is_empty())
                && s.match_expressions.as_ref().is_none_or(|e| e.is_empty())
        });
        if namespaces.is_empty() && term.namespace_selector.is_none() {
            namespaces.insert(owner_ns.to_string());
        }
        AffinityTerm {
            namespaces,
            all_namespaces,
            namespace_selector: term.namespace_selector.clone().filter(|_| !all_namespaces),
            selector: term.label_selector.clone(),
            topology_key: term.topology_key.clone(),
            weight,
        }
    }

    /// The pods this term selects, for counting, with the namespaces its `namespaceSelector`
    /// picks today merged in (as upstream's PreFilter does); `None` when it selects none.
    pub fn pod_selector(&self, namespace_labels: &NamespaceLabels) -> Option<PodSelector> {
        let mut namespaces = self.namespaces.clone();
        if let Some(sel) = &self.namespace_selector {
            namespaces.extend(
                namespace_labels
                    .iter()
                    .filter(|(_, labels)| label_selector_matches(sel, labels))
                    .map(|(name, _)| name.clone()),
            );
        }
        Some(PodSelector {
            namespaces,
            all_namespaces: self.all_namespaces,
            selector: self.selector.clone()?,
            skip_terminating: false,
        })
    }

    /// Whether the term covers the namespace `ns`.
    fn covers(&self, ns: &str, namespace_labels: &NamespaceLabels) -> bool {
        self.all_namespaces
            || self.namespaces.contains(ns)
            || self.namespace_selector.as_ref().is_some_and(|sel| {
                label_selector_matches(sel, namespace_labels.get(ns).unwrap_or(&NO_LABELS))
            })
    }

    /// Whether `pod` is one of the pods this term selects.
    pub fn matches(&self, pod: &PodInfo, namespace_labels: &NamespaceLabels) -> bool {
        self.covers(&pod.namespace, namespace_labels)
            && self
                .selector
                .as_ref()
                .is_some_and(|s| label_selector_matches(s, &pod.labels))
    }
}

/// A pod with everything the plugins need computed once.
#[derive(Debug)]
pub struct PodInfo {
    /// The whole object while the pod waits to be scheduled. Bound pods drop it: the cache
    /// keeps thousands of them and reads only the facts below (a `Pod` alone is over 2 KiB).
    pub object: Option<Arc<Pod>>,
    pub key: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: Labels,
    pub priority: i32,
    pub requests: Resources,
    pub non_zero_requests: Resources,
    pub host_ports: Vec<HostPort>,
    pub tolerations: Vec<Toleration>,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<AffinityTerm>,
    pub preferred_anti_affinity: Vec<AffinityTerm>,
    pub images: Vec<String>,
    pub resource_version: Option<String>,
    node_name: Option<String>,
    scheduler_name: Option<String>,
    nominated_node: Option<String>,
    deleting: bool,
    /// The pod has succeeded or failed: it holds no resources.
    pub terminal: bool,
    /// Inline disks that cannot be attached twice (what VolumeRestrictions compares).
    pub disks: Vec<Volume>,
}

/// The parts of a pending pod that are read after its facts are derived: what the plugins,
/// events and status updates consult. Containers (their requests, ports and images are
/// derived) and the rest of the status are left out, so a queue of thousands of pods stays
/// small.
fn scheduling_view(pod: &Pod) -> Pod {
    let meta = &pod.metadata;
    Pod {
        metadata: ObjectMeta {
            name: meta.name.clone(),
            namespace: meta.namespace.clone(),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            labels: meta.labels.clone(),
            owner_references: meta.owner_references.clone(),
            deletion_timestamp: meta.deletion_timestamp.clone(),
            ..Default::default()
        },
        spec: pod.spec.as_ref().map(|s| PodSpec {
            affinity: s.affinity.clone(),
            node_name: s.node_name.clone(),
            node_selector: s.node_selector.clone(),
            preemption_policy: s.preemption_policy.clone(),
            priority: s.priority,
            scheduler_name: s.scheduler_name.clone(),
            scheduling_gates: s.scheduling_gates.clone(),
            tolerations: s.tolerations.clone(),
            topology_spread_constraints: s.topology_spread_constraints.clone(),
            ..Default::default()
        }),
        status: pod.status.as_ref().map(|s| PodStatus {
            conditions: s.conditions.as_ref().map(|c| {
                c.iter()
                    .filter(|c| c.type_ == "PodScheduled")
                    .cloned()
                    .collect()
            }),
            nominated_node_name: s.nominated_node_name.clone(),
            ..Default::default()
        }),
    }
}

/// Image names as upstream's ImageLocality normalises them: a missing tag means `latest`.
pub fn normalized_image(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let mut host_ports = Vec::new();
        for c in spec.map(|s| s.containers.as_slice()).unwrap_or(&[]) {
            for p in c.ports.iter().flatten() {
                if let Some(port) = p.host_port.filter(|p| *p > 0) {
                    host_ports.push(HostPort {
                        ip: p
                            .host_ip
                            .clone()
                            .filter(|ip| !ip.is_empty())
                            .unwrap_or_else(|| "0.0.0.0".into()),
                        protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        port,
                    });
                }
            }
        }
        let affinity = spec.and_then(|s| s.affinity.as_ref());
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let required = |terms: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            terms
                .into_iter()
                .flatten()
                .map(|t| AffinityTerm::new(&namespace, t, 1))
                .collect()
        };
        let required_affinity = required(pa.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let required_anti_affinity = required(paa.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let preferred_affinity = pa
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .into_iter()
            .flatten()
            .map(|w| AffinityTerm::new(&namespace, &w.pod_affinity_term, w.weight.into()))
            .collect();
        let preferred_anti_affinity = paa
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .into_iter()
            .flatten()
            .map(|w| AffinityTerm::new(&namespace, &w.pod_affinity_term, w.weight.into()))
            .collect();
        let mut requests = pod_requests(&pod, false);
        requests.pods = 1;
        let mut non_zero_requests = pod_requests(&pod, true);
        non_zero_requests.pods = 1;
        PodInfo {
            key: format!("{namespace}/{name}"),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            requests,
            non_zero_requests,
            host_ports,
            tolerations: spec.and_then(|s| s.tolerations.clone()).unwrap_or_default(),
            required_affinity,
            required_anti_affinity,
            preferred_affinity,
            preferred_anti_affinity,
            images: spec
                .map(|s| {
                    s.containers
                        .iter()
                        .filter_map(|c| c.image.as_deref())
                        .map(normalized_image)
                        .collect()
                })
                .unwrap_or_default(),
            namespace,
            name,
            resource_version: pod.metadata.resource_version.clone(),
            node_name: spec
                .and_then(|s| s.node_name.clone())
                .filter(|n| !n.is_empty()),
            scheduler_name: spec.and_then(|s| s.scheduler_name.clone()),
            nominated_node: pod
                .status
                .as_ref()
                .and_then(|s| s.nominated_node_name.clone())
                .filter(|n| !n.is_empty()),
            deleting: pod.metadata.deletion_timestamp.is_some(),
            terminal: matches!(
                pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded") | Some("Failed")
            ),
            disks: spec
                .and_then(|s| s.volumes.as_ref())
                .into_iter()
                .flatten()
                .filter(|v| crate::plugins::volume_restrictions::has_disk(v))
                .cloned()
                .collect(),
            object: Some(Arc::new(scheduling_view(&pod))),
        }
    }

    /// A pod bound to a node, as the cache keeps it: the derived facts without the object.
    pub fn bound(pod: Pod) -> PodInfo {
        let mut info = PodInfo::new(Arc::new(pod));
        info.object = None;
        info.tolerations = Vec::new();
        info.images = Vec::new();
        info
    }

    /// Whether a pending pod changed in a way that could change where it fits.
    pub fn changed_for_scheduling(&self, newer: &PodInfo) -> bool {
        self.spec() != newer.spec()
            || self.labels != newer.labels
            || self.requests != newer.requests
            || self.host_ports != newer.host_ports
            || self.images != newer.images
    }

    /// The pod's spec, while the object is kept (see [`PodInfo::object`]).
    pub fn spec(&self) -> Option<&PodSpec> {
        self.object.as_ref().and_then(|p| p.spec.as_ref())
    }

    /// A reference to the pod for events.
    pub fn object_ref(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some(self.namespace.clone()),
            name: Some(self.name.clone()),
            uid: Some(self.uid.clone()),
            resource_version: self.resource_version.clone(),
            ..Default::default()
        }
    }

    pub fn has_affinity(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }

    pub fn scheduler_name(&self) -> &str {
        self.scheduler_name
            .as_deref()
            .unwrap_or(crate::config::DEFAULT_SCHEDULER_NAME)
    }

    pub fn node_name(&self) -> Option<&str> {
        self.node_name.as_deref()
    }

    pub fn nominated_node(&self) -> Option<&str> {
        self.nominated_node.as_deref()
    }

    pub fn is_terminating(&self) -> bool {
        self.deleting
    }
}

/// Whether `toleration` tolerates `taint`, as upstream's `ToleratesTaint`.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// A node and the pods on it (bound or assumed), with their aggregate usage.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub node: Option<Arc<Node>>,
    pub name: Arc<str>,
    pub labels: Labels,
    pub allocatable: Resources,
    pub requested: Resources,
    pub non_zero_requested: Resources,
    pub pods: Vec<Arc<PodInfo>>,
    pub used_ports: Vec<HostPort>,
    /// Image name -> size in bytes, from `status.images`.
    pub images: HashMap<String, i64>,
    /// The selectors `counts` is kept for.
    counted: CountedSelectors,
    /// Per counted selector, how many of `pods` it matches.
    counts: Vec<i64>,
    /// The distinct required anti-affinity terms of `pods`, with how many pods carry each, so
    /// that each is matched against an incoming pod once per node rather than once per pod.
    anti_affinity: Vec<(AffinityTerm, i64)>,
}

impl NodeInfo {
    pub fn new(name: &str) -> NodeInfo {
        NodeInfo {
            name: Arc::from(name),
            ..Default::default()
        }
    }

    pub fn set_node(&mut self, node: Arc<Node>) {
        let status = node.status.as_ref();
        self.allocatable = Resources::from_list(
            status.and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref())),
        );
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        self.images.clear();
        for image in status.and_then(|s| s.images.as_ref()).into_iter().flatten() {
            for name in image.names.iter().flatten() {
                self.images
                    .insert(normalized_image(name), image.size_bytes.unwrap_or(0));
            }
        }
        self.node = Some(node);
    }

    pub fn taints(&self) -> &[Taint] {
        self.node
            .as_ref()
            .and_then(|n| n.spec.as_ref())
            .and_then(|s| s.taints.as_deref())
            .unwrap_or(&[])
    }

    /// Counts pods for `selectors` from now on.
    pub fn set_counted(&mut self, selectors: CountedSelectors) {
        self.counts = selectors
            .iter()
            .map(|s| self.pods.iter().filter(|p| s.matches(p)).count() as i64)
            .collect();
        self.counted = selectors;
    }

    /// How many pods here `selector` matches; `id` is its index in the snapshot's counted
    /// selectors, when it has one.
    pub fn count(
        &self,
        selector: &PodSelector,
        id: Option<usize>,
        counted: &CountedSelectors,
    ) -> i64 {
        match id {
            Some(i) if Arc::ptr_eq(&self.counted, counted) && i < self.counts.len() => {
                self.counts[i]
            }
            _ => self.pods.iter().filter(|p| selector.matches(p)).count() as i64,
        }
    }

    fn update_counts(&mut self, pod: &PodInfo, delta: i64) {
        for (s, c) in self.counted.iter().zip(self.counts.iter_mut()) {
            if s.matches(pod) {
                *c += delta;
            }
        }
        for term in &pod.required_anti_affinity {
            match self.anti_affinity.iter().position(|(t, _)| t == term) {
                Some(i) => {
                    self.anti_affinity[i].1 += delta;
                    if self.anti_affinity[i].1 <= 0 {
                        self.anti_affinity.swap_remove(i);
                    }
                }
                None if delta > 0 => self.anti_affinity.push((term.clone(), delta)),
                None => {}
            }
        }
    }

    /// The distinct required anti-affinity terms of the pods here, with their pod counts.
    pub fn anti_affinity_terms(&self) -> &[(AffinityTerm, i64)] {
        &self.anti_affinity
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.update_counts(&pod, 1);
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero_requests);
        self.used_ports.extend(pod.host_ports.iter().cloned());
        self.pods.push(pod);
    }

    /// Removes the pod with `key`; false when it was not here.
    pub fn remove_pod(&mut self, key: &str) -> bool {
        let Some(i) = self.pods.iter().position(|p| p.key == key) else {
            return false;
        };
        let pod = self.pods.swap_remove(i);
        self.update_counts(&pod, -1);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.sub(&pod.non_zero_requests);
        for port in &pod.host_ports {
            if let Some(j) = self.used_ports.iter().position(|p| p == port) {
                self.used_ports.swap_remove(j);
            }
        }
        true
    }
}

/// The nodes as one scheduling cycle sees them.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub nodes: Vec<Arc<NodeInfo>>,
    /// How many nodes hold each image, for ImageLocality's spread factor.
    pub image_nodes: Arc<HashMap<String, usize>>,
    /// Indices of nodes with pods that have (anti-)affinity terms.
    pub nodes_with_affinity_pods: Arc<Vec<usize>>,
    /// The selectors every node of `nodes` counts.
    pub counted: CountedSelectors,
    /// Selectors plugins asked to have counted, for the cache to add before the next cycle.
    pub wanted: Arc<Mutex<Vec<PodSelector>>>,
    /// Labels of every namespace, for `namespaceSelector`s.
    pub namespace_labels: Arc<NamespaceLabels>,
    /// Workload selectors, for default topology spread constraints.
    pub workloads: crate::workloads::SharedWorkloads,
}

impl Snapshot {
    /// The index of `selector` among the counted ones; otherwise asks for it to be counted from
    /// the next cycle on.
    pub fn counted_id(&self, selector: &PodSelector) -> Option<usize> {
        let id = self.counted.iter().position(|s| s == selector);
        if id.is_none() && self.counted.len() < MAX_COUNTED_SELECTORS {
            if let Ok(mut wanted) = self.wanted.lock() {
                if !wanted.contains(selector) {
                    wanted.push(selector.clone());
                }
            }
        }
        id
    }

    /// How many pods on `node` `selector` matches (`id` from `counted_id`).
    pub fn count(&self, node: &NodeInfo, selector: &PodSelector, id: Option<usize>) -> i64 {
        node.count(selector, id, &self.counted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, term: serde_json::Value) -> PodInfo {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": ns, "labels": {"app": "db"}},
            "spec": {"containers": [{"name": "c"}], "affinity": {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [term]}}}
        }))
        .unwrap();
        PodInfo::new(Arc::new(p))
    }

    #[test]
    fn affinity_terms_resolve_namespaces_as_upstream() {
        let labels: NamespaceLabels = [
            ("a".to_string(), Labels::from([("team".into(), "x".into())])),
            ("b".to_string(), Labels::new()),
        ]
        .into();
        let term = |extra: serde_json::Value| {
            let mut t =
                json!({"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "k"});
            for (k, v) in extra.as_object().unwrap() {
                t[k] = v.clone();
            }
            pod("b", t).required_anti_affinity[0].clone()
        };
        let in_a = pod("a", json!({"topologyKey": "k"}));
        let in_b = pod("b", json!({"topologyKey": "k"}));
        // Neither namespaces nor selector: the pod's own namespace.
        let own = term(json!({}));
        assert!(!own.matches(&in_a, &labels) && own.matches(&in_b, &labels));
        // An empty selector: every namespace.
        let all = term(json!({"namespaceSelector": {}}));
        assert!(all.matches(&in_a, &labels) && all.matches(&in_b, &labels));
        // A selector: the namespaces whose labels match, plus any listed.
        let team = term(json!({"namespaceSelector": {"matchLabels": {"team": "x"}}}));
        assert!(team.matches(&in_a, &labels) && !team.matches(&in_b, &labels));
        let sel = team.pod_selector(&labels).unwrap();
        assert_eq!(sel.namespaces, HashSet::from(["a".to_string()]));
        let both = term(json!({"namespaces": ["b"],
            "namespaceSelector": {"matchLabels": {"team": "x"}}}));
        assert!(both.matches(&in_a, &labels) && both.matches(&in_b, &labels));
    }
}
