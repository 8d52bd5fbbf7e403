//! Node lifecycle controller: notices nodes that stopped heartbeating (neither their Lease in
//! `kube-node-lease` nor their Ready condition moved within the grace period), marks their
//! conditions Unknown and their pods NotReady, and keeps the `not-ready` / `unreachable`
//! NoSchedule and NoExecute taints in line with the Ready condition. New NoExecute taints lead
//! to evictions, so they are rate-limited per zone by the zone's disruption state (`zones`).
//! As upstream's TaintNodesByCondition, the pressure conditions and `spec.unschedulable` get
//! NoSchedule taints too, so that the scheduler stops placing pods a kubelet would turn away.

mod zones;

use std::{collections::HashMap, sync::Arc, time::Instant};

use component_base::informer::Informer;
use k8s_openapi::{
    api::{
        coordination::v1::Lease,
        core::v1::{Node, NodeCondition, Pod, Taint},
    },
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::{
    api::{Api, PostParams},
    ResourceExt,
};

use super::{Context, ControllerError, Running};
use crate::{events::Recorder, pods};
use zones::{Settings, Transition, Zones};

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// Node conditions whose `True` status calls for a NoSchedule taint, and that taint's key.
const CONDITION_TAINTS: &[(&str, &str)] = &[
    ("MemoryPressure", "node.kubernetes.io/memory-pressure"),
    ("DiskPressure", "node.kubernetes.io/disk-pressure"),
    ("PIDPressure", "node.kubernetes.io/pid-pressure"),
    (
        "NetworkUnavailable",
        "node.kubernetes.io/network-unavailable",
    ),
];
const LEASE_NAMESPACE: &str = "kube-node-lease";
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
const REGION_LABEL: &str = "topology.kubernetes.io/region";
/// Conditions the kubelet owns; all go Unknown when it stops reporting.
const KUBELET_CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// What the controller last saw of a node's heartbeats, on its own clock.
struct Health {
    probed_at: Instant,
    lease_renew: Option<String>,
    ready_heartbeat: Option<String>,
}

struct Controller {
    ctx: Arc<Context>,
    nodes: Arc<Informer<Node>>,
    leases: Arc<Informer<Lease>>,
    pods: Arc<Informer<Pod>>,
    recorder: Recorder,
}

pub fn init(ctx: &Arc<Context>) -> Result<Running, ControllerError> {
    let c = Controller {
        ctx: ctx.clone(),
        nodes: ctx.informers.informer::<Node>(),
        leases: ctx.informers.informer::<Lease>(),
        pods: ctx.informers.informer::<Pod>(),
        recorder: ctx.recorder("node-controller"),
    };
    let o = &ctx.options;
    let zones = Zones::new(
        Settings {
            eviction_rate: o.node_eviction_rate,
            secondary_eviction_rate: o.secondary_node_eviction_rate,
            large_cluster_threshold: o.large_cluster_size_threshold,
            unhealthy_zone_threshold: o.unhealthy_zone_threshold,
        },
        &ctx.registry,
    )?;
    Ok(Box::pin(async move {
        c.nodes.wait_synced().await;
        c.leases.wait_synced().await;
        c.pods.wait_synced().await;
        let mut health: HashMap<String, Health> = HashMap::new();
        let mut zones = zones;
        let mut tick = tokio::time::interval(c.ctx.options.node_monitor_period);
        loop {
            tick.tick().await;
            c.pass(&mut health, &mut zones).await;
        }
    }))
}

fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The zone key: `region:zone`, empty for a node with neither label (as upstream).
fn zone_of(node: &Node) -> String {
    let labels = node.labels();
    let (region, zone) = (labels.get(REGION_LABEL), labels.get(ZONE_LABEL));
    if region.is_none() && zone.is_none() {
        return String::new();
    }
    format!(
        "{}:{}",
        region.map_or("", String::as_str),
        zone.map_or("", String::as_str)
    )
}

/// The taints the Ready condition calls for, among the four this controller manages; a node
/// that has not reported yet gets none until its startup grace period marks it Unknown.
fn wanted_taints(ready: Option<&str>) -> Vec<(&'static str, &'static str)> {
    match ready {
        Some("False") => vec![(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")],
        Some("Unknown") => vec![(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")],
        _ => Vec::new(),
    }
}

/// The NoSchedule taints the node's pressure conditions and `spec.unschedulable` call for.
fn condition_taints(node: &Node) -> Vec<(&'static str, &'static str)> {
    let conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let mut wanted: Vec<(&'static str, &'static str)> = CONDITION_TAINTS
        .iter()
        .filter(|(type_, _)| {
            conditions
                .iter()
                .any(|c| c.type_ == *type_ && c.status == "True")
        })
        .map(|(_, key)| (*key, "NoSchedule"))
        .collect();
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        wanted.push((UNSCHEDULABLE, "NoSchedule"));
    }
    wanted
}

fn managed(t: &Taint) -> bool {
    let by_ready = (t.key == NOT_READY || t.key == UNREACHABLE)
        && (t.effect == "NoSchedule" || t.effect == "NoExecute");
    let by_condition = t.effect == "NoSchedule"
        && (t.key == UNSCHEDULABLE || CONDITION_TAINTS.iter().any(|(_, key)| t.key == *key));
    by_ready || by_condition
}

impl Controller {
    /// One monitoring pass: every node's health, then the zones' states, then the taints.
    async fn pass(&self, health: &mut HashMap<String, Health>, zones: &mut Zones) {
        let listed = self.nodes.list();
        health.retain(|name, _| listed.iter().any(|n| n.name_any() == *name));
        let mut nodes = Vec::with_capacity(listed.len());
        let mut ready_by_zone: HashMap<String, Vec<bool>> = HashMap::new();
        for node in listed {
            let node = match self.monitor(&node, health).await {
                Ok(node) => node,
                Err(err) => {
                    tracing::warn!(node = %node.name_any(), %err, "monitoring node health");
                    (*node).clone()
                }
            };
            let ready = ready_condition(&node).is_some_and(|c| c.status == "True");
            ready_by_zone.entry(zone_of(&node)).or_default().push(ready);
            nodes.push(node);
        }
        match zones.observe(&ready_by_zone) {
            Transition::EnteredFullDisruption => tracing::info!(
                "every node is not Ready; stopping evictions and lifting NoExecute taints"
            ),
            Transition::LeftFullDisruption => {
                tracing::info!("some nodes are Ready again; resuming evictions");
                for h in health.values_mut() {
                    h.probed_at = Instant::now();
                }
            }
            Transition::None => {}
        }
        for node in nodes {
            if let Err(err) = self.reconcile_taints(&node, zones).await {
                tracing::warn!(node = %node.name_any(), %err, "updating node taints");
            }
        }
    }

    /// Marks a node that stopped heartbeating Unknown; returns the node as it now is.
    #[tracing::instrument(skip_all, fields(node = %node.name_any()))]
    async fn monitor(
        &self,
        node: &Node,
        health: &mut HashMap<String, Health>,
    ) -> Result<Node, ControllerError> {
        let name = node.name_any();
        let lease_renew = self
            .leases
            .get(&format!("{LEASE_NAMESPACE}/{name}"))
            .and_then(|l| {
                l.spec
                    .as_ref()?
                    .renew_time
                    .as_ref()
                    .map(|t| t.0.to_string())
            });
        let ready = ready_condition(node);
        let ready_heartbeat =
            ready.and_then(|c| c.last_heartbeat_time.as_ref().map(|t| t.0.to_string()));
        let h = health.entry(name.clone()).or_insert_with(|| Health {
            probed_at: Instant::now(),
            lease_renew: lease_renew.clone(),
            ready_heartbeat: ready_heartbeat.clone(),
        });
        if h.lease_renew != lease_renew || h.ready_heartbeat != ready_heartbeat {
            h.probed_at = Instant::now();
            h.lease_renew = lease_renew;
            h.ready_heartbeat = ready_heartbeat;
        }
        let grace = if ready.is_some() {
            self.ctx.options.node_monitor_grace_period
        } else {
            self.ctx.options.node_startup_grace_period
        };
        let mut node = node.clone();
        if h.probed_at.elapsed() > grace && ready.is_none_or(|c| c.status != "Unknown") {
            node = self.mark_unknown(&node).await?;
            self.recorder.normal(
                &node,
                "NodeNotReady",
                format!("Node {name} status is now: NodeNotReady"),
            );
            self.mark_pods_not_ready(&name).await;
        }
        Ok(node)
    }

    async fn mark_unknown(&self, node: &Node) -> Result<Node, ControllerError> {
        let now = Time(jiff::Timestamp::now());
        let mut updated = node.clone();
        let status = updated.status.get_or_insert_with(Default::default);
        let conds = status.conditions.get_or_insert_with(Vec::new);
        for type_ in KUBELET_CONDITIONS {
            match conds.iter_mut().find(|c| c.type_ == *type_) {
                Some(c) => {
                    c.status = "Unknown".into();
                    c.reason = Some("NodeStatusUnknown".into());
                    c.message = Some("Kubelet stopped posting node status.".into());
                    c.last_transition_time = Some(now.clone());
                }
                None => conds.push(NodeCondition {
                    type_: type_.to_string(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: Some(now.clone()),
                    last_transition_time: Some(now.clone()),
                }),
            }
        }
        let api: Api<Node> = Api::all(self.ctx.client.clone());
        tracing::info!("node stopped heartbeating; conditions set to Unknown");
        Ok(api
            .replace_status(&node.name_any(), &PostParams::default(), &updated)
            .await?)
    }

    /// Pods on an unresponsive node are no longer known to be ready.
    async fn mark_pods_not_ready(&self, node: &str) {
        for pod in self.pods.list() {
            if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node)
                || !pods::is_ready(&pod)
            {
                continue;
            }
            let mut updated = (*pod).clone();
            for c in updated
                .status
                .iter_mut()
                .flat_map(|s| s.conditions.iter_mut().flatten())
            {
                if c.type_ == "Ready" {
                    c.status = "False".into();
                    c.last_transition_time = Some(Time(jiff::Timestamp::now()));
                }
            }
            let api: Api<Pod> = Api::namespaced(
                self.ctx.client.clone(),
                &pod.namespace().unwrap_or_default(),
            );
            match api
                .replace_status(&pod.name_any(), &PostParams::default(), &updated)
                .await
            {
                Ok(_) => {
                    self.recorder
                        .warning(pod.as_ref(), "NodeNotReady", "Node is not ready".into())
                }
                Err(err) => tracing::warn!(pod = %pod.name_any(), %err, "marking pod not ready"),
            }
        }
    }

    /// Brings the managed taints in line with the node's conditions. NoExecute taints are added
    /// as the zone's rate allows, and lifted while every zone is fully disrupted.
    #[tracing::instrument(skip_all, fields(node = %node.name_any()))]
    async fn reconcile_taints(
        &self,
        node: &Node,
        zones: &mut Zones,
    ) -> Result<(), ControllerError> {
        let zone = zone_of(node);
        let evictions_stopped = zones.all_fully_disrupted();
        let ready = ready_condition(node).map(|c| c.status.as_str());
        let current: Vec<Taint> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let mut taints: Vec<Taint> = current.iter().filter(|t| !managed(t)).cloned().collect();
        let wanted = wanted_taints(ready)
            .into_iter()
            .chain(condition_taints(node));
        for (key, effect) in wanted {
            if effect == "NoExecute" && evictions_stopped {
                continue;
            }
            if let Some(existing) = current.iter().find(|t| t.key == key && t.effect == effect) {
                taints.push(existing.clone());
                continue;
            }
            if effect == "NoExecute" && !zones.try_taint(&zone) {
                tracing::debug!(key, "NoExecute taint delayed by the zone's eviction rate");
                continue;
            }
            taints.push(Taint {
                key: key.into(),
                effect: effect.into(),
                value: None,
                time_added: (effect == "NoExecute").then(|| Time(jiff::Timestamp::now())),
            });
        }
        let same = taints.len() == current.len() && taints.iter().all(|t| current.contains(t));
        if same {
            return Ok(());
        }
        let mut updated = node.clone();
        updated.spec.get_or_insert_with(Default::default).taints =
            (!taints.is_empty()).then_some(taints);
        let api: Api<Node> = Api::all(self.ctx.client.clone());
        match api
            .replace(&node.name_any(), &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(()),
            // The next period works from the newer node.
            Err(e) if pods::is_conflict(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taints_follow_the_ready_condition() {
        assert!(wanted_taints(Some("True")).is_empty());
        assert!(wanted_taints(None).is_empty());
        assert!(wanted_taints(Some("False"))
            .iter()
            .all(|(k, _)| *k == NOT_READY));
        assert!(wanted_taints(Some("Unknown"))
            .iter()
            .all(|(k, _)| *k == UNREACHABLE));
    }

    #[test]
    fn pressure_and_cordoning_call_for_no_schedule_taints() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n"},
            "spec": {"unschedulable": true},
            "status": {"conditions": [
                {"type": "DiskPressure", "status": "True"},
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True"}
            ]}
        }))
        .unwrap();
        assert_eq!(
            condition_taints(&node),
            vec![
                ("node.kubernetes.io/disk-pressure", "NoSchedule"),
                (UNSCHEDULABLE, "NoSchedule")
            ]
        );
        let taint = |key: &str, effect: &str| Taint {
            key: key.into(),
            effect: effect.into(),
            ..Default::default()
        };
        assert!(managed(&taint(
            "node.kubernetes.io/disk-pressure",
            "NoSchedule"
        )));
        assert!(!managed(&taint(
            "node.kubernetes.io/disk-pressure",
            "NoExecute"
        )));
        assert!(!managed(&taint("example.com/dedicated", "NoSchedule")));
    }
}
