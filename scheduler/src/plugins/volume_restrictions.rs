//! VolumeRestrictions: inline disks that cannot be attached twice (GCE PD, AWS EBS, RBD, iSCSI)
//! must not already be in use, read-write, by a pod on the node.

use k8s_openapi::api::core::v1::Volume;

use crate::framework::{
    ClusterEvent, CycleState, ExtensionPoint, NodeInfo, Plugin, PodInfo, PreFilterResult, Snapshot,
    Status, NODE_AND_POD_DELETE_EVENTS,
};

pub const NAME: &str = "VolumeRestrictions";
const REASON: &str = "node(s) had no available disk";

pub struct VolumeRestrictions;

/// Whether the volume is an inline disk this plugin guards.
pub fn has_disk(v: &Volume) -> bool {
    v.gce_persistent_disk.is_some()
        || v.aws_elastic_block_store.is_some()
        || v.rbd.is_some()
        || v.iscsi.is_some()
}

/// Whether two volumes name the same disk in a way that cannot be shared.
fn conflicts(a: &Volume, b: &Volume) -> bool {
    if let (Some(x), Some(y)) = (&a.gce_persistent_disk, &b.gce_persistent_disk) {
        return x.pd_name == y.pd_name && !(x.read_only == Some(true) && y.read_only == Some(true));
    }
    if let (Some(x), Some(y)) = (&a.aws_elastic_block_store, &b.aws_elastic_block_store) {
        return x.volume_id == y.volume_id;
    }
    if let (Some(x), Some(y)) = (&a.iscsi, &b.iscsi) {
        return x.iqn == y.iqn && !(x.read_only == Some(true) && y.read_only == Some(true));
    }
    if let (Some(x), Some(y)) = (&a.rbd, &b.rbd) {
        let shared_monitor = x.monitors.iter().any(|m| y.monitors.contains(m));
        return shared_monitor
            && x.pool == y.pool
            && x.image == y.image
            && !(x.read_only == Some(true) && y.read_only == Some(true));
    }
    false
}

impl Plugin for VolumeRestrictions {
    fn name(&self) -> &'static str {
        NAME
    }

    fn extension_points(&self) -> &'static [ExtensionPoint] {
        &[ExtensionPoint::PreFilter, ExtensionPoint::Filter]
    }

    fn events(&self) -> &'static [ClusterEvent] {
        NODE_AND_POD_DELETE_EVENTS
    }

    fn pre_filter(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot,
    ) -> Result<PreFilterResult, Status> {
        Ok(if !pod.disks.is_empty() {
            PreFilterResult::Continue
        } else {
            PreFilterResult::Skip
        })
    }

    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        for v in &pod.disks {
            if node
                .pods
                .iter()
                .any(|existing| existing.disks.iter().any(|e| conflicts(v, e)))
            {
                return Err(Status::unschedulable(REASON));
            }
        }
        Ok(())
    }
}
