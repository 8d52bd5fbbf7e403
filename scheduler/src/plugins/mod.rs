//! The in-tree plugins and upstream's default plugin set with its score weights.

pub mod balanced_allocation;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;
pub mod volume_restrictions;

use std::sync::Arc;

use crate::{
    config::{ConfigError, Profile},
    framework::Plugin,
};

/// The PostFilter plugin that preempts lower-priority pods.
pub const DEFAULT_PREEMPTION: &str = "DefaultPreemption";

/// Upstream's default `multiPoint` plugins in order, with their score weights.
pub const DEFAULTS: &[(&str, i64)] = &[
    ("PrioritySort", 0),
    (node_unschedulable::NAME, 0),
    (node_name::NAME, 0),
    (taint_toleration::NAME, 3),
    (node_affinity::NAME, 2),
    (node_ports::NAME, 0),
    (node_resources_fit::NAME, 1),
    (volume_restrictions::NAME, 0),
    (pod_topology_spread::NAME, 2),
    (inter_pod_affinity::NAME, 2),
    (DEFAULT_PREEMPTION, 0),
    (balanced_allocation::NAME, 1),
    (image_locality::NAME, 1),
    ("DefaultBinder", 0),
];

/// Plugins upstream ships that are built into this scheduler's queue and binder, or that act on
/// volume objects it does not handle: accepted in configurations, nothing to instantiate.
pub const BUILT_IN: &[&str] = &[
    "PrioritySort",
    "DefaultBinder",
    "SchedulingGates",
    "VolumeBinding",
    "VolumeZone",
    "NodeVolumeLimits",
    "EBSLimits",
    "GCEPDLimits",
    "AzureDiskLimits",
    "CinderLimits",
    DEFAULT_PREEMPTION,
];

/// Instantiates the named plugin with the profile's `pluginConfig`; `None` for built-ins.
pub fn build(name: &str, profile: &Profile) -> Result<Option<Arc<dyn Plugin>>, ConfigError> {
    let plugin: Arc<dyn Plugin> = match name {
        node_unschedulable::NAME => Arc::new(node_unschedulable::NodeUnschedulable),
        node_name::NAME => Arc::new(node_name::NodeName),
        taint_toleration::NAME => Arc::new(taint_toleration::TaintToleration),
        node_affinity::NAME => Arc::new(node_affinity::NodeAffinity),
        node_ports::NAME => Arc::new(node_ports::NodePorts),
        node_resources_fit::NAME => Arc::new(
            node_resources_fit::NodeResourcesFit::new(profile.args(name)?)
                .map_err(|e| ConfigError::Invalid(format!("{name}: {e}")))?,
        ),
        volume_restrictions::NAME => Arc::new(volume_restrictions::VolumeRestrictions),
        pod_topology_spread::NAME => Arc::new(pod_topology_spread::PodTopologySpread::new(
            profile.args(name)?,
        )?),
        inter_pod_affinity::NAME => Arc::new(inter_pod_affinity::InterPodAffinity),
        balanced_allocation::NAME => Arc::new(balanced_allocation::BalancedAllocation::new(
            profile.args(name)?,
        )),
        image_locality::NAME => Arc::new(image_locality::ImageLocality),
        other if BUILT_IN.contains(&other) => return Ok(None),
        other => {
            return Err(ConfigError::Invalid(format!(
                "profile {:?}: plugin {other:?} does not exist",
                profile.scheduler_name
            )))
        }
    };
    Ok(Some(plugin))
}
