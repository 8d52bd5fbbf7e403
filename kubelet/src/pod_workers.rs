//! One worker per pod: each pod is synced by its own task, woken by a newer version of the pod
//! from a source (apiserver, manifest files), by the PLEG when its containers change, or by its
//! own timer (probes, back-off, periodic resync). Admission happens when a pod is first seen.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use k8s_openapi::api::core::v1::Pod;
use kube::{
    api::{Patch, PatchParams},
    Api,
};
use tokio::sync::watch;
use tracing::Instrument;

use crate::{
    admission,
    cri::{POD_NAMESPACE_LABEL, POD_NAME_LABEL},
    eviction::Pressure,
    static_pods,
    sync::{Next, NodeContext, PodSync},
};

/// Whether every pod source (apiserver, manifest files) has delivered its first full list;
/// until then a pod in the runtime that no worker knows may still be announced, not an orphan.
pub struct SourcesReady {
    api: AtomicBool,
    files: AtomicBool,
}

impl SourcesReady {
    /// Sources that are not configured count as ready.
    pub fn new(api: bool, files: bool) -> SourcesReady {
        SourcesReady {
            api: AtomicBool::new(!api),
            files: AtomicBool::new(!files),
        }
    }

    pub fn api_listed(&self) {
        self.api.store(true, Ordering::Relaxed);
    }

    pub fn files_listed(&self) {
        self.files.store(true, Ordering::Relaxed);
    }

    pub fn all(&self) -> bool {
        self.api.load(Ordering::Relaxed) && self.files.load(Ordering::Relaxed)
    }
}

/// The newest desired state handed to a worker; `pod: None` means the pod was removed.
#[derive(Clone)]
struct Work {
    pod: Option<Pod>,
    /// Bumped to wake the worker without a new pod version (PLEG events).
    nonce: u64,
}

struct Handle {
    id: u64,
    tx: watch::Sender<Work>,
}

/// The set of pod workers.
pub struct PodWorkers {
    ctx: Arc<NodeContext>,
    workers: Mutex<HashMap<String, Handle>>,
    rejected: Mutex<HashSet<String>>,
    next_id: AtomicU64,
    /// Allocatable (millicores, bytes, pods) for admission.
    allocatable: (i64, i64, i64),
    pressure: Arc<Pressure>,
}

/// Whether a newer version of a pod asks for something different. Like upstream's pod config,
/// changes of status alone (most of them the kubelet's own reports coming back through the
/// watch) do not wake the worker; the phase does, since a finished pod gives back its sandbox.
fn differs_semantically(old: &Pod, new: &Pod) -> bool {
    let phase = |p: &Pod| p.status.as_ref().and_then(|s| s.phase.clone());
    old.spec != new.spec
        || old.metadata.labels != new.metadata.labels
        || old.metadata.annotations != new.metadata.annotations
        || old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
        || old.metadata.deletion_grace_period_seconds != new.metadata.deletion_grace_period_seconds
        || phase(old) != phase(new)
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

impl PodWorkers {
    pub fn new(ctx: Arc<NodeContext>, max_pods: u32, pressure: Arc<Pressure>) -> Arc<PodWorkers> {
        let allocatable = (ctx.allocatable.0, ctx.allocatable.1, i64::from(max_pods));
        Arc::new(PodWorkers {
            ctx,
            workers: Mutex::new(HashMap::new()),
            rejected: Mutex::new(HashSet::new()),
            next_id: AtomicU64::new(0),
            allocatable,
            pressure,
        })
    }

    fn workers(&self) -> MutexGuard<'_, HashMap<String, Handle>> {
        self.workers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A source has this version of a pod.
    pub fn update(self: &Arc<Self>, pod: Pod) {
        if static_pods::is_mirror(&pod) {
            return;
        }
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let mut workers = self.workers();
        if let Some(handle) = workers.get(&uid) {
            handle.tx.send_if_modified(|w| {
                let wake = w
                    .pod
                    .as_ref()
                    .is_none_or(|old| differs_semantically(old, &pod));
                w.pod = Some(pod);
                wake
            });
            return;
        }
        if self
            .rejected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&uid)
        {
            return;
        }
        let fresh = pod.metadata.deletion_timestamp.is_none() && !is_terminal(&pod);
        if fresh {
            let active: Vec<Pod> = Vec::new();
            let active = workers.values().fold(active, |mut acc, h| {
                if let Some(p) = h.tx.borrow().pod.clone().filter(|p| !is_terminal(p)) {
                    acc.push(p);
                }
                acc
            });
            let verdict = admission::admit(&pod, &active, self.allocatable).and_then(|()| {
                admission::admit_under_pressure(&pod, self.pressure.memory(), self.pressure.disk())
            });
            if let Err(rejection) = verdict {
                drop(workers);
                self.reject(pod, uid, rejection);
                return;
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(Work {
            pod: Some(pod),
            nonce: 0,
        });
        workers.insert(uid.clone(), Handle { id, tx });
        let this = self.clone();
        tokio::spawn(async move { this.work(uid, id, rx).await });
    }

    /// A source no longer has the pod: stop it and clean up.
    pub fn remove(&self, uid: &str) {
        if let Some(handle) = self.workers().get(uid) {
            handle.tx.send_modify(|w| w.pod = None);
        }
        self.rejected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uid);
    }

    /// Evicts a pod: it fails with reason Evicted and its containers are stopped.
    pub fn evict(&self, uid: &str, message: &str) {
        if let Some(handle) = self.workers().get(uid) {
            handle.tx.send_modify(|w| {
                if let Some(pod) = w.pod.as_mut() {
                    let status = pod.status.get_or_insert_with(Default::default);
                    status.phase = Some("Failed".into());
                    status.reason = Some("Evicted".into());
                    status.message = Some(message.to_string());
                }
            });
        }
    }

    /// Something changed in the runtime for this pod.
    pub fn resync(&self, uid: &str) {
        if let Some(handle) = self.workers().get(uid) {
            handle.tx.send_modify(|w| w.nonce += 1);
        }
    }

    pub fn knows(&self, uid: &str) -> bool {
        self.workers().contains_key(uid)
    }

    /// The pods the workers run, for the node API's `/pods`.
    pub fn pods(&self) -> Vec<Pod> {
        self.workers()
            .values()
            .filter_map(|h| h.tx.borrow().pod.clone())
            .collect()
    }

    /// Containers of a pod no source knows (deleted while the kubelet was down): kill them.
    pub fn orphan(self: &Arc<Self>, uid: &str, labels: &HashMap<String, String>) {
        let pod = Pod {
            metadata: kube::api::ObjectMeta {
                uid: Some(uid.to_string()),
                name: labels.get(POD_NAME_LABEL).cloned(),
                namespace: labels.get(POD_NAMESPACE_LABEL).cloned(),
                ..Default::default()
            },
            ..Default::default()
        };
        tracing::info!(pod_uid = %uid, "cleaning up containers of a pod that no longer exists");
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(Work {
            pod: None,
            nonce: 0,
        });
        self.workers().insert(uid.to_string(), Handle { id, tx });
        let this = self.clone();
        let uid = uid.to_string();
        tokio::spawn(async move {
            let mut sync = PodSync::new(this.ctx.clone());
            if let Err(err) = sync.terminate(&pod, 0).await {
                tracing::warn!(pod_uid = %uid, %err, "cleaning up orphaned pod");
            }
            drop(rx);
            this.finished(&uid, id);
        });
    }

    fn reject(&self, pod: Pod, uid: String, rejection: admission::Rejection) {
        tracing::info!(pod = %pod.metadata.name.as_deref().unwrap_or_default(), reason = %rejection.reason, "pod rejected by node admission");
        self.rejected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(uid);
        let Some(client) = self.ctx.client.clone() else {
            return;
        };
        tokio::spawn(async move {
            let api: Api<Pod> = Api::namespaced(
                client,
                pod.metadata.namespace.as_deref().unwrap_or("default"),
            );
            let patch = serde_json::json!({ "status": {
                "phase": "Failed",
                "reason": rejection.reason,
                "message": format!("Pod was rejected: {}", rejection.message),
            }});
            let name = pod.metadata.name.unwrap_or_default();
            if let Err(err) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::warn!(pod = %name, %err, "reporting admission rejection");
            }
        });
    }

    fn finished(&self, uid: &str, id: u64) {
        let mut workers = self.workers();
        if workers.get(uid).is_some_and(|h| h.id == id) {
            workers.remove(uid);
        }
    }

    async fn work(self: Arc<Self>, uid: String, id: u64, mut rx: watch::Receiver<Work>) {
        let mut sync = PodSync::new(self.ctx.clone());
        let mut last: Option<Pod> = None;
        loop {
            let work = rx.borrow_and_update().clone();
            let result = match &work.pod {
                Some(pod) => {
                    last = Some(pod.clone());
                    let span = tracing::info_span!("sync_pod", pod = %format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or_default(), pod.metadata.name.as_deref().unwrap_or_default()));
                    sync.sync(pod).instrument(span).await
                }
                None => match &last {
                    Some(pod) => {
                        let grace = crate::container::grace_period(pod);
                        sync.terminate(pod, grace).await.map(|()| Next::Finished)
                    }
                    None => Ok(Next::Finished),
                },
            };
            let wait = match result {
                Ok(Next::Finished) => break,
                Ok(Next::ResyncAfter(d)) => d,
                Err(err) => {
                    tracing::warn!(pod_uid = %uid, %err, "syncing pod");
                    Duration::from_secs(2)
                }
            };
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { break },
                _ = tokio::time::sleep(wait) => {}
            }
        }
        self.finished(&uid, id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_reports_do_not_wake_workers() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running"}
        }))
        .unwrap();
        let mut reported = pod.clone();
        reported.metadata.resource_version = Some("7".into());
        reported.status.as_mut().unwrap().pod_ip = Some("10.0.0.1".into());
        assert!(!differs_semantically(&pod, &reported));
        let mut finished = pod.clone();
        finished.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(differs_semantically(&pod, &finished));
        let mut relabelled = pod.clone();
        relabelled.metadata.labels = None;
        assert!(differs_semantically(&pod, &relabelled));
    }
}
