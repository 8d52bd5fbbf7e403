//! A pod as the runtime sees it: its sandboxes and containers, found by the pod UID label.

use std::collections::HashMap;

use cri_proto::v1::{ContainerState, ContainerStatus, PodSandbox, PodSandboxState};

use crate::cri::{CriError, Runtime, POD_UID_LABEL};

/// The runtime's view of one pod, newest objects first.
#[derive(Debug, Default, Clone)]
pub struct RuntimePod {
    pub sandboxes: Vec<PodSandbox>,
    pub containers: Vec<ContainerStatus>,
}

impl RuntimePod {
    /// Lists the sandboxes and containers labelled with `uid`.
    pub async fn load(runtime: &Runtime, uid: &str) -> Result<RuntimePod, CriError> {
        let labels = HashMap::from([(POD_UID_LABEL.to_string(), uid.to_string())]);
        let mut sandboxes = runtime.list_pod_sandboxes(labels.clone()).await?;
        sandboxes.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        let mut containers = Vec::new();
        for c in runtime.list_containers(labels).await? {
            match runtime.container_status(&c.id).await {
                Ok(status) => containers.push(status),
                // Removed between the list and the status call.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        containers.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        Ok(RuntimePod {
            sandboxes,
            containers,
        })
    }

    /// The newest sandbox.
    pub fn sandbox(&self) -> Option<&PodSandbox> {
        self.sandboxes.first()
    }

    /// The newest sandbox if it is ready.
    pub fn ready_sandbox(&self) -> Option<&PodSandbox> {
        self.sandbox()
            .filter(|s| s.state == PodSandboxState::SandboxReady as i32)
    }

    /// Instances of container `name`, newest first.
    pub fn instances<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a ContainerStatus> + 'a {
        self.containers
            .iter()
            .filter(move |c| c.metadata.as_ref().is_some_and(|m| m.name == name))
    }

    /// The newest instance of container `name`.
    pub fn latest<'a>(&'a self, name: &'a str) -> Option<&'a ContainerStatus> {
        self.instances(name).next()
    }

    /// Containers still running.
    pub fn running(&self) -> impl Iterator<Item = &ContainerStatus> {
        self.containers.iter().filter(|c| is_running(c))
    }
}

pub fn is_running(c: &ContainerStatus) -> bool {
    c.state == ContainerState::ContainerRunning as i32
}

pub fn is_exited(c: &ContainerStatus) -> bool {
    c.state == ContainerState::ContainerExited as i32
}

/// The instance number of a container (its restart count).
pub fn attempt(c: &ContainerStatus) -> u32 {
    c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0)
}
