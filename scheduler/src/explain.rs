//! Explanations of scheduling decisions, beyond upstream: for the last attempt of each pod, which
//! filter rejected each node and why, and the per-plugin scores of the nodes that passed. Served
//! as JSON at `/debug/explain/<namespace>/<pod>`.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use serde::Serialize;

use crate::framework::Code;

/// How many pods' explanations are kept; the oldest are dropped first.
pub const CAPACITY: usize = 2_000;

/// Scored nodes kept per attempt (best first); the rest are only counted, to bound memory.
pub const SCORED_NODES_KEPT: usize = 10;

/// Nodes named per rejection reason; the rest are only counted, to bound memory in large
/// clusters (every node is named up to this size).
pub const REJECTED_NODES_KEPT: usize = 100;

/// Why one plugin rejected one node.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    pub plugin: &'static str,
    pub code: Code,
    pub reasons: Vec<String>,
}

/// One plugin's score of one node. Kept small (the store holds thousands); the weighted score
/// is derived when served.
#[derive(Debug, Clone)]
pub struct PluginScore {
    pub plugin: &'static str,
    pub raw: i64,
    pub normalized: i32,
    pub weight: i32,
}

impl Serialize for PluginScore {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("PluginScore", 5)?;
        s.serialize_field("plugin", self.plugin)?;
        s.serialize_field("raw", &self.raw)?;
        s.serialize_field("normalized", &self.normalized)?;
        s.serialize_field("weight", &self.weight)?;
        s.serialize_field(
            "weighted",
            &(i64::from(self.normalized) * i64::from(self.weight)),
        )?;
        s.end()
    }
}

/// Nodes rejected for the same reason, stored once.
#[derive(Debug, Clone)]
struct RejectionGroup {
    rejection: Rejection,
    nodes: Vec<Arc<str>>,
    omitted: usize,
}

/// A node that passed every filter, with its scores when it was scored.
#[derive(Debug, Clone)]
struct Feasible {
    node: Arc<str>,
    scores: Box<[PluginScore]>,
    total: Option<i64>,
}

/// What happened to one node, as served.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeVerdict<'a> {
    node: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejected: Option<&'a Rejection>,
    #[serde(skip_serializing_if = "<[PluginScore]>::is_empty")]
    scores: &'a [PluginScore],
    #[serde(skip_serializing_if = "Option::is_none")]
    total_score: Option<i64>,
}

/// The outcome of one scheduling attempt.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub pod: String,
    pub uid: String,
    pub profile: String,
    pub attempt: u32,
    pub time: String,
    /// `Scheduled`, `Unschedulable` or `Error`.
    pub result: &'static str,
    pub selected_node: Option<String>,
    pub message: String,
    pub total_nodes: usize,
    pub evaluated_nodes: usize,
    pub feasible_nodes: usize,
    pub preemption: Option<String>,
    rejected: Vec<RejectionGroup>,
    feasible: Vec<Feasible>,
    feasible_omitted: usize,
}

impl Serialize for Explanation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut nodes: Vec<NodeVerdict<'_>> = Vec::new();
        for f in &self.feasible {
            nodes.push(NodeVerdict {
                node: &f.node,
                rejected: None,
                scores: &f.scores,
                total_score: f.total,
            });
        }
        for g in &self.rejected {
            for n in &g.nodes {
                nodes.push(NodeVerdict {
                    node: n,
                    rejected: Some(&g.rejection),
                    scores: &[],
                    total_score: None,
                });
            }
        }
        let rejected_omitted: usize = self.rejected.iter().map(|g| g.omitted).sum();
        let mut s = serializer.serialize_struct("Explanation", 15)?;
        s.serialize_field("pod", &self.pod)?;
        s.serialize_field("uid", &self.uid)?;
        s.serialize_field("profile", &self.profile)?;
        s.serialize_field("attempt", &self.attempt)?;
        s.serialize_field("time", &self.time)?;
        s.serialize_field("result", &self.result)?;
        s.serialize_field("selectedNode", &self.selected_node)?;
        s.serialize_field("message", &self.message)?;
        s.serialize_field("totalNodes", &self.total_nodes)?;
        s.serialize_field("evaluatedNodes", &self.evaluated_nodes)?;
        s.serialize_field("feasibleNodes", &self.feasible_nodes)?;
        s.serialize_field("scoredNodesOmitted", &self.feasible_omitted)?;
        s.serialize_field("rejectedNodesOmitted", &rejected_omitted)?;
        s.serialize_field("preemption", &self.preemption)?;
        s.serialize_field("nodes", &nodes)?;
        s.end()
    }
}

impl Explanation {
    pub fn new(pod: &str, uid: &str, profile: &str, attempt: u32) -> Explanation {
        Explanation {
            pod: pod.to_string(),
            uid: uid.to_string(),
            profile: profile.to_string(),
            attempt,
            time: jiff::Timestamp::now().to_string(),
            result: "Error",
            selected_node: None,
            message: String::new(),
            total_nodes: 0,
            evaluated_nodes: 0,
            feasible_nodes: 0,
            preemption: None,
            rejected: Vec::new(),
            feasible: Vec::new(),
            feasible_omitted: 0,
        }
    }

    /// Records that `rejection` rejected `node`.
    pub fn reject(&mut self, node: &Arc<str>, rejection: &Rejection) {
        let group = self.rejected.iter_mut().find(|g| {
            g.rejection.plugin == rejection.plugin && g.rejection.reasons == rejection.reasons
        });
        match group {
            Some(g) if g.nodes.len() >= REJECTED_NODES_KEPT => g.omitted += 1,
            Some(g) => g.nodes.push(node.clone()),
            None => self.rejected.push(RejectionGroup {
                rejection: rejection.clone(),
                nodes: vec![node.clone()],
                omitted: 0,
            }),
        }
    }

    /// Records a node that passed every filter, with its scores if it was scored.
    pub fn feasible(&mut self, node: &Arc<str>, scores: Vec<PluginScore>, total: Option<i64>) {
        self.feasible.push(Feasible {
            node: node.clone(),
            scores: scores.into_boxed_slice(),
            total,
        });
    }

    /// Keeps the best-scored nodes (and the selected one) and counts the rest.
    pub fn finish(&mut self, selected: Option<&str>) {
        self.selected_node = selected.map(str::to_string);
        self.feasible.sort_by_key(|f| std::cmp::Reverse(f.total));
        if self.feasible.len() > SCORED_NODES_KEPT {
            let chosen = self
                .feasible
                .iter()
                .position(|f| Some(&*f.node) == selected);
            if let Some(i) = chosen.filter(|i| *i >= SCORED_NODES_KEPT) {
                self.feasible.swap(i, SCORED_NODES_KEPT - 1);
            }
            self.feasible_omitted = self.feasible.len() - SCORED_NODES_KEPT;
            self.feasible.truncate(SCORED_NODES_KEPT);
        }
        // Stored for thousands of pods: give back what the cycle over-allocated.
        self.feasible.shrink_to_fit();
        self.rejected.shrink_to_fit();
        for g in &mut self.rejected {
            g.nodes.shrink_to_fit();
        }
    }

    /// A one-line, per-node summary for events: `node: Plugin (reason)`, at most `limit` nodes.
    pub fn summary(&self, limit: usize) -> String {
        let total: usize = self
            .rejected
            .iter()
            .map(|g| g.nodes.len() + g.omitted)
            .sum();
        let mut parts = Vec::new();
        for g in &self.rejected {
            for n in &g.nodes {
                if parts.len() == limit {
                    break;
                }
                parts.push(format!(
                    "{n}: {} ({})",
                    g.rejection.plugin,
                    g.rejection.reasons.join(", ")
                ));
            }
        }
        let mut text = parts.join("; ");
        if total > parts.len() {
            text.push_str(&format!("; and {} more", total - parts.len()));
        }
        text
    }
}

/// The latest explanation per pod key, bounded by `CAPACITY`.
#[derive(Default)]
pub struct Store {
    inner: Mutex<StoreInner>,
}

#[derive(Default)]
struct StoreInner {
    by_pod: HashMap<String, Arc<Explanation>>,
    order: VecDeque<String>,
}

impl Store {
    pub fn record(&self, e: Explanation) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let key = e.pod.clone();
        if inner.by_pod.insert(key.clone(), Arc::new(e)).is_none() {
            inner.order.push_back(key);
        }
        while inner.order.len() > CAPACITY {
            if let Some(old) = inner.order.pop_front() {
                inner.by_pod.remove(&old);
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<Arc<Explanation>> {
        self.inner.lock().ok()?.by_pod.get(key).cloned()
    }

    /// Forgets a deleted pod.
    pub fn remove(&self, key: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            if inner.by_pod.remove(key).is_some() {
                inner.order.retain(|k| k != key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_plugin_and_reason_and_store_is_bounded() {
        let mut e = Explanation::new("ns/p", "u", "default-scheduler", 1);
        let r = Rejection {
            plugin: "NodeResourcesFit",
            code: Code::Unschedulable,
            reasons: vec!["Insufficient cpu".into()],
        };
        for i in 0..3 {
            e.reject(&Arc::from(format!("n{i}").as_str()), &r);
        }
        for i in 0..20 {
            e.feasible(&Arc::from(format!("f{i}").as_str()), vec![], Some(i));
        }
        e.finish(Some("f0"));
        let json = serde_json::to_value(&e).unwrap();
        let nodes = json["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), SCORED_NODES_KEPT + 3);
        assert_eq!(nodes[0]["node"], "f19");
        assert!(nodes.iter().any(|n| n["node"] == "f0"));
        assert_eq!(json["scoredNodesOmitted"], 10);
        assert_eq!(
            nodes[SCORED_NODES_KEPT]["rejected"]["plugin"],
            "NodeResourcesFit"
        );
        assert_eq!(
            e.summary(2),
            "n0: NodeResourcesFit (Insufficient cpu); n1: NodeResourcesFit (Insufficient cpu); and 1 more"
        );
        let mut big = Explanation::new("ns/big", "u", "d", 1);
        for i in 0..REJECTED_NODES_KEPT + 7 {
            big.reject(&Arc::from(format!("n{i}").as_str()), &r);
        }
        big.finish(None);
        let json = serde_json::to_value(&big).unwrap();
        assert_eq!(json["nodes"].as_array().unwrap().len(), REJECTED_NODES_KEPT);
        assert_eq!(json["rejectedNodesOmitted"], 7);
        assert!(big
            .summary(1)
            .ends_with(&format!("and {} more", REJECTED_NODES_KEPT + 6)));
        let store = Store::default();
        for i in 0..CAPACITY + 5 {
            store.record(Explanation::new(&format!("ns/p{i}"), "u", "d", 1));
        }
        assert!(store.get("ns/p0").is_none());
        assert!(store.get(&format!("ns/p{}", CAPACITY + 4)).is_some());
        store.remove(&format!("ns/p{}", CAPACITY + 4));
        assert!(store.get(&format!("ns/p{}", CAPACITY + 4)).is_none());
    }
}
