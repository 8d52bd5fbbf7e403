//! A scheduling profile: the plugins enabled at each extension point (upstream's defaults merged
//! with the configuration's enable/disable lists and weights), and the scheduling algorithm that
//! runs them: PreFilter, Filter over enough nodes, PreScore, Score, NormalizeScore and
//! selectHost.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use rand::Rng;

use super::{
    Code, CycleState, ExtensionPoint, NodeInfo, Plugin, PodInfo, PreFilterResult, Snapshot, Status,
};
use crate::{
    config::{ConfigError, PluginSet, Profile as ProfileConfig},
    explain::{Explanation, Rejection, ScoreColumn},
    plugins,
};

/// Upstream's lower bounds for adaptive `percentageOfNodesToScore`.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
const MIN_FEASIBLE_NODES_PERCENTAGE: u32 = 5;

/// Upstream's message when the cluster has no nodes.
pub const NO_NODES: &str = "no nodes available to schedule pods";

/// Why a pod fits no node: per node, the plugin and reasons that rejected it.
#[derive(Debug, Clone, Default)]
pub struct Diagnosis {
    pub num_all_nodes: usize,
    pub node_status: HashMap<Arc<str>, Rejection>,
    pub unschedulable_plugins: HashSet<&'static str>,
}

impl Diagnosis {
    /// Upstream's FitError message: "0/5 nodes are available: 2 Insufficient cpu, 3 ...".
    pub fn message(&self) -> String {
        if self.num_all_nodes == 0 {
            return NO_NODES.to_string();
        }
        let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
        for r in self.node_status.values() {
            for reason in &r.reasons {
                *histogram.entry(reason.as_str()).or_insert(0) += 1;
            }
        }
        let mut parts: Vec<String> = histogram.iter().map(|(r, n)| format!("{n} {r}")).collect();
        parts.sort();
        format!(
            "0/{} nodes are available: {}.",
            self.num_all_nodes,
            parts.join(", ")
        )
    }
}

/// Why scheduling a pod failed.
#[derive(Debug)]
pub enum ScheduleError {
    Unschedulable(Diagnosis),
    Internal(String),
}

/// Plugins enabled at one extension point, with their score weights.
type Weighted = Vec<(Arc<dyn Plugin>, i64)>;

pub struct Profile {
    pub name: String,
    pre_filter: Vec<Arc<dyn Plugin>>,
    filter: Vec<Arc<dyn Plugin>>,
    pre_score: Vec<Arc<dyn Plugin>>,
    score: Weighted,
    pub preemption: bool,
    percentage_of_nodes_to_score: u32,
    next_start_node: AtomicUsize,
    /// Every enabled plugin, for cluster-event interest.
    pub plugins: Vec<Arc<dyn Plugin>>,
}

fn disabled(set: &PluginSet, name: &str) -> bool {
    set.disabled.iter().any(|p| p.name == "*" || p.name == name)
}

impl Profile {
    pub fn new(
        cfg: &ProfileConfig,
        global_percentage: Option<u32>,
    ) -> Result<Profile, ConfigError> {
        let p = &cfg.plugins;
        // multiPoint: the defaults minus what is disabled, then what is enabled.
        let mut multi: Vec<(String, Option<i64>)> = plugins::DEFAULTS
            .iter()
            .filter(|(n, _)| !disabled(&p.multi_point, n))
            .map(|(n, w)| (n.to_string(), Some(*w)))
            .collect();
        for e in &p.multi_point.enabled {
            match multi.iter_mut().find(|(n, _)| *n == e.name) {
                Some(entry) => entry.1 = e.weight.or(entry.1),
                None => multi.push((e.name.clone(), e.weight)),
            }
        }
        let mut instances: HashMap<String, Option<Arc<dyn Plugin>>> = HashMap::new();
        let mut instance = |name: &str| -> Result<Option<Arc<dyn Plugin>>, ConfigError> {
            if let Some(i) = instances.get(name) {
                return Ok(i.clone());
            }
            let i = plugins::build(name, cfg)?;
            instances.insert(name.to_string(), i.clone());
            Ok(i)
        };
        let mut resolve =
            |point: ExtensionPoint, set: &PluginSet| -> Result<Weighted, ConfigError> {
                let mut out: Weighted = Vec::new();
                for (name, weight) in &multi {
                    if disabled(set, name) {
                        continue;
                    }
                    if let Some(plugin) = instance(name)? {
                        if plugin.extension_points().contains(&point) {
                            out.push((plugin, weight.unwrap_or(1).max(1)));
                        }
                    }
                }
                for e in &set.enabled {
                    let Some(plugin) = instance(&e.name)? else {
                        continue;
                    };
                    if !plugin.extension_points().contains(&point) {
                        return Err(ConfigError::Invalid(format!(
                            "profile {:?}: plugin {:?} does not extend {point:?}",
                            cfg.scheduler_name, e.name
                        )));
                    }
                    match out.iter_mut().find(|(pl, _)| pl.name() == e.name) {
                        Some(entry) => entry.1 = e.weight.unwrap_or(entry.1).max(1),
                        None => out.push((plugin, e.weight.unwrap_or(1).max(1))),
                    }
                }
                Ok(out)
            };
        let only = |v: Weighted| v.into_iter().map(|(p, _)| p).collect::<Vec<_>>();
        let pre_filter = only(resolve(ExtensionPoint::PreFilter, &p.pre_filter)?);
        let filter = only(resolve(ExtensionPoint::Filter, &p.filter)?);
        let pre_score = only(resolve(ExtensionPoint::PreScore, &p.pre_score)?);
        let score = resolve(ExtensionPoint::Score, &p.score)?;
        let preemption = multi
            .iter()
            .any(|(n, _)| n == plugins::DEFAULT_PREEMPTION && !disabled(&p.post_filter, n))
            || p.post_filter
                .enabled
                .iter()
                .any(|e| e.name == plugins::DEFAULT_PREEMPTION);
        let mut all: Vec<Arc<dyn Plugin>> = Vec::new();
        for plugin in pre_filter
            .iter()
            .chain(&filter)
            .chain(&pre_score)
            .chain(score.iter().map(|(p, _)| p))
        {
            if !all.iter().any(|a| a.name() == plugin.name()) {
                all.push(plugin.clone());
            }
        }
        Ok(Profile {
            name: cfg.scheduler_name.clone(),
            pre_filter,
            filter,
            pre_score,
            score,
            preemption,
            percentage_of_nodes_to_score: cfg
                .percentage_of_nodes_to_score
                .or(global_percentage)
                .unwrap_or(0),
            next_start_node: AtomicUsize::new(0),
            plugins: all,
        })
    }

    /// Names of the plugins enabled at Filter and Score, with weights, for logs and tests.
    pub fn describe(&self) -> (Vec<&'static str>, Vec<(&'static str, i64)>) {
        (
            self.filter.iter().map(|p| p.name()).collect(),
            self.score.iter().map(|(p, w)| (p.name(), *w)).collect(),
        )
    }

    /// How many feasible nodes are enough before scoring, as upstream's
    /// `numFeasibleNodesToFind`.
    pub fn num_feasible_nodes_to_find(&self, all: usize) -> usize {
        let pct = self.percentage_of_nodes_to_score;
        if all < MIN_FEASIBLE_NODES_TO_FIND || pct >= 100 {
            return all;
        }
        let adaptive = if pct == 0 {
            (50 - (all / 125) as i64).max(MIN_FEASIBLE_NODES_PERCENTAGE as i64) as usize
        } else {
            pct as usize
        };
        (all * adaptive / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
    }

    /// Runs every PreFilter plugin; the plugins to skip at Filter, or the status that rejects
    /// every node.
    pub fn run_pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> Result<HashSet<&'static str>, Rejection> {
        let mut skip = HashSet::new();
        for plugin in &self.pre_filter {
            match plugin.pre_filter(state, pod, snapshot) {
                Ok(PreFilterResult::Continue) => {}
                Ok(PreFilterResult::Skip) => {
                    skip.insert(plugin.name());
                }
                Err(status) => {
                    return Err(Rejection {
                        plugin: plugin.name(),
                        code: status.code,
                        reasons: status.reasons,
                    })
                }
            }
        }
        Ok(skip)
    }

    /// Runs the Filter plugins on one node, stopping at the first rejection.
    pub fn run_filters(
        &self,
        state: &CycleState,
        skip: &HashSet<&'static str>,
        pod: &PodInfo,
        node: &NodeInfo,
    ) -> Result<(), Rejection> {
        for plugin in &self.filter {
            if skip.contains(plugin.name()) {
                continue;
            }
            if let Err(Status { code, reasons }) = plugin.filter(state, pod, node) {
                return Err(Rejection {
                    plugin: plugin.name(),
                    code,
                    reasons,
                });
            }
        }
        Ok(())
    }

    /// Picks a node for `pod`, recording the attempt in `explain`. `nominated` adds the pods
    /// nominated to a node (with at least this pod's priority) before filtering it.
    pub fn schedule(
        &self,
        pod: &PodInfo,
        snapshot: &Snapshot,
        nominated: &dyn Fn(&NodeInfo) -> Option<NodeInfo>,
        explain: &mut Explanation,
    ) -> Result<Arc<str>, ScheduleError> {
        let all = snapshot.nodes.len();
        explain.total_nodes = all;
        let mut diagnosis = Diagnosis {
            num_all_nodes: all,
            ..Default::default()
        };
        if all == 0 {
            return Err(ScheduleError::Unschedulable(diagnosis));
        }
        let mut state = CycleState::default();
        let skip = match self.run_pre_filter(&mut state, pod, snapshot) {
            Ok(skip) => skip,
            Err(rejection) if rejection.code == Code::Error => {
                return Err(ScheduleError::Internal(rejection.reasons.join(", ")))
            }
            Err(rejection) => {
                diagnosis.unschedulable_plugins.insert(rejection.plugin);
                for node in &snapshot.nodes {
                    diagnosis
                        .node_status
                        .insert(node.name.clone(), rejection.clone());
                    explain.reject(&node.name, &rejection);
                }
                explain.evaluated_nodes = all;
                return Err(ScheduleError::Unschedulable(diagnosis));
            }
        };
        let filter_one = |node: &Arc<NodeInfo>| -> Result<(), Rejection> {
            match nominated(node) {
                Some(with_nominated) => self.run_filters(&state, &skip, pod, &with_nominated),
                None => self.run_filters(&state, &skip, pod, node),
            }
        };

        // A pod nominated by an earlier preemption tries its node first.
        if let Some(name) = pod.nominated_node() {
            if let Some(node) = snapshot.nodes.iter().find(|n| &*n.name == name) {
                if filter_one(node).is_ok() {
                    explain.evaluated_nodes = 1;
                    explain.feasible_nodes = 1;
                    explain.feasible(&node.name);
                    return Ok(node.name.clone());
                }
            }
        }

        let wanted = self.num_feasible_nodes_to_find(all);
        let start = self.next_start_node.load(Ordering::Relaxed) % all;
        let mut feasible: Vec<Arc<NodeInfo>> = Vec::new();
        let mut evaluated = 0;
        for i in 0..all {
            if feasible.len() >= wanted {
                break;
            }
            let node = &snapshot.nodes[(start + i) % all];
            evaluated += 1;
            match filter_one(node) {
                Ok(()) => feasible.push(node.clone()),
                Err(rejection) if rejection.code == Code::Error => {
                    return Err(ScheduleError::Internal(format!(
                        "running {} on node {}: {}",
                        rejection.plugin,
                        node.name,
                        rejection.reasons.join(", ")
                    )))
                }
                Err(rejection) => {
                    diagnosis.unschedulable_plugins.insert(rejection.plugin);
                    explain.reject(&node.name, &rejection);
                    diagnosis.node_status.insert(node.name.clone(), rejection);
                }
            }
        }
        self.next_start_node
            .store((start + evaluated) % all, Ordering::Relaxed);
        explain.evaluated_nodes = evaluated;
        explain.feasible_nodes = feasible.len();
        if feasible.is_empty() {
            return Err(ScheduleError::Unschedulable(diagnosis));
        }
        if feasible.len() == 1 {
            explain.feasible(&feasible[0].name);
            return Ok(feasible[0].name.clone());
        }
        let totals = self
            .prioritize(&mut state, pod, &feasible, snapshot, explain)
            .map_err(|s| ScheduleError::Internal(s.reasons.join(", ")))?;
        Ok(select_host(&feasible, &totals))
    }

    /// PreScore, Score, NormalizeScore and weights: the total score of each feasible node.
    fn prioritize(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        feasible: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
        explain: &mut Explanation,
    ) -> Result<Vec<i64>, Status> {
        let mut skip = HashSet::new();
        for plugin in &self.pre_score {
            if !plugin.pre_score(state, pod, feasible, snapshot)? {
                skip.insert(plugin.name());
            }
        }
        let mut totals = vec![0i64; feasible.len()];
        let mut columns = Vec::with_capacity(self.score.len());
        let mut raw_scores = Vec::with_capacity(self.score.len());
        let mut normalized_scores = Vec::with_capacity(self.score.len());
        for (plugin, weight) in &self.score {
            if skip.contains(plugin.name()) {
                continue;
            }
            let raw = feasible
                .iter()
                .map(|node| plugin.score(state, pod, node))
                .collect::<Result<Vec<i64>, Status>>()?;
            let mut normalized = raw.clone();
            plugin.normalize(state, pod, &mut normalized);
            for (total, score) in totals.iter_mut().zip(&normalized) {
                *total += score * weight;
            }
            columns.push(ScoreColumn {
                plugin: plugin.name(),
                weight: i32::try_from(*weight).unwrap_or(i32::MAX),
            });
            raw_scores.push(raw);
            normalized_scores.push(normalized);
        }
        let names: Vec<Arc<str>> = feasible.iter().map(|n| n.name.clone()).collect();
        explain.scored(&names, columns, &raw_scores, &normalized_scores, &totals);
        Ok(totals)
    }
}

/// The highest-scoring node, ties broken uniformly at random (reservoir sampling).
fn select_host(feasible: &[Arc<NodeInfo>], totals: &[i64]) -> Arc<str> {
    let mut rng = rand::rng();
    let mut best = 0;
    let mut ties = 0u32;
    for (i, total) in totals.iter().enumerate() {
        if *total > totals[best] {
            best = i;
            ties = 1;
        } else if *total == totals[best] {
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    feasible[best].name.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PluginRef, PluginSet, Plugins};

    #[test]
    fn defaults_have_upstream_weights_and_config_changes_them() {
        let cfg = ProfileConfig {
            scheduler_name: "default-scheduler".into(),
            ..Default::default()
        };
        let p = Profile::new(&cfg, None).unwrap();
        let (filters, scores) = p.describe();
        assert!(filters.contains(&"NodeResourcesFit"));
        assert!(filters.contains(&"TaintToleration"));
        assert!(scores.contains(&("TaintToleration", 3)));
        assert!(scores.contains(&("NodeAffinity", 2)));
        assert!(scores.contains(&("ImageLocality", 1)));
        assert!(p.preemption);

        let cfg = ProfileConfig {
            scheduler_name: "custom".into(),
            plugins: Plugins {
                score: PluginSet {
                    enabled: vec![PluginRef {
                        name: "NodeAffinity".into(),
                        weight: Some(7),
                    }],
                    disabled: vec![PluginRef {
                        name: "ImageLocality".into(),
                        weight: None,
                    }],
                },
                post_filter: PluginSet {
                    enabled: vec![],
                    disabled: vec![PluginRef {
                        name: "*".into(),
                        weight: None,
                    }],
                },
                ..Default::default()
            },
            ..Default::default()
        };
        let p = Profile::new(&cfg, Some(30)).unwrap();
        let (_, scores) = p.describe();
        assert!(scores.contains(&("NodeAffinity", 7)));
        assert!(!scores.iter().any(|(n, _)| *n == "ImageLocality"));
        assert!(!p.preemption);
        assert_eq!(p.num_feasible_nodes_to_find(50), 50);
        assert_eq!(p.num_feasible_nodes_to_find(1000), 300);
    }

    #[test]
    fn adaptive_percentage_as_upstream() {
        let p = Profile::new(&ProfileConfig::default(), None).unwrap();
        assert_eq!(p.num_feasible_nodes_to_find(5000), 500);
        assert_eq!(p.num_feasible_nodes_to_find(200), 100);
        assert_eq!(p.num_feasible_nodes_to_find(100_000), 5000);
    }

    #[test]
    fn fit_error_message_like_upstream() {
        let mut d = Diagnosis {
            num_all_nodes: 5,
            ..Default::default()
        };
        for (i, reason) in [
            "Insufficient cpu",
            "Insufficient cpu",
            "node(s) had untolerated taint {a: b}",
            "node(s) had untolerated taint {a: b}",
            "node(s) had untolerated taint {a: b}",
        ]
        .iter()
        .enumerate()
        {
            d.node_status.insert(
                Arc::from(format!("n{i}").as_str()),
                Rejection {
                    plugin: "x",
                    code: Code::Unschedulable,
                    reasons: vec![reason.to_string()],
                },
            );
        }
        assert_eq!(
            d.message(),
            "0/5 nodes are available: 2 Insufficient cpu, 3 node(s) had untolerated taint {a: b}."
        );
    }
}
