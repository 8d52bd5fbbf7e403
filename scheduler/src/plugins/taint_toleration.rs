//! TaintToleration: pods land only on nodes whose NoSchedule/NoExecute taints they tolerate,
//! and prefer nodes with fewer untolerated PreferNoSchedule taints.

use k8s_openapi::api::core::v1::Taint;

use crate::framework::{
    default_normalize, types::tolerates, CycleState, ExtensionPoint, NodeInfo, Plugin, PodInfo,
    Status,
};

pub const NAME: &str = "TaintToleration";

pub struct TaintToleration;

/// The first NoSchedule/NoExecute taint of the node the pod does not tolerate.
pub fn untolerated_taint<'a>(pod: &PodInfo, node: &'a NodeInfo) -> Option<&'a Taint> {
    node.taints().iter().find(|taint| {
        (taint.effect == "NoSchedule" || taint.effect == "NoExecute")
            && !pod.tolerations.iter().any(|t| tolerates(t, taint))
    })
}

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }

    fn extension_points(&self) -> &'static [ExtensionPoint] {
        &[ExtensionPoint::Filter, ExtensionPoint::Score]
    }

    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        match untolerated_taint(pod, node) {
            None => Ok(()),
            Some(taint) => Err(Status::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.as_deref().unwrap_or("")
            ))),
        }
    }

    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let prefer: Vec<_> = pod
            .tolerations
            .iter()
            .filter(|t| {
                matches!(
                    t.effect.as_deref(),
                    None | Some("") | Some("PreferNoSchedule")
                )
            })
            .collect();
        let count = node
            .taints()
            .iter()
            .filter(|taint| taint.effect == "PreferNoSchedule")
            .filter(|taint| !prefer.iter().any(|t| tolerates(t, taint)))
            .count();
        Ok(count as i64)
    }

    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        default_normalize(scores, true);
    }
}
