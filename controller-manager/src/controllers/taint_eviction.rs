//! Taint eviction: pods on a node with NoExecute taints they do not tolerate are deleted at
//! once; pods tolerating them for `tolerationSeconds` are deleted when that time (counted from
//! the taint's `timeAdded`) runs out. Removing the taint in time cancels the eviction.

use std::{sync::Arc, time::Duration};

use component_base::{
    informer::{key_of, split_key, Change, Informer},
    workqueue::WorkQueue,
};
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use kube::{
    api::{Api, DeleteParams},
    ResourceExt,
};

use super::{Context, ControllerError, Running};
use crate::{events::Recorder, pods};

struct Controller {
    ctx: Arc<Context>,
    nodes: Arc<Informer<Node>>,
    pods: Arc<Informer<Pod>>,
    recorder: Recorder,
    queue: WorkQueue<String>,
}

pub fn init(ctx: &Arc<Context>) -> Result<Running, ControllerError> {
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        nodes: ctx.informers.informer::<Node>(),
        pods: ctx.informers.informer::<Pod>(),
        recorder: ctx.recorder("taint-eviction-controller"),
        queue: ctx.queue("taint_eviction"),
    });
    let q = c.queue.clone();
    c.pods.add_handler(move |change| {
        if let Change::Added(p) | Change::Updated { new: p, .. } = change {
            if p.spec.as_ref().is_some_and(|s| s.node_name.is_some()) {
                q.add(key_of(p.as_ref()));
            }
        }
    });
    let weak = Arc::downgrade(&c);
    c.nodes.add_handler(move |change| {
        let Some(c) = weak.upgrade() else { return };
        if let Change::Added(n) | Change::Updated { new: n, .. } = change {
            let name = n.name_any();
            for p in c.pods.list() {
                if p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name.as_str()) {
                    c.queue.add(key_of(p.as_ref()));
                }
            }
        }
    });
    Ok(Box::pin(async move {
        c.nodes.wait_synced().await;
        c.pods.wait_synced().await;
        let queue = c.queue.clone();
        queue
            .run_workers(4, move |k: String| {
                let c = c.clone();
                async move { c.sync(&k).await }
            })
            .await;
    }))
}

/// When the pod must go: `Some(ZERO)` now, `Some(d)` after `d`, `None` never.
pub fn eviction_delay(pod: &Pod, taints: &[Taint], now: jiff::Timestamp) -> Option<Duration> {
    let tolerations: &[Toleration] = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[]);
    let mut earliest: Option<i64> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<&Toleration> = tolerations
            .iter()
            .filter(|t| pods::tolerates(t, taint))
            .collect();
        if matching.is_empty() {
            return Some(Duration::ZERO);
        }
        // Tolerated forever unless every matching toleration is time-bound; the shortest wins.
        if matching.iter().any(|t| t.toleration_seconds.is_none()) {
            continue;
        }
        let seconds = matching
            .iter()
            .filter_map(|t| t.toleration_seconds)
            .min()
            .unwrap_or(0)
            .max(0);
        let added = taint
            .time_added
            .as_ref()
            .map_or(now.as_millisecond(), |t| t.0.as_millisecond());
        let due = added + seconds * 1000;
        earliest = Some(earliest.map_or(due, |e: i64| e.min(due)));
    }
    earliest.map(|due| Duration::from_millis((due - now.as_millisecond()).max(0) as u64))
}

impl Controller {
    #[tracing::instrument(skip(self), fields(pod = %k))]
    async fn sync(&self, k: &str) -> Result<Option<Duration>, ControllerError> {
        let Some(pod) = self.pods.get(k) else {
            return Ok(None);
        };
        if pod.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let Some(node) = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .and_then(|n| self.nodes.get(n))
        else {
            return Ok(None);
        };
        let taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        match eviction_delay(&pod, &taints, jiff::Timestamp::now()) {
            None => Ok(None),
            Some(d) if !d.is_zero() => Ok(Some(d)),
            Some(_) => {
                let (ns, name) = split_key(k);
                self.recorder.normal(
                    pod.as_ref(),
                    "TaintManagerEviction",
                    format!("Marking for deletion Pod {ns}/{name}"),
                );
                let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => Ok(None),
                    Err(e) if pods::is_not_found(&e) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    #[test]
    fn toleration_seconds_count_from_the_taint() {
        let added = jiff::Timestamp::from_second(1000).unwrap();
        let taint = Taint {
            key: "node.kubernetes.io/unreachable".into(),
            effect: "NoExecute".into(),
            value: None,
            time_added: Some(Time(added)),
        };
        let pod = |tolerations: serde_json::Value| -> Pod {
            serde_json::from_value(
                json!({ "spec": { "containers": [], "tolerations": tolerations } }),
            )
            .unwrap()
        };
        let now = jiff::Timestamp::from_second(1002).unwrap();
        let bounded = pod(
            json!([{ "key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5 }]),
        );
        assert_eq!(
            eviction_delay(&bounded, std::slice::from_ref(&taint), now),
            Some(Duration::from_secs(3))
        );
        let forever = pod(json!([{ "operator": "Exists" }]));
        assert_eq!(
            eviction_delay(&forever, std::slice::from_ref(&taint), now),
            None
        );
        let none = pod(json!([]));
        assert_eq!(eviction_delay(&none, &[taint], now), Some(Duration::ZERO));
    }
}
