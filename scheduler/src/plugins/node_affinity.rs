//! NodeAffinity: `nodeSelector` and required node affinity terms filter nodes; preferred terms
//! add their weights to the score.

use crate::{
    framework::{default_normalize, CycleState, ExtensionPoint, NodeInfo, Plugin, PodInfo, Status},
    selectors::node_selector_term_matches,
};

pub const NAME: &str = "NodeAffinity";
const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

pub struct NodeAffinity;

fn node_affinity(pod: &PodInfo) -> Option<&k8s_openapi::api::core::v1::NodeAffinity> {
    pod.spec()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }

    fn extension_points(&self) -> &'static [ExtensionPoint] {
        &[ExtensionPoint::Filter, ExtensionPoint::Score]
    }

    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let selector = pod.spec().and_then(|s| s.node_selector.as_ref());
        if let Some(selector) = selector {
            if selector.iter().any(|(k, v)| node.labels.get(k) != Some(v)) {
                return Err(Status::unresolvable(REASON));
            }
        }
        let required = node_affinity(pod).and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
        if let (Some(required), Some(n)) = (required, node.node.as_deref()) {
            if !required
                .node_selector_terms
                .iter()
                .any(|t| node_selector_term_matches(t, n))
            {
                return Err(Status::unresolvable(REASON));
            }
        }
        Ok(())
    }

    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(n) = node.node.as_deref() else {
            return Ok(0);
        };
        Ok(node_affinity(pod)
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .into_iter()
            .flatten()
            .filter(|p| p.weight != 0 && node_selector_term_matches(&p.preference, n))
            .map(|p| i64::from(p.weight))
            .sum())
    }

    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        default_normalize(scores, false);
    }
}
