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
pub const CAPACITY: usize = 10_000;

/// Why one plugin rejected one node.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    pub plugin: &'static str,
    pub code: Code,
    pub reasons: Vec<String>,
}

/// One plugin's score of one node.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginScore {
    pub plugin: &'static str,
    pub raw: i64,
    pub normalized: i64,
    pub weight: i64,
    pub weighted: i64,
}

fn as_str<S: serde::Serializer>(s: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(s)
}

/// What happened to one node in the attempt.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeVerdict {
    #[serde(serialize_with = "as_str")]
    pub node: Arc<str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Rejection>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<PluginScore>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_score: Option<i64>,
}

/// The outcome of one scheduling attempt.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub pod: String,
    pub uid: String,
    pub profile: String,
    pub attempt: u32,
    pub time: String,
    /// `Scheduled`, `Unschedulable` or `Error`.
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected_node: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub total_nodes: usize,
    pub evaluated_nodes: usize,
    pub feasible_nodes: usize,
    pub nodes: Vec<NodeVerdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preemption: Option<String>,
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
            nodes: Vec::new(),
            preemption: None,
        }
    }

    /// A one-line, per-node summary for events: `node: Plugin (reason)`, at most `limit` nodes.
    pub fn summary(&self, limit: usize) -> String {
        let rejected: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|n| {
                n.rejected
                    .as_ref()
                    .map(|r| format!("{}: {} ({})", n.node, r.plugin, r.reasons.join(", ")))
            })
            .collect();
        let mut text = rejected.iter().take(limit).cloned().collect::<Vec<_>>().join("; ");
        if rejected.len() > limit {
            text.push_str(&format!("; and {} more", rejected.len() - limit));
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
        let Ok(mut inner) = self.inner.lock() else { return };
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
        for i in 0..3 {
            e.nodes.push(NodeVerdict {
                node: Arc::from(format!("n{i}").as_str()),
                rejected: Some(Rejection {
                    plugin: "NodeResourcesFit",
                    code: Code::Unschedulable,
                    reasons: vec!["Insufficient cpu".into()],
                }),
                scores: vec![],
                total_score: None,
            });
        }
        assert_eq!(
            e.summary(2),
            "n0: NodeResourcesFit (Insufficient cpu); n1: NodeResourcesFit (Insufficient cpu); and 1 more"
        );
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
