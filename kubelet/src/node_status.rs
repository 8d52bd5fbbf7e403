//! Node registration and status: the kubelet creates its Node (labels, taints, capacity) and keeps
//! `status` current — conditions, addresses, nodeInfo, images — patching it when something
//! changed and at least every `nodeStatusReportFrequency`.

use std::{collections::BTreeMap, net::IpAddr, sync::Arc, time::Instant};

use k8s_openapi::{
    api::core::v1::{
        ContainerImage, DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints,
        NodeSpec, NodeStatus, NodeSystemInfo, Taint,
    },
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
};
use kube::{
    api::{Patch, PatchParams, PostParams},
    Api,
};
use serde_json::json;
use tokio::sync::watch;

use crate::{
    cri::Runtime,
    eviction::Pressure,
    host::{Capacity, SystemInfo},
    options::{KubeletConfiguration, KUBELET_VERSION},
};

/// What the node reports about itself.
pub struct NodeIdentity {
    pub name: String,
    pub address: IpAddr,
    pub labels: BTreeMap<String, String>,
}

/// Registers the node and keeps its status current until `shutdown` flips.
pub struct NodeStatusReporter {
    pub client: kube::Client,
    pub runtime: Runtime,
    pub config: Arc<KubeletConfiguration>,
    pub node: Arc<NodeIdentity>,
    pub capacity: Capacity,
    pub system: SystemInfo,
    pub pressure: Arc<Pressure>,
}

/// Why a status round failed.
#[derive(Debug, thiserror::Error)]
enum StatusError {
    #[error("talking to the apiserver: {0}")]
    Api(#[from] kube::Error),
}

impl NodeStatusReporter {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let api: Api<Node> = Api::all(self.client.clone());
        let mut registered = false;
        let mut last: Option<(serde_json::Value, Instant)> = None;
        let mut tick = tokio::time::interval(self.config.node_status_update_frequency);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            if !registered {
                match self.register(&api).await {
                    Ok(()) => {
                        tracing::info!(node = %self.node.name, "registered node");
                        registered = true;
                    }
                    Err(err) => {
                        tracing::warn!(node = %self.node.name, %err, "registering node");
                        continue;
                    }
                }
            }
            let status = self.status().await;
            let comparable = without_heartbeats(&status);
            let due = match &last {
                Some((previous, at)) => {
                    *previous != comparable
                        || at.elapsed() >= self.config.node_status_report_frequency
                }
                None => true,
            };
            if !due {
                continue;
            }
            match self.patch_status(&api, &status).await {
                Ok(()) => last = Some((comparable, Instant::now())),
                Err(err) => tracing::warn!(node = %self.node.name, %err, "updating node status"),
            }
        }
    }

    async fn register(&self, api: &Api<Node>) -> Result<(), StatusError> {
        let taints: Vec<Taint> = self.config.register_with_taints.clone();
        let node = Node {
            metadata: ObjectMeta {
                name: Some(self.node.name.clone()),
                labels: Some(self.node.labels.clone()),
                annotations: Some(BTreeMap::from([(
                    "volumes.kubernetes.io/controller-managed-attach-detach".to_string(),
                    "true".to_string(),
                )])),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: (!taints.is_empty()).then_some(taints),
                ..Default::default()
            }),
            status: None,
        };
        match api.create(&PostParams::default(), &node).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                // Re-registration after a restart: reconcile the labels the kubelet owns.
                let patch = json!({ "metadata": { "labels": self.node.labels } });
                api.patch(
                    &self.node.name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn patch_status(
        &self,
        api: &Api<Node>,
        status: &serde_json::Value,
    ) -> Result<(), StatusError> {
        let patch = json!({ "status": status });
        api.patch_status(
            &self.node.name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
        Ok(())
    }

    /// The full node status as of now.
    async fn status(&self) -> serde_json::Value {
        let now = Time(jiff::Timestamp::now());
        let (runtime_version, runtime_ready) = match self.runtime.version().await {
            Ok(v) => {
                let ready = runtime_ready(&self.runtime).await;
                (format!("{}://{}", v.runtime_name, v.runtime_version), ready)
            }
            Err(err) => (String::new(), Err(err.to_string())),
        };
        let images = match self.runtime.list_images().await {
            Ok(list) => list
                .into_iter()
                .map(|i| {
                    let mut names = i.repo_digests;
                    names.extend(i.repo_tags);
                    ContainerImage {
                        names: Some(names),
                        size_bytes: Some(i.size as i64),
                    }
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        let memory_pressure = self.pressure.memory();
        let disk_pressure = self.pressure.disk();
        let condition = |kind: &str, status: bool, reason: &str, message: &str| NodeCondition {
            type_: kind.into(),
            status: if status { "True" } else { "False" }.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_heartbeat_time: Some(now.clone()),
            last_transition_time: Some(now.clone()),
        };
        let ready = match &runtime_ready {
            Ok(()) => condition(
                "Ready",
                true,
                "KubeletReady",
                "kubelet is posting ready status",
            ),
            Err(why) => condition("Ready", false, "KubeletNotReady", why),
        };
        let conditions = vec![
            if memory_pressure {
                condition(
                    "MemoryPressure",
                    true,
                    "KubeletHasInsufficientMemory",
                    "kubelet has insufficient memory available",
                )
            } else {
                condition(
                    "MemoryPressure",
                    false,
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                )
            },
            if disk_pressure {
                condition(
                    "DiskPressure",
                    true,
                    "KubeletHasDiskPressure",
                    "kubelet has disk pressure",
                )
            } else {
                condition(
                    "DiskPressure",
                    false,
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                )
            },
            condition(
                "PIDPressure",
                false,
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            ready,
        ];
        let status = NodeStatus {
            capacity: Some(self.capacity.quantities(self.config.max_pods)),
            allocatable: Some(self.capacity.allocatable(self.config.max_pods)),
            conditions: Some(conditions),
            addresses: Some(vec![
                NodeAddress {
                    type_: "InternalIP".into(),
                    address: self.node.address.to_string(),
                },
                NodeAddress {
                    type_: "Hostname".into(),
                    address: self.node.name.clone(),
                },
            ]),
            daemon_endpoints: Some(NodeDaemonEndpoints {
                kubelet_endpoint: Some(DaemonEndpoint {
                    port: i32::from(self.config.port),
                }),
            }),
            node_info: Some(NodeSystemInfo {
                architecture: self.system.architecture.clone(),
                boot_id: self.system.boot_id.clone(),
                container_runtime_version: runtime_version,
                kernel_version: self.system.kernel_version.clone(),
                kube_proxy_version: String::new(),
                kubelet_version: KUBELET_VERSION.into(),
                machine_id: self.system.machine_id.clone(),
                operating_system: "linux".into(),
                os_image: self.system.os_image.clone(),
                system_uuid: self.system.system_uuid.clone(),
                swap: None,
            }),
            images: Some(images),
            ..Default::default()
        };
        serde_json::to_value(status).unwrap_or_default()
    }
}

/// Whether the runtime reports both RuntimeReady and NetworkReady, as a Ready node needs.
async fn runtime_ready(runtime: &Runtime) -> Result<(), String> {
    let status = runtime
        .status()
        .await
        .map_err(|e| format!("container runtime status check may not have completed yet: {e}"))?;
    let conditions = status.status.map(|s| s.conditions).unwrap_or_default();
    for required in ["RuntimeReady", "NetworkReady"] {
        match conditions.iter().find(|c| c.r#type == required) {
            Some(c) if c.status => {}
            Some(c) => {
                return Err(format!(
                    "container runtime network not ready: {required}=false reason:{} message:{}",
                    c.reason, c.message
                ))
            }
            None => return Err(format!("container runtime did not report {required}")),
        }
    }
    Ok(())
}

/// The status with heartbeat and transition times removed, to tell real changes from ticks.
fn without_heartbeats(status: &serde_json::Value) -> serde_json::Value {
    let mut s = status.clone();
    if let Some(conditions) = s.get_mut("conditions").and_then(|c| c.as_array_mut()) {
        for c in conditions {
            if let Some(o) = c.as_object_mut() {
                o.remove("lastHeartbeatTime");
                o.remove("lastTransitionTime");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_do_not_count_as_changes() {
        let a =
            json!({"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "1"}]});
        let b =
            json!({"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2"}]});
        let c =
            json!({"conditions": [{"type": "Ready", "status": "False", "lastHeartbeatTime": "2"}]});
        assert_eq!(without_heartbeats(&a), without_heartbeats(&b));
        assert_ne!(without_heartbeats(&a), without_heartbeats(&c));
    }
}
