//! Deployment controller: rolls a Deployment's pod template out through ReplicaSets — one per
//! template, named by its pod-template-hash — with the RollingUpdate or Recreate strategy,
//! keeps a revision history, and reports progress in status and conditions.

mod rollout;
mod status;
mod util;

use std::{sync::Arc, time::Duration};

use component_base::{
    informer::{key, key_of, Change, Informer},
    workqueue::WorkQueue,
};
use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    core::v1::Pod,
};
use kube::{api::Api, ResourceExt};

use super::{enqueue_changes, Context, ControllerError, Running};
use crate::{
    events::Recorder,
    pods::{self, controller_of},
    selector,
};

struct Controller {
    ctx: Arc<Context>,
    deployments: Arc<Informer<Deployment>>,
    sets: Arc<Informer<ReplicaSet>>,
    pods: Arc<Informer<Pod>>,
    recorder: Recorder,
    queue: WorkQueue<String>,
}

pub fn init(ctx: &Arc<Context>) -> Result<Running, ControllerError> {
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        deployments: ctx.informers.informer::<Deployment>(),
        sets: ctx.informers.informer::<ReplicaSet>(),
        pods: ctx.informers.informer::<Pod>(),
        recorder: ctx.recorder("deployment-controller"),
        queue: ctx.queue("deployment"),
    });
    enqueue_changes(&c.deployments, &c.queue);
    let weak = Arc::downgrade(&c);
    c.sets.add_handler(move |change| {
        let Some(c) = weak.upgrade() else { return };
        match change {
            Change::Added(rs) | Change::Deleted(rs) => c.enqueue_for_rs(rs),
            Change::Updated { old, new } => {
                c.enqueue_for_rs(old);
                c.enqueue_for_rs(new);
            }
        }
    });
    // Recreate waits for the old pods to be gone before it scales the new ReplicaSet up.
    let weak = Arc::downgrade(&c);
    c.pods.add_handler(move |change| {
        let Some(c) = weak.upgrade() else { return };
        if let Change::Deleted(pod) = change {
            let Some(k) = pods::controller_key(&pod.metadata, "ReplicaSet") else {
                return;
            };
            if let Some(rs) = c.sets.get(&k) {
                if let Some(d) = c.owner_of(&rs) {
                    if util::is_recreate(&d) {
                        c.queue.add(key_of(d.as_ref()));
                    }
                }
            }
        }
    });
    Ok(Box::pin(async move {
        c.deployments.wait_synced().await;
        c.sets.wait_synced().await;
        c.pods.wait_synced().await;
        let workers = c.ctx.options.concurrent_deployment_syncs;
        let queue = c.queue.clone();
        queue
            .run_workers(workers, move |key: String| {
                let c = c.clone();
                async move { c.sync(&key).await }
            })
            .await;
    }))
}

impl Controller {
    fn owner_of(&self, rs: &ReplicaSet) -> Option<Arc<Deployment>> {
        let r = controller_of(&rs.metadata).filter(|r| r.kind == "Deployment")?;
        let d = self
            .deployments
            .get(&key(rs.metadata.namespace.as_deref(), &r.name))?;
        (d.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(d)
    }

    fn enqueue_for_rs(&self, rs: &ReplicaSet) {
        if let Some(d) = self.owner_of(rs) {
            return self.queue.add(key_of(d.as_ref()));
        }
        if controller_of(&rs.metadata).is_some() {
            return;
        }
        let ns = rs.namespace().unwrap_or_default();
        for d in self.deployments.list_in(&ns) {
            let sel = selector::from_api(d.spec.as_ref().map(|s| &s.selector))
                .ok()
                .flatten();
            if sel.is_some_and(|s| selector::matches(&s, rs.metadata.labels.as_ref())) {
                self.queue.add(key_of(d.as_ref()));
            }
        }
    }

    /// The ReplicaSets this deployment controls, after adopting matching orphans and releasing
    /// its own that no longer match.
    async fn claim(&self, d: &Deployment) -> Result<Vec<Arc<ReplicaSet>>, ControllerError> {
        let ns = d.namespace().unwrap_or_default();
        let Some(sel) = selector::from_api(d.spec.as_ref().map(|s| &s.selector))? else {
            return Ok(Vec::new());
        };
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let deleting = d.metadata.deletion_timestamp.is_some();
        let api: Api<ReplicaSet> = Api::namespaced(self.ctx.client.clone(), &ns);
        let mut owned = Vec::new();
        for rs in self.sets.list_in(&ns) {
            let matches = selector::matches(&sel, rs.metadata.labels.as_ref());
            match controller_of(&rs.metadata) {
                Some(r) if r.uid == uid => {
                    if matches || deleting {
                        owned.push(rs);
                    } else {
                        pods::release(&api, rs.as_ref(), &uid).await?;
                    }
                }
                None if matches && !deleting && rs.metadata.deletion_timestamp.is_none() => {
                    match pods::adopt(&api, rs.as_ref(), pods::controller_ref(d)).await {
                        Ok(adopted) => owned.push(Arc::new(adopted)),
                        Err(e) if pods::is_not_found(&e) || pods::is_conflict(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                _ => {}
            }
        }
        Ok(owned)
    }

    #[tracing::instrument(skip(self), fields(deployment = %k))]
    async fn sync(&self, k: &str) -> Result<Option<Duration>, ControllerError> {
        let Some(d) = self.deployments.get(k) else {
            return Ok(None);
        };
        let d = (*d).clone();
        let empty_selector = d.spec.as_ref().is_none_or(|s| {
            s.selector
                .match_labels
                .as_ref()
                .is_none_or(|m| m.is_empty())
                && s.selector
                    .match_expressions
                    .as_ref()
                    .is_none_or(|e| e.is_empty())
        });
        if empty_selector {
            self.recorder.warning(
                &d,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.".into(),
            );
            return Ok(None);
        }
        let sets = self.claim(&d).await?;
        let mut r = rollout::Rollout::new(self, d, sets);
        if r.d.metadata.deletion_timestamp.is_some() {
            return r.sync_status_only().await;
        }
        r.check_paused_conditions().await?;
        if r.paused() {
            return r.sync_scale().await;
        }
        if r.is_scaling_event() {
            return r.sync_scale().await;
        }
        if util::is_recreate(&r.d) {
            r.rollout_recreate().await
        } else {
            r.rollout_rolling().await
        }
    }
}
