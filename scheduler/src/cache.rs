//! The scheduler cache: every node with the pods bound to it plus the pods this scheduler has
//! assumed onto it but whose binding it has not yet seen, so that the next pod is scheduled
//! against the usage the in-flight bindings will produce.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use k8s_openapi::api::core::v1::Node;

use crate::{
    framework::{
        types::{CountedSelectors, NamespaceLabels, PodSelector, MAX_COUNTED_SELECTORS},
        ClusterEvent, NodeInfo, PodInfo, Snapshot,
    },
    workloads::SharedWorkloads,
};

struct PodState {
    node: Arc<str>,
    /// Placed by this scheduler; the informer has not yet shown it bound.
    assumed: bool,
}

/// Whether a node update changes anything a plugin reads.
fn relevant_change(old: &Node, new: &Node) -> bool {
    let (os, ns) = (old.status.as_ref(), new.status.as_ref());
    old.metadata.labels != new.metadata.labels
        || old.spec != new.spec
        || os.map(|s| &s.allocatable) != ns.map(|s| &s.allocatable)
        || os.map(|s| &s.images) != ns.map(|s| &s.images)
        || os.map(|s| &s.conditions).map(|c| {
            c.as_ref()
                .map(|c| c.iter().map(|c| (&c.type_, &c.status)).collect::<Vec<_>>())
        }) != ns.map(|s| &s.conditions).map(|c| {
            c.as_ref()
                .map(|c| c.iter().map(|c| (&c.type_, &c.status)).collect::<Vec<_>>())
        })
}

#[derive(Default)]
pub struct Cache {
    nodes: BTreeMap<Arc<str>, Arc<NodeInfo>>,
    pods: HashMap<String, PodState>,
    image_nodes: Arc<HashMap<String, usize>>,
    images_dirty: bool,
    /// The selectors every node counts, and those plugins asked for since the last snapshot.
    counted: CountedSelectors,
    wanted: Arc<Mutex<Vec<PodSelector>>>,
    namespace_labels: Arc<NamespaceLabels>,
    workloads: SharedWorkloads,
}

impl Cache {
    /// The workload selectors, filled by their informers outside the cache lock.
    pub fn workloads(&self) -> SharedWorkloads {
        self.workloads.clone()
    }

    /// Records a namespace's labels.
    pub fn set_namespace(&mut self, name: &str, labels: crate::selectors::Labels) {
        if self.namespace_labels.get(name) != Some(&labels) {
            Arc::make_mut(&mut self.namespace_labels).insert(name.to_string(), labels);
        }
    }

    pub fn remove_namespace(&mut self, name: &str) {
        if self.namespace_labels.contains_key(name) {
            Arc::make_mut(&mut self.namespace_labels).remove(name);
        }
    }

    /// Drops the namespaces a relist no longer shows.
    pub fn retain_namespaces(&mut self, keep: impl Fn(&str) -> bool) {
        if self.namespace_labels.keys().any(|n| !keep(n)) {
            Arc::make_mut(&mut self.namespace_labels).retain(|n, _| keep(n));
        }
    }

    fn node_mut(&mut self, name: &Arc<str>) -> &mut NodeInfo {
        let counted = &self.counted;
        let entry = self.nodes.entry(name.clone()).or_insert_with(|| {
            let mut node = NodeInfo::new(name);
            node.set_counted(counted.clone());
            Arc::new(node)
        });
        Arc::make_mut(entry)
    }

    /// Starts counting the selectors plugins asked for.
    fn add_wanted_selectors(&mut self) {
        let wanted = match self.wanted.lock() {
            Ok(mut w) if !w.is_empty() => std::mem::take(&mut *w),
            _ => return,
        };
        let mut list = (*self.counted).clone();
        for s in wanted {
            if list.len() < MAX_COUNTED_SELECTORS && !list.contains(&s) {
                list.push(s);
            }
        }
        if list.len() == self.counted.len() {
            return;
        }
        self.counted = Arc::new(list);
        for node in self.nodes.values_mut() {
            Arc::make_mut(node).set_counted(self.counted.clone());
        }
    }

    /// Adds or updates a node; the event, unless nothing the scheduler looks at changed
    /// (heartbeats and other status churn).
    pub fn upsert_node(&mut self, node: Arc<Node>) -> Option<ClusterEvent> {
        let name: Arc<str> = Arc::from(node.metadata.name.as_deref().unwrap_or(""));
        let old = self.nodes.get(&name).and_then(|n| n.node.clone());
        let event = match &old {
            None => Some(ClusterEvent::NodeAdd),
            Some(old) if relevant_change(old, &node) => Some(ClusterEvent::NodeUpdate),
            Some(_) => None,
        };
        self.node_mut(&name).set_node(node);
        self.images_dirty = true;
        event
    }

    pub fn node_names(&self) -> Vec<String> {
        self.nodes
            .values()
            .filter(|n| n.node.is_some())
            .map(|n| n.name.to_string())
            .collect()
    }

    /// Removes a node; its pods stay accounted until their deletions arrive.
    pub fn remove_node(&mut self, name: &str) {
        let Some(info) = self.nodes.get_mut(name) else {
            return;
        };
        if info.pods.is_empty() {
            self.nodes.remove(name);
        } else {
            Arc::make_mut(info).node = None;
        }
        self.images_dirty = true;
    }

    /// Places `pod` on `node` before the binding is confirmed.
    pub fn assume(&mut self, pod: Arc<PodInfo>, node: &Arc<str>) {
        self.remove_pod(&pod.key);
        self.node_mut(node).add_pod(pod.clone());
        self.pods.insert(
            pod.key.clone(),
            PodState {
                node: node.clone(),
                assumed: true,
            },
        );
    }

    /// Undoes an assumption whose binding failed.
    pub fn forget(&mut self, key: &str) {
        if self.pods.get(key).is_some_and(|s| s.assumed) {
            self.remove_pod(key);
        }
    }

    /// Whether the pod is assumed or bound here (so the queue should not take it again).
    pub fn is_placed(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    /// Records a pod the informer shows bound to a node (confirming an assumption).
    pub fn upsert_bound_pod(&mut self, pod: Arc<PodInfo>, node: &str) {
        let node: Arc<str> = Arc::from(node);
        self.remove_pod(&pod.key);
        self.node_mut(&node).add_pod(pod.clone());
        self.pods.insert(
            pod.key.clone(),
            PodState {
                node,
                assumed: false,
            },
        );
    }

    /// Removes a pod wherever it is; true when it was in the cache.
    pub fn remove_pod(&mut self, key: &str) -> bool {
        let Some(state) = self.pods.remove(key) else {
            return false;
        };
        let mut drop_node = false;
        if let Some(info) = self.nodes.get_mut(&state.node) {
            let info = Arc::make_mut(info);
            info.remove_pod(key);
            drop_node = info.node.is_none() && info.pods.is_empty();
        }
        if drop_node {
            self.nodes.remove(&state.node);
        }
        true
    }

    /// Keys of every pod the cache holds, for reconciling after a relist.
    pub fn pod_keys(&self) -> Vec<String> {
        self.pods.keys().cloned().collect()
    }

    /// The nodes as this cycle sees them.
    pub fn snapshot(&mut self) -> Snapshot {
        self.add_wanted_selectors();
        if self.images_dirty {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for n in self.nodes.values().filter(|n| n.node.is_some()) {
                for image in n.images.keys() {
                    *counts.entry(image.clone()).or_insert(0) += 1;
                }
            }
            self.image_nodes = Arc::new(counts);
            self.images_dirty = false;
        }
        let nodes: Vec<Arc<NodeInfo>> = self
            .nodes
            .values()
            .filter(|n| n.node.is_some())
            .cloned()
            .collect();
        let with_affinity = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.pods.iter().any(|p| p.has_affinity()))
            .map(|(i, _)| i)
            .collect();
        Snapshot {
            nodes,
            image_nodes: self.image_nodes.clone(),
            nodes_with_affinity_pods: Arc::new(with_affinity),
            counted: self.counted.clone(),
            wanted: self.wanted.clone(),
            namespace_labels: self.namespace_labels.clone(),
            workloads: self.workloads.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn pod(name: &str, cpu: &str) -> Arc<PodInfo> {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "d"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
        }))
        .unwrap();
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    #[test]
    fn nodes_count_wanted_selectors_as_pods_come_and_go() {
        let mut c = Cache::default();
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap();
        c.upsert_node(Arc::new(node));
        let n1: Arc<str> = Arc::from("n1");
        let labelled = |name: &str, app: &str| {
            let p: Pod = serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "d", "labels": {"app": app}},
                "spec": {"containers": [{"name": "c"}]}
            }))
            .unwrap();
            Arc::new(PodInfo::new(Arc::new(p)))
        };
        c.assume(labelled("a", "web"), &n1);
        let web = PodSelector {
            namespaces: ["d".to_string()].into(),
            all_namespaces: false,
            selector: serde_json::from_value(json!({"matchLabels": {"app": "web"}})).unwrap(),
            skip_terminating: true,
        };
        // Not counted yet: matched pod by pod, and asked for.
        let snap = c.snapshot();
        assert_eq!(snap.counted_id(&web), None);
        assert_eq!(snap.count(&snap.nodes[0], &web, None), 1);
        drop(snap);
        let snap = c.snapshot();
        let id = snap.counted_id(&web);
        assert_eq!(id, Some(0));
        assert_eq!(snap.count(&snap.nodes[0], &web, id), 1);
        c.assume(labelled("b", "web"), &n1);
        c.assume(labelled("x", "db"), &n1);
        let snap = c.snapshot();
        assert_eq!(snap.count(&snap.nodes[0], &web, id), 2);
        // A copy with a pod removed (as preemption simulates) counts without it.
        let mut without = (*snap.nodes[0]).clone();
        without.remove_pod("d/a");
        assert_eq!(snap.count(&without, &web, id), 1);
        c.forget("d/b");
        let snap = c.snapshot();
        assert_eq!(snap.count(&snap.nodes[0], &web, id), 1);
    }

    #[test]
    fn nodes_keep_distinct_anti_affinity_terms_with_pod_counts() {
        let anti = |name: &str, group: &str| {
            let p: Pod = serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "d"},
                "spec": {"containers": [{"name": "c"}], "affinity": {"podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [{
                        "labelSelector": {"matchLabels": {"group": group}},
                        "topologyKey": "kubernetes.io/hostname"}]}}}
            }))
            .unwrap();
            Arc::new(PodInfo::new(Arc::new(p)))
        };
        let mut node = NodeInfo::new("n1");
        node.add_pod(anti("a", "g1"));
        node.add_pod(anti("b", "g1"));
        node.add_pod(anti("c", "g2"));
        let counts: Vec<i64> = node.anti_affinity_terms().iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, [2, 1]);
        node.remove_pod("d/a");
        node.remove_pod("d/c");
        let terms = node.anti_affinity_terms();
        assert_eq!(terms.len(), 1);
        assert_eq!(terms[0].1, 1);
        node.remove_pod("d/b");
        assert!(node.anti_affinity_terms().is_empty());
    }

    #[test]
    fn assume_confirm_forget() {
        let mut c = Cache::default();
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n1"},
            "status": {"allocatable": {"cpu": "4", "memory": "1Gi", "pods": "10"}}
        }))
        .unwrap();
        assert_eq!(
            c.upsert_node(Arc::new(node.clone())),
            Some(ClusterEvent::NodeAdd)
        );
        assert_eq!(c.upsert_node(Arc::new(node.clone())), None);
        let mut cordoned = node;
        cordoned.spec = Some(k8s_openapi::api::core::v1::NodeSpec {
            unschedulable: Some(true),
            ..Default::default()
        });
        assert_eq!(
            c.upsert_node(Arc::new(cordoned)),
            Some(ClusterEvent::NodeUpdate)
        );
        let n1: Arc<str> = Arc::from("n1");
        c.assume(pod("a", "1"), &n1);
        c.assume(pod("b", "2"), &n1);
        let snap = c.snapshot();
        assert_eq!(snap.nodes[0].requested.milli_cpu, 3000);
        c.upsert_bound_pod(pod("a", "1"), "n1");
        c.forget("d/a");
        c.forget("d/b");
        let snap = c.snapshot();
        assert_eq!(snap.nodes[0].requested.milli_cpu, 1000);
        assert_eq!(snap.nodes[0].pods.len(), 1);
        assert!(c.remove_pod("d/a"));
        assert_eq!(c.snapshot().nodes[0].requested.milli_cpu, 0);
    }
}
