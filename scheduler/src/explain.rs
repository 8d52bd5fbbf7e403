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

/// One score plugin of an attempt: a column of its score table.
#[derive(Debug, Clone, Copy)]
pub struct ScoreColumn {
    pub plugin: &'static str,
    pub weight: i32,
}

/// One plugin's score of one node: a cell of the score table (the plugin and weight are the
/// column's; the weighted score is derived when served), kept small as the store holds
/// thousands. Normalised scores lie in 0..=100 and plugins' raw scores are counts, weights
/// and percentages, so 32 bits hold both (saturating).
#[derive(Debug, Clone, Copy)]
struct NodeScore {
    raw: i32,
    normalized: i32,
}

/// A node's row of the score table, as served.
struct ScoreRow<'a> {
    columns: &'a [ScoreColumn],
    cells: &'a [NodeScore],
}

impl Serialize for ScoreRow<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeSeq, SerializeStruct};
        struct Cell<'a>(&'a ScoreColumn, &'a NodeScore);
        impl Serialize for Cell<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let Cell(column, score) = self;
                let mut s = serializer.serialize_struct("PluginScore", 5)?;
                s.serialize_field("plugin", column.plugin)?;
                s.serialize_field("raw", &score.raw)?;
                s.serialize_field("normalized", &score.normalized)?;
                s.serialize_field("weight", &column.weight)?;
                s.serialize_field(
                    "weighted",
                    &(i64::from(score.normalized) * i64::from(column.weight)),
                )?;
                s.end()
            }
        }
        let mut seq = serializer.serialize_seq(Some(self.cells.len()))?;
        for (column, score) in self.columns.iter().zip(self.cells) {
            seq.serialize_element(&Cell(column, score))?;
        }
        seq.end()
    }
}

/// Nodes rejected for the same reason, stored once.
#[derive(Debug, Clone)]
struct RejectionGroup {
    rejection: Rejection,
    nodes: Vec<Arc<str>>,
    omitted: usize,
}

/// A node that passed every filter, with its row of the score table when it was scored.
#[derive(Debug, Clone)]
struct Feasible {
    node: Arc<str>,
    /// The weighted total and the row, when the node was scored.
    scored: Option<(i64, u32)>,
}

/// What happened to one node, as served.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeVerdict<'a> {
    node: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejected: Option<&'a Rejection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scores: Option<ScoreRow<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_score: Option<i64>,
}

/// The outcome of one scheduling attempt.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub pod: Arc<str>,
    pub uid: String,
    pub profile: String,
    pub attempt: u32,
    pub time: jiff::Timestamp,
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
    /// The score plugins, and one row of cells per scored node (row-major), in one
    /// allocation rather than one per node.
    score_columns: Box<[ScoreColumn]>,
    score_table: Vec<NodeScore>,
}

impl Serialize for Explanation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut nodes: Vec<NodeVerdict<'_>> = Vec::new();
        for f in &self.feasible {
            nodes.push(NodeVerdict {
                node: &f.node,
                rejected: None,
                scores: f
                    .scored
                    .filter(|_| !self.score_columns.is_empty())
                    .map(|(_, row)| self.score_row(row)),
                total_score: f.scored.map(|(total, _)| total),
            });
        }
        for g in &self.rejected {
            for n in &g.nodes {
                nodes.push(NodeVerdict {
                    node: n,
                    rejected: Some(&g.rejection),
                    scores: None,
                    total_score: None,
                });
            }
        }
        let rejected_omitted: usize = self.rejected.iter().map(|g| g.omitted).sum();
        let mut s = serializer.serialize_struct("Explanation", 15)?;
        s.serialize_field("pod", &*self.pod)?;
        s.serialize_field("uid", &self.uid)?;
        s.serialize_field("profile", &self.profile)?;
        s.serialize_field("attempt", &self.attempt)?;
        s.serialize_field("time", &self.time.to_string())?;
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
            pod: Arc::from(pod),
            uid: uid.to_string(),
            profile: profile.to_string(),
            attempt,
            time: jiff::Timestamp::now(),
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
            score_columns: Box::default(),
            score_table: Vec::new(),
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

    /// Records a node that passed every filter and was not scored (it was the only one).
    pub fn feasible(&mut self, node: &Arc<str>) {
        self.feasible.push(Feasible {
            node: node.clone(),
            scored: None,
        });
    }

    /// Records the scored feasible nodes: `columns[c]` scored `nodes[n]` with `raw[c][n]`,
    /// normalised to `normalized[c][n]`, for a weighted total of `totals[n]`.
    pub fn scored(
        &mut self,
        nodes: &[Arc<str>],
        columns: Vec<ScoreColumn>,
        raw: &[Vec<i64>],
        normalized: &[Vec<i64>],
        totals: &[i64],
    ) {
        self.score_table = Vec::with_capacity(nodes.len() * columns.len());
        for (n, (node, total)) in nodes.iter().zip(totals).enumerate() {
            for c in 0..columns.len() {
                self.score_table.push(NodeScore {
                    raw: saturate(raw[c][n]),
                    normalized: saturate(normalized[c][n]),
                });
            }
            self.feasible.push(Feasible {
                node: node.clone(),
                scored: Some((*total, u32::try_from(n).unwrap_or(u32::MAX))),
            });
        }
        self.score_columns = columns.into_boxed_slice();
    }

    fn score_row(&self, row: u32) -> ScoreRow<'_> {
        let width = self.score_columns.len();
        let row = row as usize;
        ScoreRow {
            columns: &self.score_columns,
            cells: self
                .score_table
                .get(row * width..(row + 1) * width)
                .unwrap_or(&[]),
        }
    }

    /// Keeps the best-scored nodes (and the selected one) and counts the rest.
    pub fn finish(&mut self, selected: Option<&str>) {
        self.selected_node = selected.map(str::to_string);
        self.feasible
            .sort_by_key(|f| std::cmp::Reverse(f.scored.map(|(total, _)| total)));
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
        // Stored for thousands of pods: keep only the kept nodes' rows, and give back what
        // the cycle over-allocated.
        let width = self.score_columns.len();
        let mut table = Vec::with_capacity(self.feasible.len() * width);
        let mut rows = 0u32;
        for f in &mut self.feasible {
            if let Some((_, row)) = &mut f.scored {
                let old = *row as usize;
                table.extend_from_slice(
                    self.score_table
                        .get(old * width..(old + 1) * width)
                        .unwrap_or(&[]),
                );
                *row = rows;
                rows += 1;
            }
        }
        self.score_table = table;
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

fn saturate(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX })
}

/// The latest explanation per pod key, bounded by `CAPACITY`.
#[derive(Default)]
pub struct Store {
    inner: Mutex<StoreInner>,
}

#[derive(Default)]
struct StoreInner {
    by_pod: HashMap<Arc<str>, Arc<Explanation>>,
    order: VecDeque<Arc<str>>,
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
                inner.order.retain(|k| &**k != key);
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
        let scored: Vec<Arc<str>> = (0..20)
            .map(|i| Arc::from(format!("f{i}").as_str()))
            .collect();
        let columns = vec![
            ScoreColumn {
                plugin: "A",
                weight: 1,
            },
            ScoreColumn {
                plugin: "B",
                weight: 2,
            },
        ];
        let raw = vec![(0..20).collect::<Vec<i64>>(), vec![7; 20]];
        let normalized = vec![(0..20).map(|i| i * 5).collect::<Vec<i64>>(), vec![3; 20]];
        let totals: Vec<i64> = (0..20).map(|i| i * 5 + 6).collect();
        e.scored(&scored, columns, &raw, &normalized, &totals);
        e.finish(Some("f0"));
        let json = serde_json::to_value(&e).unwrap();
        let nodes = json["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), SCORED_NODES_KEPT + 3);
        assert_eq!(nodes[0]["node"], "f19");
        assert_eq!(
            nodes[0]["scores"],
            serde_json::json!([
                {"plugin": "A", "raw": 19, "normalized": 95, "weight": 1, "weighted": 95},
                {"plugin": "B", "raw": 7, "normalized": 3, "weight": 2, "weighted": 6},
            ])
        );
        assert_eq!(nodes[0]["totalScore"], 101);
        let f0 = nodes.iter().find(|n| n["node"] == "f0").unwrap();
        assert_eq!(f0["scores"][0]["raw"], 0);
        assert_eq!(f0["totalScore"], 6);
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
