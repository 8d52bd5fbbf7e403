//! NodeResourcesFit: the node must have room for the pod's requests (cpu, memory,
//! ephemeral-storage, pods and extended resources), and nodes are scored by a strategy:
//! LeastAllocated (default), MostAllocated or RequestedToCapacityRatio.

use std::collections::HashSet;

use crate::{
    config::{NodeResourcesFitArgs, ResourceSpec, UtilizationShapePoint},
    framework::{
        ClusterEvent, CycleState, ExtensionPoint, NodeInfo, Plugin, PodInfo, Status,
        MAX_NODE_SCORE, NODE_AND_POD_DELETE_EVENTS,
    },
    resources::{CPU, EPHEMERAL_STORAGE, MEMORY},
};

pub const NAME: &str = "NodeResourcesFit";

/// How requested/allocatable maps to a score.
#[derive(Debug, Clone)]
enum Strategy {
    LeastAllocated,
    MostAllocated,
    /// Utilisation (0..100) to score (0..100) points, linearly interpolated.
    RequestedToCapacityRatio(Vec<(i64, i64)>),
}

pub struct NodeResourcesFit {
    ignored: HashSet<String>,
    strategy: Strategy,
    resources: Vec<ResourceSpec>,
}

impl NodeResourcesFit {
    pub fn new(args: NodeResourcesFitArgs) -> Result<NodeResourcesFit, String> {
        let s = args.scoring_strategy;
        let strategy = match s.kind.as_str() {
            "" | "LeastAllocated" => Strategy::LeastAllocated,
            "MostAllocated" => Strategy::MostAllocated,
            "RequestedToCapacityRatio" => {
                let shape = &s.requested_to_capacity_ratio.shape;
                if shape.is_empty() {
                    return Err(
                        "scoringStrategy.requestedToCapacityRatio.shape: Required value".into(),
                    );
                }
                Strategy::RequestedToCapacityRatio(scaled_shape(shape))
            }
            other => {
                return Err(format!(
                    "scoringStrategy.type: Unsupported value: {other:?}"
                ))
            }
        };
        let resources = if s.resources.is_empty() {
            crate::config::default_resources()
        } else {
            s.resources
        };
        Ok(NodeResourcesFit {
            ignored: args.ignored_resources.into_iter().collect(),
            strategy,
            resources,
        })
    }
}

/// Shape scores are 0..10 in the configuration and 0..100 when scoring.
fn scaled_shape(shape: &[UtilizationShapePoint]) -> Vec<(i64, i64)> {
    shape
        .iter()
        .map(|p| (p.utilization, p.score * (MAX_NODE_SCORE / 10)))
        .collect()
}

fn interpolate(shape: &[(i64, i64)], utilization: i64) -> i64 {
    let Some(first) = shape.first() else { return 0 };
    if utilization <= first.0 {
        return first.1;
    }
    for w in shape.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if utilization <= x1 {
            if x1 == x0 {
                return y1;
            }
            return y0 + (y1 - y0) * (utilization - x0) / (x1 - x0);
        }
    }
    shape.last().map_or(0, |p| p.1)
}

/// The insufficient-resource reasons for `pod` on `node`, as upstream's `fitsRequest`.
pub fn insufficient(pod: &PodInfo, node: &NodeInfo, ignored: &HashSet<String>) -> Vec<String> {
    let mut reasons = Vec::new();
    if node.pods.len() as i64 + 1 > node.allocatable.pods {
        reasons.push("Too many pods".to_string());
    }
    let req = &pod.requests;
    for name in [CPU, MEMORY, EPHEMERAL_STORAGE] {
        let want = req.get(name);
        if want > 0 && want > node.allocatable.get(name) - node.requested.get(name) {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    for (name, want) in &req.scalar {
        if *want <= 0 || ignored.contains(name) {
            continue;
        }
        if *want > node.allocatable.get(name) - node.requested.get(name) {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    reasons
}

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn extension_points(&self) -> &'static [ExtensionPoint] {
        &[ExtensionPoint::Filter, ExtensionPoint::Score]
    }

    fn events(&self) -> &'static [ClusterEvent] {
        NODE_AND_POD_DELETE_EVENTS
    }

    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let reasons = insufficient(pod, node, &self.ignored);
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(Status {
                code: crate::framework::Code::Unschedulable,
                reasons,
            })
        }
    }

    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let mut total = 0;
        let mut weights = 0;
        for r in &self.resources {
            let allocatable = node.allocatable.get(&r.name);
            if allocatable == 0 {
                continue;
            }
            let requested = if r.name == CPU || r.name == MEMORY {
                node.non_zero_requested.get(&r.name) + pod.non_zero_requests.get(&r.name)
            } else {
                node.requested.get(&r.name) + pod.requests.get(&r.name)
            };
            let score = match &self.strategy {
                Strategy::LeastAllocated => {
                    if requested > allocatable {
                        0
                    } else {
                        (allocatable - requested) * MAX_NODE_SCORE / allocatable
                    }
                }
                Strategy::MostAllocated => {
                    requested.min(allocatable) * MAX_NODE_SCORE / allocatable
                }
                Strategy::RequestedToCapacityRatio(shape) => {
                    interpolate(shape, requested.min(allocatable) * 100 / allocatable)
                }
            };
            let weight = r.weight.max(1);
            total += score * weight;
            weights += weight;
        }
        Ok(if weights == 0 { 0 } else { total / weights })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_interpolates() {
        let shape = vec![(0, 0), (100, 100)];
        assert_eq!(interpolate(&shape, 30), 30);
        let shape = vec![(0, 100), (50, 0)];
        assert_eq!(interpolate(&shape, 25), 50);
        assert_eq!(interpolate(&shape, 80), 0);
    }
}
