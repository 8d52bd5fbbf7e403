//! NodePorts: a pod's `hostPort`s must be free on the node.

use crate::framework::{
    ClusterEvent, CycleState, ExtensionPoint, NodeInfo, Plugin, PodInfo, Status,
};

pub const NAME: &str = "NodePorts";
const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub struct NodePorts;

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn extension_points(&self) -> &'static [ExtensionPoint] {
        &[ExtensionPoint::PreFilter, ExtensionPoint::Filter]
    }

    fn events(&self) -> &'static [ClusterEvent] {
        crate::framework::NODE_AND_POD_DELETE_EVENTS
    }

    fn pre_filter(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &crate::framework::Snapshot,
    ) -> Result<crate::framework::PreFilterResult, Status> {
        Ok(if pod.host_ports.is_empty() {
            crate::framework::PreFilterResult::Skip
        } else {
            crate::framework::PreFilterResult::Continue
        })
    }

    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let conflict = pod
            .host_ports
            .iter()
            .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
        if conflict {
            Err(Status::unschedulable(REASON))
        } else {
            Ok(())
        }
    }
}
