//! PodTopologySpread: `topologySpreadConstraints` keep matching pods spread across topology
//! domains. DoNotSchedule constraints filter (skew must stay within maxSkew), ScheduleAnyway
//! constraints score (fewer matching pods in the domain is better).

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use k8s_openapi::{
    api::core::v1::TopologySpreadConstraint,
    apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement,
};

use crate::{
    framework::{
        types::PodSelector, ClusterEvent, Code, CycleState, ExtensionPoint, NodeInfo, Plugin,
        PodInfo, PreFilterResult, Snapshot, Status, ALL_EVENTS, MAX_NODE_SCORE,
    },
    selectors::{label_selector_matches, node_selector_term_matches},
};

pub const NAME: &str = "PodTopologySpread";
const SKEW: &str = "node(s) didn't match pod topology spread constraints";
const MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
const HOSTNAME: &str = "kubernetes.io/hostname";

/// A constraint with its selector completed by `matchLabelKeys`.
struct Constraint {
    max_skew: i64,
    key: String,
    /// The pods the constraint counts: its selector, in the pod's namespace.
    pods: PodSelector,
    min_domains: i64,
}

fn constraints(pod: &PodInfo, action: &str) -> Vec<Constraint> {
    let list: &[TopologySpreadConstraint] = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_deref())
        .unwrap_or(&[]);
    list.iter()
        .filter(|c| c.when_unsatisfiable == action)
        .map(|c| {
            let mut selector = c.label_selector.clone().unwrap_or_default();
            for key in c.match_label_keys.iter().flatten() {
                if let Some(value) = pod.labels.get(key) {
                    selector
                        .match_expressions
                        .get_or_insert_with(Vec::new)
                        .push(LabelSelectorRequirement {
                            key: key.clone(),
                            operator: "In".into(),
                            values: Some(vec![value.clone()]),
                        });
                }
            }
            Constraint {
                max_skew: i64::from(c.max_skew),
                key: c.topology_key.clone(),
                pods: PodSelector {
                    namespaces: HashSet::from([pod.namespace.clone()]),
                    all_namespaces: false,
                    selector,
                    skip_terminating: true,
                },
                min_domains: i64::from(c.min_domains.unwrap_or(1)),
            }
        })
        .collect()
}

/// Whether the node passes the pod's node selector and required node affinity
/// (`nodeAffinityPolicy: Honor`, the default).
fn honors_node_affinity(pod: &PodInfo, node: &NodeInfo) -> bool {
    let spec = pod.pod.spec.as_ref();
    if let Some(sel) = spec.and_then(|s| s.node_selector.as_ref()) {
        if sel.iter().any(|(k, v)| node.labels.get(k) != Some(v)) {
            return false;
        }
    }
    let required = spec
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match (required, node.node.as_deref()) {
        (Some(r), Some(n)) => r
            .node_selector_terms
            .iter()
            .any(|t| node_selector_term_matches(t, n)),
        _ => true,
    }
}

/// Adds to a domain's count, allocating the key only for a new domain.
fn add(counts: &mut HashMap<String, i64>, value: &str, n: i64) {
    match counts.get_mut(value) {
        Some(c) => *c += n,
        None => {
            counts.insert(value.to_string(), n);
        }
    }
}

fn has_keys(node: &NodeInfo, cs: &[Constraint]) -> bool {
    cs.iter().all(|c| node.labels.contains_key(&c.key))
}

struct FilterState {
    constraints: Vec<Constraint>,
    /// Per constraint: matching pods per domain value.
    counts: Vec<HashMap<String, i64>>,
    /// Per constraint: the smallest count over domains (0 when below minDomains).
    min: Vec<i64>,
}

struct ScoreState {
    constraints: Vec<Constraint>,
    counts: Vec<HashMap<String, i64>>,
    weights: Vec<f64>,
}

pub struct PodTopologySpread;

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }

    fn extension_points(&self) -> &'static [ExtensionPoint] {
        &[
            ExtensionPoint::PreFilter,
            ExtensionPoint::Filter,
            ExtensionPoint::PreScore,
            ExtensionPoint::Score,
        ]
    }

    fn events(&self) -> &'static [ClusterEvent] {
        ALL_EVENTS
    }

    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> Result<PreFilterResult, Status> {
        let cs = constraints(pod, "DoNotSchedule");
        if cs.is_empty() {
            return Ok(PreFilterResult::Skip);
        }
        let ids: Vec<Option<usize>> = cs.iter().map(|c| snapshot.counted_id(&c.pods)).collect();
        let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); cs.len()];
        for node in &snapshot.nodes {
            if !has_keys(node, &cs) || !honors_node_affinity(pod, node) {
                continue;
            }
            for (i, c) in cs.iter().enumerate() {
                let value = node.labels.get(&c.key).map_or("", String::as_str);
                add(&mut counts[i], value, snapshot.count(node, &c.pods, ids[i]));
            }
        }
        let min = cs
            .iter()
            .zip(&counts)
            .map(|(c, domains)| {
                if (domains.len() as i64) < c.min_domains {
                    0
                } else {
                    domains.values().copied().min().unwrap_or(0)
                }
            })
            .collect();
        state.write(
            NAME,
            FilterState {
                constraints: cs,
                counts,
                min,
            },
        );
        Ok(PreFilterResult::Continue)
    }

    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let Some(s) = state.read::<FilterState>(NAME) else {
            return Err(Status::error("PodTopologySpread: no PreFilter state"));
        };
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = node.labels.get(&c.key) else {
                return Err(Status {
                    code: Code::UnschedulableAndUnresolvable,
                    reasons: vec![MISSING_LABEL.into()],
                });
            };
            let self_match = i64::from(label_selector_matches(&c.pods.selector, &pod.labels));
            let matching = s.counts[i].get(value).copied().unwrap_or(0);
            if matching + self_match - s.min[i] > c.max_skew {
                return Err(Status::unschedulable(SKEW));
            }
        }
        Ok(())
    }

    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        feasible: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Result<bool, Status> {
        let cs = constraints(pod, "ScheduleAnyway");
        if cs.is_empty() {
            return Ok(false);
        }
        let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); cs.len()];
        let mut domains: Vec<std::collections::HashSet<&str>> = vec![Default::default(); cs.len()];
        for node in feasible.iter().filter(|n| has_keys(n, &cs)) {
            for (i, c) in cs.iter().enumerate() {
                if let Some(v) = node.labels.get(&c.key) {
                    domains[i].insert(v.as_str());
                }
            }
        }
        let ids: Vec<Option<usize>> = cs.iter().map(|c| snapshot.counted_id(&c.pods)).collect();
        for node in &snapshot.nodes {
            if !has_keys(node, &cs) || !honors_node_affinity(pod, node) {
                continue;
            }
            for (i, c) in cs.iter().enumerate() {
                let value = node.labels.get(&c.key).map_or("", String::as_str);
                // Per-node domains count only the feasible nodes.
                if c.key == HOSTNAME && !domains[i].contains(value) {
                    continue;
                }
                add(&mut counts[i], value, snapshot.count(node, &c.pods, ids[i]));
            }
        }
        let weights = domains
            .iter()
            .map(|d| ((d.len() + 2) as f64).ln())
            .collect();
        state.write(
            NAME,
            ScoreState {
                constraints: cs,
                counts,
                weights,
            },
        );
        Ok(true)
    }

    /// Nodes without every topology key score -1 and end at 0 after normalising.
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(s) = state.read::<ScoreState>(NAME) else {
            return Err(Status::error("PodTopologySpread: no PreScore state"));
        };
        if !has_keys(node, &s.constraints) {
            return Ok(-1);
        }
        let mut score = 0f64;
        for (i, c) in s.constraints.iter().enumerate() {
            let value = node.labels.get(&c.key).map_or("", |v| v.as_str());
            let count = s.counts[i].get(value).copied().unwrap_or(0);
            score += count as f64 * s.weights[i] + (c.max_skew - 1) as f64;
        }
        Ok(score.round() as i64)
    }

    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        let valid = scores.iter().copied().filter(|s| *s >= 0);
        let max = valid.clone().max().unwrap_or(0);
        let min = valid.min().unwrap_or(0);
        for s in scores.iter_mut() {
            *s = if *s < 0 {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *s) / max
            };
        }
    }
}
