//! The scheduling framework: plugins implement extension points (PreFilter, Filter, PreScore,
//! Score with NormalizeScore) and declare the cluster events that could make a pod they
//! rejected schedulable, as upstream's framework does.

pub mod profile;
pub mod types;

use std::{any::Any, collections::HashMap, sync::Arc};

pub use types::{NodeInfo, PodInfo, Snapshot};

/// Highest score a Score plugin gives after normalisation.
pub const MAX_NODE_SCORE: i64 = 100;

/// How a plugin rejected a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Code {
    /// Removing pods from the node (preemption) might help.
    Unschedulable,
    /// Preemption cannot help on this node.
    UnschedulableAndUnresolvable,
    /// Something went wrong; retried with backoff.
    Error,
}

/// A plugin's verdict when it does not simply succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
}

impl Status {
    pub fn unschedulable(reason: impl Into<String>) -> Status {
        Status {
            code: Code::Unschedulable,
            reasons: vec![reason.into()],
        }
    }

    pub fn unresolvable(reason: impl Into<String>) -> Status {
        Status {
            code: Code::UnschedulableAndUnresolvable,
            reasons: vec![reason.into()],
        }
    }

    pub fn error(reason: impl Into<String>) -> Status {
        Status {
            code: Code::Error,
            reasons: vec![reason.into()],
        }
    }
}

/// What PreFilter decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreFilterResult {
    /// Run this plugin's Filter on every node.
    Continue,
    /// The plugin has nothing to check for this pod: skip its Filter.
    Skip,
}

/// Extension points, to expand `multiPoint` into the ones each plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtensionPoint {
    PreFilter,
    Filter,
    PreScore,
    Score,
}

/// Cluster changes that can make a rejected pod schedulable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClusterEvent {
    NodeAdd,
    NodeUpdate,
    AssignedPodAdd,
    AssignedPodUpdate,
    AssignedPodDelete,
}

impl ClusterEvent {
    pub fn label(self) -> &'static str {
        match self {
            ClusterEvent::NodeAdd => "NodeAdd",
            ClusterEvent::NodeUpdate => "NodeUpdate",
            ClusterEvent::AssignedPodAdd => "AssignedPodAdd",
            ClusterEvent::AssignedPodUpdate => "AssignedPodUpdate",
            ClusterEvent::AssignedPodDelete => "AssignedPodDelete",
        }
    }
}

/// Node events every plugin that looks at nodes reacts to.
pub const NODE_EVENTS: &[ClusterEvent] = &[ClusterEvent::NodeAdd, ClusterEvent::NodeUpdate];
/// Node events plus assigned pods going away (freeing resources or ports).
pub const NODE_AND_POD_DELETE_EVENTS: &[ClusterEvent] = &[
    ClusterEvent::NodeAdd,
    ClusterEvent::NodeUpdate,
    ClusterEvent::AssignedPodDelete,
];
/// Everything: plugins whose verdict depends on where other pods run.
pub const ALL_EVENTS: &[ClusterEvent] = &[
    ClusterEvent::NodeAdd,
    ClusterEvent::NodeUpdate,
    ClusterEvent::AssignedPodAdd,
    ClusterEvent::AssignedPodUpdate,
    ClusterEvent::AssignedPodDelete,
];

/// Per-cycle data plugins compute in PreFilter/PreScore and read in Filter/Score.
#[derive(Default)]
pub struct CycleState {
    data: HashMap<&'static str, Box<dyn Any + Send + Sync>>,
}

impl CycleState {
    pub fn write<T: Any + Send + Sync>(&mut self, key: &'static str, value: T) {
        self.data.insert(key, Box::new(value));
    }

    pub fn read<T: Any + Send + Sync>(&self, key: &'static str) -> Option<&T> {
        self.data.get(key).and_then(|v| v.downcast_ref())
    }
}

/// A scheduling plugin. Only the extension points listed by `extension_points` are called.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;

    fn extension_points(&self) -> &'static [ExtensionPoint];

    /// Events after which a pod this plugin rejected is worth retrying.
    fn events(&self) -> &'static [ClusterEvent] {
        NODE_EVENTS
    }

    fn pre_filter(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _snapshot: &Snapshot,
    ) -> Result<PreFilterResult, Status> {
        Ok(PreFilterResult::Continue)
    }

    fn filter(&self, _state: &CycleState, _pod: &PodInfo, _node: &NodeInfo) -> Result<(), Status> {
        Ok(())
    }

    /// Prepares scoring over the feasible nodes; `Ok(false)` skips this plugin's Score.
    fn pre_score(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _feasible: &[Arc<NodeInfo>],
        _snapshot: &Snapshot,
    ) -> Result<bool, Status> {
        Ok(true)
    }

    fn score(&self, _state: &CycleState, _pod: &PodInfo, _node: &NodeInfo) -> Result<i64, Status> {
        Ok(0)
    }

    /// Maps raw scores onto 0..=MAX_NODE_SCORE.
    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, _scores: &mut [i64]) {}
}

/// Upstream's `DefaultNormalizeScore`: scales so the best node gets MAX_NODE_SCORE, optionally
/// reversed so the lowest raw score wins.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let mut v = MAX_NODE_SCORE * *s / max;
        if reverse {
            v = MAX_NODE_SCORE - v;
        }
        *s = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_upstream() {
        let mut s = [0, 5, 10];
        default_normalize(&mut s, false);
        assert_eq!(s, [0, 50, 100]);
        let mut s = [0, 5, 10];
        default_normalize(&mut s, true);
        assert_eq!(s, [100, 50, 0]);
        let mut s = [0, 0];
        default_normalize(&mut s, true);
        assert_eq!(s, [100, 100]);
    }
}
