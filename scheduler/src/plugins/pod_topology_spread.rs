//! PodTopologySpread: `topologySpreadConstraints` keep matching pods spread across topology
//! domains. DoNotSchedule constraints filter (skew must stay within maxSkew), ScheduleAnyway
//! constraints score (fewer matching pods in the domain is better).

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use k8s_openapi::{
    api::core::v1::TopologySpreadConstraint,
    apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement},
};

use crate::{
    config::{ConfigError, PodTopologySpreadArgs},
    framework::{
        types::PodSelector, ClusterEvent, Code, CycleState, ExtensionPoint, NodeInfo, Plugin,
        PodInfo, PreFilterResult, Snapshot, Status, ALL_EVENTS, MAX_NODE_SCORE,
    },
    plugins::taint_toleration::untolerated_taint,
    selectors::{label_selector_matches, node_selector_term_matches},
};

pub const NAME: &str = "PodTopologySpread";
const ZONE: &str = "topology.kubernetes.io/zone";
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
    /// `nodeAffinityPolicy: Honor` (the default): only nodes matching the pod's node selector
    /// and required node affinity count as domains.
    honor_affinity: bool,
    /// `nodeTaintsPolicy: Honor`: nodes with taints the pod does not tolerate are left out.
    honor_taints: bool,
}

impl Constraint {
    /// Whether the node counts for this constraint under its node inclusion policies.
    fn includes(&self, node: &NodeEligibility) -> bool {
        (!self.honor_affinity || node.affinity) && (!self.honor_taints || node.taints)
    }
}

/// The node inclusion facts, computed once per node for all constraints.
struct NodeEligibility {
    affinity: bool,
    taints: bool,
}

fn eligibility(pod: &PodInfo, node: &NodeInfo, cs: &[Constraint]) -> NodeEligibility {
    NodeEligibility {
        affinity: !cs.iter().any(|c| c.honor_affinity) || honors_node_affinity(pod, node),
        taints: !cs.iter().any(|c| c.honor_taints) || untolerated_taint(pod, node).is_none(),
    }
}

/// Upstream's system default constraints: spread by zone (maxSkew 5) and by node (maxSkew 3),
/// as preferences only.
fn system_defaults() -> Vec<TopologySpreadConstraint> {
    [(ZONE, 5), (HOSTNAME, 3)]
        .into_iter()
        .map(|(key, max_skew)| TopologySpreadConstraint {
            max_skew,
            topology_key: key.into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            ..Default::default()
        })
        .collect()
}

fn constraint(
    pod: &PodInfo,
    c: &TopologySpreadConstraint,
    mut selector: LabelSelector,
) -> Constraint {
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
        honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
        honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
    }
}

/// Whether the node passes the pod's node selector and required node affinity
/// (`nodeAffinityPolicy: Honor`, the default).
fn honors_node_affinity(pod: &PodInfo, node: &NodeInfo) -> bool {
    let spec = pod.spec();
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
    /// Nodes missing any constraint's topology key are left out of scoring.
    require_all: bool,
}

pub struct PodTopologySpread {
    /// Constraints for pods that set none (selector built per pod from its workloads).
    defaults: Vec<TopologySpreadConstraint>,
    /// The defaults are upstream's system ones: nodes missing a topology key are then still
    /// scored on the keys they have.
    system_defaulted: bool,
}

impl PodTopologySpread {
    pub fn new(args: PodTopologySpreadArgs) -> Result<PodTopologySpread, ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(format!("{NAME}: {msg}")));
        let system_defaulted = match args.defaulting_type.as_str() {
            "System" if args.default_constraints.is_empty() => true,
            "System" => {
                return invalid(
                    "defaultConstraints must be empty when defaultingType is System".into(),
                )
            }
            "List" => false,
            other => return invalid(format!("unsupported defaultingType {other:?}")),
        };
        if args
            .default_constraints
            .iter()
            .any(|c| c.label_selector.is_some())
        {
            return invalid("defaultConstraints must not define a labelSelector".into());
        }
        Ok(PodTopologySpread {
            defaults: if system_defaulted {
                system_defaults()
            } else {
                args.default_constraints
            },
            system_defaulted,
        })
    }

    /// The pod's constraints with `whenUnsatisfiable == action`, or the default ones when it
    /// sets none; and whether they are the pod's own.
    fn constraints(
        &self,
        pod: &PodInfo,
        action: &str,
        snapshot: &Snapshot,
    ) -> (Vec<Constraint>, bool) {
        let own: &[TopologySpreadConstraint] = pod
            .spec()
            .and_then(|s| s.topology_spread_constraints.as_deref())
            .unwrap_or(&[]);
        if !own.is_empty() {
            let cs = own
                .iter()
                .filter(|c| c.when_unsatisfiable == action)
                .map(|c| constraint(pod, c, c.label_selector.clone().unwrap_or_default()))
                .collect();
            return (cs, true);
        }
        if !self.defaults.iter().any(|c| c.when_unsatisfiable == action) {
            return (Vec::new(), false);
        }
        let selector = match snapshot.workloads.read() {
            Ok(w) => w.default_selector(pod),
            Err(_) => None,
        };
        let Some(selector) = selector else {
            return (Vec::new(), false);
        };
        let cs = self
            .defaults
            .iter()
            .filter(|c| c.when_unsatisfiable == action)
            .map(|c| constraint(pod, c, selector.clone()))
            .collect();
        (cs, false)
    }
}

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
        let (cs, _) = self.constraints(pod, "DoNotSchedule", snapshot);
        if cs.is_empty() {
            return Ok(PreFilterResult::Skip);
        }
        let ids: Vec<Option<usize>> = cs.iter().map(|c| snapshot.counted_id(&c.pods)).collect();
        let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); cs.len()];
        for node in &snapshot.nodes {
            if !has_keys(node, &cs) {
                continue;
            }
            let eligible = eligibility(pod, node, &cs);
            for (i, c) in cs.iter().enumerate() {
                if !c.includes(&eligible) {
                    continue;
                }
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
        let (cs, own) = self.constraints(pod, "ScheduleAnyway", snapshot);
        if cs.is_empty() {
            return Ok(false);
        }
        let require_all = own || !self.system_defaulted;
        let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); cs.len()];
        let mut domains: Vec<HashSet<&str>> = vec![Default::default(); cs.len()];
        for node in feasible.iter().filter(|n| !require_all || has_keys(n, &cs)) {
            for (i, c) in cs.iter().enumerate() {
                if let Some(v) = node.labels.get(&c.key) {
                    domains[i].insert(v.as_str());
                }
            }
        }
        let ids: Vec<Option<usize>> = cs.iter().map(|c| snapshot.counted_id(&c.pods)).collect();
        for node in &snapshot.nodes {
            if require_all && !has_keys(node, &cs) {
                continue;
            }
            let eligible = eligibility(pod, node, &cs);
            for (i, c) in cs.iter().enumerate() {
                let Some(value) = node.labels.get(&c.key) else {
                    continue;
                };
                // Only domains of feasible nodes are scored, and so counted.
                if !c.includes(&eligible) || !domains[i].contains(value.as_str()) {
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
                require_all,
            },
        );
        Ok(true)
    }

    /// Nodes without every topology key (when all are required) score -1 and end at 0 after
    /// normalising; otherwise a node is scored on the keys it has.
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(s) = state.read::<ScoreState>(NAME) else {
            return Err(Status::error("PodTopologySpread: no PreScore state"));
        };
        if s.require_all && !has_keys(node, &s.constraints) {
            return Ok(-1);
        }
        let mut score = 0f64;
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = node.labels.get(&c.key) else {
                continue;
            };
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: serde_json::Value) -> PodTopologySpreadArgs {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn defaulting_types() {
        let system = PodTopologySpread::new(PodTopologySpreadArgs::default()).unwrap();
        assert!(system.system_defaulted);
        let keys: Vec<_> = system
            .defaults
            .iter()
            .map(|c| (c.topology_key.as_str(), c.max_skew))
            .collect();
        assert_eq!(keys, [(ZONE, 5), (HOSTNAME, 3)]);
        let c = json!({"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"});
        let list = PodTopologySpread::new(args(
            json!({"defaultingType": "List", "defaultConstraints": [c]}),
        ))
        .unwrap();
        assert!(!list.system_defaulted);
        assert_eq!(list.defaults.len(), 1);
        assert!(PodTopologySpread::new(args(json!({"defaultConstraints": [c]}))).is_err());
        let mut with_selector = c.clone();
        with_selector["labelSelector"] = json!({});
        assert!(PodTopologySpread::new(args(
            json!({"defaultingType": "List", "defaultConstraints": [with_selector]})
        ))
        .is_err());
        assert!(PodTopologySpread::new(args(json!({"defaultingType": "Other"}))).is_err());
    }
}
