//! Pod garbage collector: keeps the number of terminated pods under
//! `--terminated-pod-gc-threshold` (oldest go first), and force-deletes pods bound to nodes that
//! no longer exist and unscheduled pods that are being deleted, since no kubelet will ever
//! finish them.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use component_base::informer::Informer;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{
    api::{Api, DeleteParams},
    ResourceExt,
};

use super::{Context, ControllerError, Running};
use crate::pods;

/// How often the collector looks (upstream's gcCheckPeriod).
const PERIOD: Duration = Duration::from_secs(20);
/// How long a node must stay missing before its pods count as orphaned.
const QUARANTINE: Duration = Duration::from_secs(40);

pub fn init(ctx: &Arc<Context>) -> Result<Running, ControllerError> {
    let pods = ctx.informers.informer::<Pod>();
    let nodes = ctx.informers.informer::<Node>();
    let ctx = ctx.clone();
    Ok(Box::pin(async move {
        pods.wait_synced().await;
        nodes.wait_synced().await;
        let mut missing_since: HashMap<String, Instant> = HashMap::new();
        let mut tick = tokio::time::interval(PERIOD);
        loop {
            tick.tick().await;
            if let Err(err) = collect(&ctx, &pods, &nodes, &mut missing_since).await {
                tracing::warn!(%err, "pod garbage collection");
            }
        }
    }))
}

fn terminated(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The oldest terminated pods beyond `threshold` (0 disables the limit).
pub fn over_threshold(pods: &[Arc<Pod>], threshold: usize) -> Vec<Arc<Pod>> {
    if threshold == 0 {
        return Vec::new();
    }
    let mut done: Vec<Arc<Pod>> = pods
        .iter()
        .filter(|p| terminated(p) && p.metadata.deletion_timestamp.is_none())
        .cloned()
        .collect();
    if done.len() <= threshold {
        return Vec::new();
    }
    done.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let excess = done.len() - threshold;
    done.truncate(excess);
    done
}

async fn force_delete(ctx: &Context, pod: &Pod, why: &str) -> Result<(), ControllerError> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &pod.namespace().unwrap_or_default());
    tracing::info!(pod = %key(pod), why, "force-deleting pod");
    match api
        .delete(
            &pod.name_any(),
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if pods::is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn key(pod: &Pod) -> String {
    component_base::informer::key_of(pod)
}

async fn collect(
    ctx: &Context,
    pods: &Informer<Pod>,
    nodes: &Informer<Node>,
    missing_since: &mut HashMap<String, Instant>,
) -> Result<(), ControllerError> {
    let all = pods.list();
    for pod in over_threshold(&all, ctx.options.terminated_pod_gc_threshold) {
        force_delete(ctx, &pod, "terminated pods over the threshold").await?;
    }
    let node_api: Api<Node> = Api::all(ctx.client.clone());
    let mut still_missing = HashMap::new();
    for pod in &all {
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        match node {
            None if pod.metadata.deletion_timestamp.is_some() => {
                force_delete(ctx, pod, "unscheduled and terminating").await?;
            }
            Some(node) if nodes.get(&node).is_none() => {
                let since = *missing_since.get(&node).unwrap_or(&Instant::now());
                still_missing.insert(node.clone(), since);
                // Confirm with the apiserver before acting on the cache.
                if since.elapsed() >= QUARANTINE && node_api.get_opt(&node).await?.is_none() {
                    force_delete(ctx, pod, "bound to a node that no longer exists").await?;
                }
            }
            _ => {}
        }
    }
    *missing_since = still_missing;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn oldest_terminated_pods_beyond_the_threshold_go() {
        let pod = |name: &str, phase: &str, created: i64| -> Arc<Pod> {
            Arc::new(
                serde_json::from_value(json!({
                    "metadata": { "name": name, "creationTimestamp": jiff::Timestamp::from_second(created).unwrap().to_string() },
                    "status": { "phase": phase },
                }))
                .unwrap(),
            )
        };
        let pods = vec![
            pod("new", "Succeeded", 300),
            pod("old", "Failed", 100),
            pod("running", "Running", 50),
            pod("mid", "Succeeded", 200),
        ];
        let names: Vec<String> = over_threshold(&pods, 1)
            .iter()
            .map(|p| p.name_any())
            .collect();
        assert_eq!(names, ["old", "mid"]);
        assert!(over_threshold(&pods, 3).is_empty());
        assert!(over_threshold(&pods, 0).is_empty());
    }
}
