//! NodeName: a pod that already names a node fits only that node.

use crate::framework::{CycleState, ExtensionPoint, NodeInfo, Plugin, PodInfo, Status};

pub const NAME: &str = "NodeName";
const REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }

    fn extension_points(&self) -> &'static [ExtensionPoint] {
        &[ExtensionPoint::Filter]
    }

    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        match pod.node_name() {
            Some(name) if name != &*node.name => Err(Status::unresolvable(REASON)),
            _ => Ok(()),
        }
    }
}
