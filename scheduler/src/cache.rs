//! The scheduler cache: every node with the pods bound to it plus the pods this scheduler has
//! assumed onto it but whose binding it has not yet seen, so that the next pod is scheduled
//! against the usage the in-flight bindings will produce.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use k8s_openapi::api::core::v1::Node;

use crate::framework::{ClusterEvent, NodeInfo, PodInfo, Snapshot};

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
}

impl Cache {
    fn node_mut(&mut self, name: &Arc<str>) -> &mut NodeInfo {
        let entry = self
            .nodes
            .entry(name.clone())
            .or_insert_with(|| Arc::new(NodeInfo::new(name)));
        Arc::make_mut(entry)
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
