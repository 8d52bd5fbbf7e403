//! Static pods: pods from manifest files in `staticPodPath`, run without an apiserver, and their
//! mirror pods — read-only copies in the API (annotation `kubernetes.io/config.mirror`) that
//! make them visible to the cluster once the apiserver is reachable.

use std::{
    collections::{BTreeMap, HashMap},
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use k8s_openapi::api::core::v1::Pod;
use kube::{
    api::{DeleteParams, PostParams, Preconditions},
    Api,
};
use tokio::sync::watch;

use crate::pod_workers::{PodWorkers, SourcesReady};

pub const CONFIG_SOURCE_ANNOTATION: &str = "kubernetes.io/config.source";
pub const CONFIG_HASH_ANNOTATION: &str = "kubernetes.io/config.hash";
pub const CONFIG_SEEN_ANNOTATION: &str = "kubernetes.io/config.seen";
pub const CONFIG_MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Whether the pod came from a manifest file.
pub fn is_static(pod: &Pod) -> bool {
    annotation(pod, CONFIG_SOURCE_ANNOTATION).is_some_and(|s| s == "file")
}

/// Whether the pod is a mirror pod in the API (which the kubelet never runs itself).
pub fn is_mirror(pod: &Pod) -> bool {
    annotation(pod, CONFIG_MIRROR_ANNOTATION).is_some()
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a String> {
    pod.metadata.annotations.as_ref().and_then(|a| a.get(key))
}

/// For a static pod, the namespace and name of its mirror pod, where its status goes.
pub fn mirror_target(pod: &Pod) -> Option<(String, String)> {
    is_static(pod).then(|| {
        (
            pod.metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            pod.metadata.name.clone().unwrap_or_default(),
        )
    })
}

/// Reads one manifest into a static pod bound to `node`: named `<name>-<node>`, with a UID
/// derived from its content so that editing the file replaces the pod.
pub fn pod_from_manifest(text: &str, path: &Path, node: &str) -> Result<Pod, String> {
    let mut pod: Pod = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        serde_saphyr::from_str(text).map_err(|e| format!("{}: {e}", path.display()))?
    };
    let name = pod
        .metadata
        .name
        .clone()
        .ok_or_else(|| format!("{}: pod has no name", path.display()))?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    node.hash(&mut hasher);
    path.hash(&mut hasher);
    let a = hasher.finish();
    "file".hash(&mut hasher);
    let b = hasher.finish();
    let uid = format!("{a:016x}{b:016x}");
    pod.metadata.name = Some(format!("{name}-{node}"));
    pod.metadata.namespace = Some(
        pod.metadata
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into()),
    );
    pod.metadata.uid = Some(uid.clone());
    pod.metadata.self_link = None;
    let annotations = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(CONFIG_SOURCE_ANNOTATION.into(), "file".into());
    annotations.insert(CONFIG_HASH_ANNOTATION.into(), uid);
    annotations.insert(
        CONFIG_SEEN_ANNOTATION.into(),
        chrono::Utc::now().to_rfc3339(),
    );
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.node_name = Some(node.to_string());
    if spec.restart_policy.is_none() {
        spec.restart_policy = Some("Always".into());
    }
    if spec.dns_policy.is_none() {
        spec.dns_policy = Some("ClusterFirst".into());
    }
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        if c.image_pull_policy.is_none() {
            c.image_pull_policy = Some("IfNotPresent".into());
        }
    }
    let qos = crate::admission::qos_class(&pod);
    pod.status.get_or_insert_with(Default::default).qos_class = Some(qos);
    Ok(pod)
}

/// Every manifest in `dir` (files ending in .yaml, .yml or .json), by path.
fn read_dir(dir: &Path, node: &str) -> HashMap<PathBuf, Pod> {
    let mut pods = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return pods;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden || !matches!(ext, "yaml" | "yml" | "json") {
            continue;
        }
        match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| pod_from_manifest(&t, &path, node))
        {
            Ok(pod) => {
                pods.insert(path, pod);
            }
            Err(err) => tracing::warn!(%err, "skipping static pod manifest"),
        }
    }
    pods
}

/// Watches the manifest directory (polling every `interval`) and keeps the pod workers and the
/// mirror pods in line with it.
pub async fn run(
    dir: PathBuf,
    node: String,
    interval: Duration,
    workers: Arc<PodWorkers>,
    client: Option<kube::Client>,
    ready: Arc<SourcesReady>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut known: HashMap<String, Pod> = HashMap::new();
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(200)));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let current: HashMap<String, Pod> = read_dir(&dir, &node)
            .into_values()
            .filter_map(|p| Some((p.metadata.uid.clone()?, p)))
            .collect();
        for (uid, pod) in &current {
            if !known.contains_key(uid) {
                tracing::info!(pod = %pod.metadata.name.as_deref().unwrap_or_default(), "static pod added");
                workers.update(pod.clone());
            }
        }
        for uid in known.keys() {
            if !current.contains_key(uid) {
                workers.remove(uid);
            }
        }
        known = current;
        ready.files_listed();
        if let Some(client) = &client {
            for pod in known.values() {
                if let Err(err) = ensure_mirror(client, pod).await {
                    tracing::debug!(pod = %pod.metadata.name.as_deref().unwrap_or_default(), %err, "mirror pod not updated");
                }
            }
            if let Err(err) = remove_orphaned_mirrors(client, &node, &known).await {
                tracing::debug!(%err, "cleaning up mirror pods");
            }
        }
    }
}

/// The mirror pod of a static pod: same name, namespace and spec, marked with its hash.
fn mirror_of(pod: &Pod) -> Pod {
    let mut mirror = pod.clone();
    mirror.metadata.uid = None;
    mirror.metadata.resource_version = None;
    mirror.status = None;
    let hash = annotation(pod, CONFIG_HASH_ANNOTATION)
        .cloned()
        .unwrap_or_default();
    mirror
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(CONFIG_MIRROR_ANNOTATION.into(), hash);
    mirror
}

/// Creates the mirror pod, or replaces one that belongs to an older version of the manifest.
async fn ensure_mirror(client: &kube::Client, pod: &Pod) -> Result<(), kube::Error> {
    let ns = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let hash = annotation(pod, CONFIG_HASH_ANNOTATION).cloned();
    if let Some(existing) = api.get_opt(&name).await? {
        if annotation(&existing, CONFIG_MIRROR_ANNOTATION) == hash.as_ref()
            && existing.metadata.deletion_timestamp.is_none()
        {
            return Ok(());
        }
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: existing.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        api.delete(&name, &params).await?;
    }
    api.create(&PostParams::default(), &mirror_of(pod)).await?;
    tracing::info!(pod = %format!("{ns}/{name}"), "created mirror pod");
    Ok(())
}

/// Deletes mirror pods on this node whose static pod is gone.
async fn remove_orphaned_mirrors(
    client: &kube::Client,
    node: &str,
    known: &HashMap<String, Pod>,
) -> Result<(), kube::Error> {
    let api: Api<Pod> = Api::all(client.clone());
    let params = kube::api::ListParams::default().fields(&format!("spec.nodeName={node}"));
    for mirror in api.list(&params).await?.items.into_iter().filter(is_mirror) {
        let wanted = known.values().any(|p| {
            p.metadata.name == mirror.metadata.name
                && p.metadata.namespace == mirror.metadata.namespace
        });
        if !wanted {
            let ns = mirror.metadata.namespace.clone().unwrap_or_default();
            let name = mirror.metadata.name.clone().unwrap_or_default();
            Api::<Pod>::namespaced(client.clone(), &ns)
                .delete(
                    &name,
                    &DeleteParams {
                        grace_period_seconds: Some(0),
                        ..Default::default()
                    },
                )
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_become_node_bound_pods() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox:1\n";
        let pod = pod_from_manifest(text, Path::new("/m/web.yaml"), "node1").unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("web-node1"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
        assert!(is_static(&pod));
        assert_eq!(
            pod.spec.as_ref().unwrap().node_name.as_deref(),
            Some("node1")
        );
        let changed = pod_from_manifest(
            &text.replace("busybox:1", "busybox:2"),
            Path::new("/m/web.yaml"),
            "node1",
        )
        .unwrap();
        assert_ne!(pod.metadata.uid, changed.metadata.uid);
        let mirror = mirror_of(&pod);
        assert!(is_mirror(&mirror));
        assert!(mirror.metadata.uid.is_none());
    }
}
