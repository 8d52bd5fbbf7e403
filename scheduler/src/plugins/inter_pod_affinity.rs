//! InterPodAffinity: required pod affinity and anti-affinity (the incoming pod's terms and the
//! anti-affinity terms of pods already running) filter nodes by topology domain; preferred terms
//! of both sides score them.

use std::{collections::HashMap, sync::Arc};

use crate::framework::{
    types::AffinityTerm, ClusterEvent, Code, CycleState, ExtensionPoint, NodeInfo, Plugin, PodInfo,
    PreFilterResult, Snapshot, Status, ALL_EVENTS, MAX_NODE_SCORE,
};

pub const NAME: &str = "InterPodAffinity";
const EXISTING_ANTI_AFFINITY: &str = "node(s) didn't satisfy existing pods anti-affinity rules";
const AFFINITY: &str = "node(s) didn't match pod affinity rules";
const ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
/// Weight of an existing pod's required affinity term matching the incoming pod, when scoring
/// (upstream's `hardPodAffinityWeight` default).
const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

/// Topology key -> domain value -> count; nested so lookups borrow instead of allocating.
type TopologyCounts = HashMap<String, HashMap<String, i64>>;

fn count_in(counts: &TopologyCounts, node: &NodeInfo, key: &str) -> i64 {
    node.labels
        .get(key)
        .and_then(|v| counts.get(key)?.get(v))
        .copied()
        .unwrap_or(0)
}

/// Sum over every topology key in `counts` of the node's domain count.
fn sum_for_node(counts: &TopologyCounts, node: &NodeInfo) -> i64 {
    counts
        .iter()
        .filter_map(|(key, values)| values.get(node.labels.get(key)?))
        .sum()
}

#[derive(Default)]
struct FilterState {
    /// Whether the incoming pod matches all its own required affinity terms.
    matches_own_affinity: bool,
    existing_anti_affinity: TopologyCounts,
    affinity: TopologyCounts,
    anti_affinity: TopologyCounts,
}

struct ScoreState {
    topology_scores: TopologyCounts,
}

pub struct InterPodAffinity;

fn add_for_term(counts: &mut TopologyCounts, term: &AffinityTerm, node: &NodeInfo, delta: i64) {
    let Some(value) = node.labels.get(&term.topology_key) else {
        return;
    };
    let values = match counts.get_mut(&term.topology_key) {
        Some(values) => values,
        None => counts.entry(term.topology_key.clone()).or_default(),
    };
    match values.get_mut(value) {
        Some(c) => *c += delta,
        None => {
            values.insert(value.clone(), delta);
        }
    }
}

impl Plugin for InterPodAffinity {
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
        let ns = &*snapshot.namespace_labels;
        let mut s = FilterState {
            matches_own_affinity: pod.required_affinity.iter().all(|t| t.matches(pod, ns)),
            ..Default::default()
        };
        for &i in snapshot.nodes_with_affinity_pods.iter() {
            let node = &snapshot.nodes[i];
            for (term, pods) in node.anti_affinity_terms() {
                if term.matches(pod, ns) {
                    add_for_term(&mut s.existing_anti_affinity, term, node, *pods);
                }
            }
        }
        // The pods the incoming pod's terms select, per domain, from the nodes' counts.
        let terms = |terms: &[AffinityTerm], counts: &mut TopologyCounts| {
            for term in terms {
                let Some(selector) = term.pod_selector(ns) else {
                    continue;
                };
                let id = snapshot.counted_id(&selector);
                for node in &snapshot.nodes {
                    let n = snapshot.count(node, &selector, id);
                    if n > 0 {
                        add_for_term(counts, term, node, n);
                    }
                }
            }
        };
        terms(&pod.required_affinity, &mut s.affinity);
        terms(&pod.required_anti_affinity, &mut s.anti_affinity);
        if s.existing_anti_affinity.is_empty()
            && pod.required_affinity.is_empty()
            && pod.required_anti_affinity.is_empty()
        {
            return Ok(PreFilterResult::Skip);
        }
        state.write(NAME, s);
        Ok(PreFilterResult::Continue)
    }

    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let Some(s) = state.read::<FilterState>(NAME) else {
            return Err(Status::error("InterPodAffinity: no PreFilter state"));
        };
        let count = |counts: &TopologyCounts, key: &str| count_in(counts, node, key);
        let existing_conflict = s.existing_anti_affinity.iter().any(|(key, values)| {
            node.labels
                .get(key)
                .and_then(|v| values.get(v))
                .is_some_and(|c| *c > 0)
        });
        if existing_conflict {
            return Err(Status::unschedulable(EXISTING_ANTI_AFFINITY));
        }
        if pod
            .required_anti_affinity
            .iter()
            .any(|t| count(&s.anti_affinity, &t.topology_key) > 0)
        {
            return Err(Status::unschedulable(ANTI_AFFINITY));
        }
        if !pod.required_affinity.is_empty() {
            let satisfied = pod.required_affinity.iter().all(|t| {
                node.labels.contains_key(&t.topology_key) && count(&s.affinity, &t.topology_key) > 0
            });
            // The first pod of a group that selects itself may go anywhere with the keys.
            let first_of_group = s.affinity.is_empty()
                && s.matches_own_affinity
                && pod
                    .required_affinity
                    .iter()
                    .all(|t| node.labels.contains_key(&t.topology_key));
            if !satisfied && !first_of_group {
                return Err(Status {
                    code: Code::UnschedulableAndUnresolvable,
                    reasons: vec![AFFINITY.into()],
                });
            }
        }
        Ok(())
    }

    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Result<bool, Status> {
        let has_preferred =
            !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
        if !has_preferred && snapshot.nodes_with_affinity_pods.is_empty() {
            return Ok(false);
        }
        let ns = &*snapshot.namespace_labels;
        let mut scores = TopologyCounts::new();
        let mut visit = |node: &NodeInfo| {
            for existing in &node.pods {
                for t in &pod.preferred_affinity {
                    if t.matches(existing, ns) {
                        add_for_term(&mut scores, t, node, t.weight);
                    }
                }
                for t in &pod.preferred_anti_affinity {
                    if t.matches(existing, ns) {
                        add_for_term(&mut scores, t, node, -t.weight);
                    }
                }
                if !existing.has_affinity() {
                    continue;
                }
                for t in &existing.required_affinity {
                    if t.matches(pod, ns) {
                        add_for_term(&mut scores, t, node, HARD_POD_AFFINITY_WEIGHT);
                    }
                }
                for t in &existing.preferred_affinity {
                    if t.matches(pod, ns) {
                        add_for_term(&mut scores, t, node, t.weight);
                    }
                }
                for t in &existing.preferred_anti_affinity {
                    if t.matches(pod, ns) {
                        add_for_term(&mut scores, t, node, -t.weight);
                    }
                }
            }
        };
        if has_preferred {
            snapshot.nodes.iter().for_each(|n| visit(n));
        } else {
            snapshot
                .nodes_with_affinity_pods
                .iter()
                .for_each(|&i| visit(&snapshot.nodes[i]));
        }
        if scores.is_empty() {
            return Ok(false);
        }
        state.write(
            NAME,
            ScoreState {
                topology_scores: scores,
            },
        );
        Ok(true)
    }

    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(s) = state.read::<ScoreState>(NAME) else {
            return Err(Status::error("InterPodAffinity: no PreScore state"));
        };
        Ok(sum_for_node(&s.topology_scores, node))
    }

    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        let max = scores.iter().copied().max().unwrap_or(0);
        let min = scores.iter().copied().min().unwrap_or(0);
        let diff = max - min;
        for s in scores.iter_mut() {
            *s = if diff > 0 {
                MAX_NODE_SCORE * (*s - min) / diff
            } else {
                0
            };
        }
    }
}
