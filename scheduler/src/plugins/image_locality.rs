//! ImageLocality: prefers nodes that already hold the pod's container images, weighted by image
//! size and by how widely the image is spread (so one node holding it does not attract every
//! pod).

use crate::framework::{
    CycleState, ExtensionPoint, NodeInfo, Plugin, PodInfo, Snapshot, Status, MAX_NODE_SCORE,
};

pub const NAME: &str = "ImageLocality";

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

struct Spread {
    total_nodes: usize,
    /// For each pod image: how many nodes hold it.
    counts: Vec<usize>,
}

pub struct ImageLocality;

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        NAME
    }

    fn extension_points(&self) -> &'static [ExtensionPoint] {
        &[ExtensionPoint::PreScore, ExtensionPoint::Score]
    }

    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &[std::sync::Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Result<bool, Status> {
        let counts = pod
            .images
            .iter()
            .map(|i| snapshot.image_nodes.get(i).copied().unwrap_or(0))
            .collect();
        state.write(
            NAME,
            Spread {
                total_nodes: snapshot.nodes.len(),
                counts,
            },
        );
        Ok(!pod.images.is_empty())
    }

    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(spread) = state.read::<Spread>(NAME) else {
            return Err(Status::error("ImageLocality: no PreScore state"));
        };
        let mut sum = 0i64;
        for (image, count) in pod.images.iter().zip(&spread.counts) {
            if let Some(size) = node.images.get(image) {
                let factor = *count as f64 / spread.total_nodes.max(1) as f64;
                sum += (*size as f64 * factor) as i64;
            }
        }
        let max = MAX_CONTAINER_THRESHOLD * pod.images.len().max(1) as i64;
        let sum = sum.clamp(MIN_THRESHOLD, max);
        Ok(MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD))
    }
}
