//! DefaultPreemption (the PostFilter plugin): when a pod fits nowhere, find nodes where evicting
//! lower-priority pods would make it fit, keep as many of them as possible (PodDisruptionBudget
//! protected ones first), and pick the node with the fewest and least important victims.

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
};

use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use crate::{
    framework::{
        profile::{Diagnosis, Profile},
        Code, CycleState, NodeInfo, PodInfo, Snapshot,
    },
    selectors::label_selector_matches,
};

/// At most this many candidate nodes are simulated (upstream's minCandidateNodesAbsolute).
const MAX_CANDIDATES: usize = 100;

const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// Pods to evict on a node so the preemptor fits.
#[derive(Debug)]
pub struct Candidate {
    pub node: Arc<str>,
    pub victims: Vec<Arc<PodInfo>>,
    pub pdb_violations: usize,
}

#[derive(Debug)]
pub enum Outcome {
    /// Evict these victims and nominate the node.
    Preempt(Candidate),
    /// Preemption cannot help; the message is appended to the FailedScheduling message.
    NotHelpful(String),
}

/// Whether the pod may preempt at all, as upstream's `PodEligibleToPreemptOthers`.
pub fn eligible(pod: &PodInfo, snapshot: &Snapshot) -> Result<(), String> {
    let policy = pod.spec().and_then(|s| s.preemption_policy.as_deref());
    if policy == Some("Never") {
        return Err("not eligible due to preemptionPolicy=Never.".into());
    }
    if let Some(nominated) = pod.nominated_node() {
        let terminating = snapshot
            .nodes
            .iter()
            .filter(|n| &*n.name == nominated)
            .flat_map(|n| n.pods.iter())
            .any(|p| p.is_terminating() && p.priority < pod.priority);
        if terminating {
            return Err("not eligible due to a terminating pod on the nominated node.".into());
        }
    }
    Ok(())
}

/// Whether the pod fits `node` in a snapshot where `node` replaces its original.
fn fits(
    profile: &Profile,
    pod: &PodInfo,
    snapshot: &Snapshot,
    index: usize,
    node: &NodeInfo,
) -> bool {
    let mut view = snapshot.clone();
    view.nodes[index] = Arc::new(node.clone());
    let mut state = CycleState::default();
    match profile.run_pre_filter(&mut state, pod, &view) {
        Ok(skip) => profile.run_filters(&state, &skip, pod, node).is_ok(),
        Err(_) => false,
    }
}

/// Remaining disruptions per PDB, and which PDBs select a pod.
struct Budgets<'a> {
    pdbs: &'a [PodDisruptionBudget],
    allowed: Vec<i32>,
}

impl<'a> Budgets<'a> {
    fn new(pdbs: &'a [PodDisruptionBudget]) -> Budgets<'a> {
        Budgets {
            allowed: pdbs
                .iter()
                .map(|p| p.status.as_ref().map_or(0, |s| s.disruptions_allowed))
                .collect(),
            pdbs,
        }
    }

    fn matching(&self, pod: &PodInfo) -> Vec<usize> {
        self.pdbs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.metadata.namespace.as_deref() == Some(pod.namespace.as_str()))
            .filter(|(_, p)| {
                p.spec
                    .as_ref()
                    .and_then(|s| s.selector.as_ref())
                    .is_some_and(|s| {
                        // An empty selector selects nothing in policy/v1 PDBs' eviction checks.
                        (s.match_labels.as_ref().is_some_and(|m| !m.is_empty())
                            || s.match_expressions.as_ref().is_some_and(|e| !e.is_empty()))
                            && label_selector_matches(s, &pod.labels)
                    })
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Whether evicting `pod` would break a budget; otherwise spends the budgets it uses.
    fn violates(&mut self, pod: &PodInfo) -> bool {
        let matching = self.matching(pod);
        if matching.iter().any(|i| self.allowed[*i] <= 0) {
            return true;
        }
        for i in matching {
            self.allowed[i] -= 1;
        }
        false
    }
}

/// The fewest victims on one node that let `pod` fit, or `None`.
fn select_victims(
    profile: &Profile,
    pod: &PodInfo,
    snapshot: &Snapshot,
    index: usize,
    pdbs: &[PodDisruptionBudget],
) -> Option<Candidate> {
    let original = &snapshot.nodes[index];
    let mut node = (**original).clone();
    let mut potential: Vec<Arc<PodInfo>> = original
        .pods
        .iter()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    if potential.is_empty() {
        return None;
    }
    for p in &potential {
        node.remove_pod(&p.key);
    }
    if !fits(profile, pod, snapshot, index, &node) {
        return None;
    }
    // Most important first: they are the first we try to keep.
    potential.sort_by_key(|p| std::cmp::Reverse(p.priority));
    let mut budgets = Budgets::new(pdbs);
    let (violating, others): (Vec<_>, Vec<_>) =
        potential.into_iter().partition(|p| budgets.violates(p));
    let mut victims = Vec::new();
    let mut pdb_violations = 0;
    for (group, is_violating) in [(violating, true), (others, false)] {
        for p in group {
            node.add_pod(p.clone());
            if !fits(profile, pod, snapshot, index, &node) {
                node.remove_pod(&p.key);
                if is_violating {
                    pdb_violations += 1;
                }
                victims.push(p);
            }
        }
    }
    if victims.is_empty() {
        return None;
    }
    Some(Candidate {
        node: original.name.clone(),
        victims,
        pdb_violations,
    })
}

/// Upstream's `pickOneNodeForPreemption` order: fewest PDB violations, lowest highest victim
/// priority, smallest priority sum, fewest victims.
fn rank(c: &Candidate) -> (usize, i32, i64, usize) {
    let highest = c
        .victims
        .iter()
        .map(|v| v.priority)
        .max()
        .unwrap_or(i32::MIN);
    let sum = c
        .victims
        .iter()
        .map(|v| i64::from(v.priority) + i64::from(i32::MAX) + 1)
        .sum();
    (c.pdb_violations, highest, sum, c.victims.len())
}

/// Runs preemption for a pod that fits nowhere.
pub fn preempt(
    profile: &Profile,
    pod: &PodInfo,
    snapshot: &Snapshot,
    diagnosis: &Diagnosis,
    pdbs: &[PodDisruptionBudget],
) -> Outcome {
    if let Err(reason) = eligible(pod, snapshot) {
        return Outcome::NotHelpful(reason);
    }
    let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
    let mut candidates = Vec::new();
    let mut tried = HashSet::new();
    for (i, node) in snapshot.nodes.iter().enumerate() {
        let helpful = diagnosis
            .node_status
            .get(&node.name)
            .is_some_and(|r| r.code == Code::Unschedulable);
        if !helpful {
            *histogram.entry(NOT_HELPFUL).or_insert(0) += 1;
            continue;
        }
        if tried.len() >= MAX_CANDIDATES {
            continue;
        }
        tried.insert(i);
        match select_victims(profile, pod, snapshot, i, pdbs) {
            Some(c) => candidates.push(c),
            None => *histogram.entry(NO_VICTIMS).or_insert(0) += 1,
        }
    }
    match candidates.into_iter().min_by_key(rank) {
        Some(best) => Outcome::Preempt(best),
        None => {
            let mut parts: Vec<String> =
                histogram.iter().map(|(r, n)| format!("{n} {r}")).collect();
            parts.sort();
            Outcome::NotHelpful(format!(
                "0/{} nodes are available: {}.",
                snapshot.nodes.len(),
                parts.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cache::Cache, config::Profile as ProfileConfig, explain::Explanation};
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::json;

    fn pod(name: &str, cpu: &str, priority: i32) -> Arc<PodInfo> {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "d", "uid": name},
            "spec": {"priority": priority, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
        }))
        .unwrap();
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    #[test]
    fn evicts_the_fewest_lowest_priority_pods() {
        let mut cache = Cache::default();
        for n in ["a", "b"] {
            let node: Node = serde_json::from_value(json!({
                "metadata": {"name": n},
                "status": {"allocatable": {"cpu": "2", "memory": "1Gi", "pods": "10"}}
            }))
            .unwrap();
            cache.upsert_node(Arc::new(node));
        }
        // a: two low pods (1 cpu each, priority 1); b: one 2-cpu pod of priority 5.
        cache.assume(pod("a1", "1", 1), &Arc::from("a"));
        cache.assume(pod("a2", "1", 1), &Arc::from("a"));
        cache.assume(pod("b1", "2", 5), &Arc::from("b"));
        let snapshot = cache.snapshot();
        let profile = Profile::new(&ProfileConfig::default(), None).unwrap();
        let high = pod("high", "1", 10);
        let mut explain = Explanation::new("d/high", "", "default-scheduler", 1);
        let Err(crate::framework::profile::ScheduleError::Unschedulable(diagnosis)) =
            profile.schedule(&high, &snapshot, &|_| None, &mut explain)
        else {
            panic!("expected unschedulable")
        };
        let Outcome::Preempt(c) = preempt(&profile, &high, &snapshot, &diagnosis, &[]) else {
            panic!("expected a candidate")
        };
        // Node a needs one victim of priority 1; node b one of priority 5.
        assert_eq!(&*c.node, "a");
        assert_eq!(c.victims.len(), 1);
        assert_eq!(c.victims[0].priority, 1);

        let low = pod("low", "1", 0);
        let mut explain = Explanation::new("d/low", "", "default-scheduler", 1);
        let Err(crate::framework::profile::ScheduleError::Unschedulable(diagnosis)) =
            profile.schedule(&low, &snapshot, &|_| None, &mut explain)
        else {
            panic!("expected unschedulable")
        };
        let Outcome::NotHelpful(msg) = preempt(&profile, &low, &snapshot, &diagnosis, &[]) else {
            panic!("a priority-0 pod cannot preempt")
        };
        assert_eq!(
            msg,
            "0/2 nodes are available: 2 No preemption victims found for incoming pod."
        );
    }
}
