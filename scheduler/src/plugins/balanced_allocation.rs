//! NodeResourcesBalancedAllocation: prefers nodes where the pod leaves cpu and memory (or the
//! configured resources) equally utilised: score = (1 - standard deviation of the fractions).

use crate::{
    config::{BalancedAllocationArgs, ResourceSpec},
    framework::{
        ClusterEvent, CycleState, ExtensionPoint, NodeInfo, Plugin, PodInfo, Snapshot, Status,
        MAX_NODE_SCORE, NODE_AND_POD_DELETE_EVENTS,
    },
};

pub const NAME: &str = "NodeResourcesBalancedAllocation";

pub struct BalancedAllocation {
    resources: Vec<ResourceSpec>,
}

impl BalancedAllocation {
    pub fn new(args: BalancedAllocationArgs) -> BalancedAllocation {
        BalancedAllocation {
            resources: args.resources,
        }
    }
}

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }

    fn extension_points(&self) -> &'static [ExtensionPoint] {
        &[ExtensionPoint::PreScore, ExtensionPoint::Score]
    }

    fn events(&self) -> &'static [ClusterEvent] {
        NODE_AND_POD_DELETE_EVENTS
    }

    /// Best-effort pods (no requests) are not scored, as upstream.
    fn pre_score(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &[std::sync::Arc<NodeInfo>],
        _: &Snapshot,
    ) -> Result<bool, Status> {
        Ok(self.resources.iter().any(|r| pod.requests.get(&r.name) > 0))
    }

    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let fractions: Vec<f64> = self
            .resources
            .iter()
            .filter_map(|r| {
                let allocatable = node.allocatable.get(&r.name);
                if allocatable == 0 {
                    return None;
                }
                let requested = node.requested.get(&r.name) + pod.requests.get(&r.name);
                Some((requested as f64 / allocatable as f64).min(1.0))
            })
            .collect();
        let std = match fractions.len() {
            0 | 1 => 0.0,
            2 => (fractions[0] - fractions[1]).abs() / 2.0,
            n => {
                let mean = fractions.iter().sum::<f64>() / n as f64;
                (fractions.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / n as f64).sqrt()
            }
        };
        Ok(((1.0 - std) * MAX_NODE_SCORE as f64) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::json;
    use std::sync::Arc;

    fn pod(cpu: &str, memory: &str) -> Arc<PodInfo> {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "d"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}
        }))
        .unwrap();
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    #[test]
    fn balanced_node_scores_higher() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n"},
            "status": {"allocatable": {"cpu": "4", "memory": "4Gi", "pods": "10"}}
        }))
        .unwrap();
        let mut skewed = NodeInfo::new("skewed");
        skewed.set_node(Arc::new(node.clone()));
        skewed.add_pod(pod("3", "0"));
        let mut even = NodeInfo::new("even");
        even.set_node(Arc::new(node));
        even.add_pod(pod("1", "1Gi"));
        let plugin = BalancedAllocation::new(BalancedAllocationArgs::default());
        let incoming = pod("1", "1Gi");
        let state = CycleState::default();
        let s = plugin.score(&state, &incoming, &skewed).unwrap();
        let e = plugin.score(&state, &incoming, &even).unwrap();
        // skewed: cpu 100%, memory 25% -> std 0.375; even: 50%/50% -> 0.
        assert_eq!((s, e), (62, 100));
    }
}
