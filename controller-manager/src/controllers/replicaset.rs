//! ReplicaSet controller: keeps `spec.replicas` active pods matching the selector, adopting
//! orphans and releasing pods that no longer match, deleting the least valuable pods first, and
//! reporting replica counts in status.

use std::{sync::Arc, time::Duration};

use component_base::informer::{key, key_of, split_key, Change, Informer};
use k8s_openapi::{
    api::{
        apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus},
        core::v1::Pod,
    },
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::{
    api::{Api, DeleteParams, PostParams},
    ResourceExt,
};

use super::{Context, ControllerError, Running};
use crate::{
    events::Recorder,
    expectations::Expectations,
    pods::{self, controller_of},
    selector,
};

/// Most pods created or deleted in one sync (upstream's burstReplicas).
const BURST: usize = 500;

struct Controller {
    ctx: Arc<Context>,
    sets: Arc<Informer<ReplicaSet>>,
    pods: Arc<Informer<Pod>>,
    expectations: Expectations,
    recorder: Recorder,
    queue: component_base::workqueue::WorkQueue<String>,
}

pub fn init(ctx: &Arc<Context>) -> Result<Running, ControllerError> {
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        sets: ctx.informers.informer::<ReplicaSet>(),
        pods: ctx.informers.informer::<Pod>(),
        expectations: Expectations::default(),
        recorder: ctx.recorder("replicaset-controller"),
        queue: ctx.queue("replicaset"),
    });
    let weak = Arc::downgrade(&c);
    c.sets.add_handler(move |change| {
        let Some(c) = weak.upgrade() else { return };
        match change {
            Change::Added(rs) | Change::Updated { new: rs, .. } => c.queue.add(key_of(rs.as_ref())),
            Change::Deleted(rs) => {
                c.expectations.delete(&key_of(rs.as_ref()));
                c.queue.add(key_of(rs.as_ref()));
            }
        }
    });
    let weak = Arc::downgrade(&c);
    c.pods.add_handler(move |change| {
        if let Some(c) = weak.upgrade() {
            c.pod_changed(change);
        }
    });
    Ok(Box::pin(async move {
        c.sets.wait_synced().await;
        c.pods.wait_synced().await;
        let workers = c.ctx.options.concurrent_replicaset_syncs;
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
    /// The ReplicaSet a controller reference names, if it is cached with that UID.
    fn resolve(&self, ns: &str, pod: &Pod) -> Option<String> {
        let r = controller_of(&pod.metadata)?;
        if r.kind != "ReplicaSet" {
            return None;
        }
        let k = key(Some(ns), &r.name);
        let rs = self.sets.get(&k)?;
        (rs.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(k)
    }

    /// ReplicaSets whose selector matches an orphan pod (they may adopt it).
    fn matching(&self, pod: &Pod) -> Vec<String> {
        let ns = pod.namespace().unwrap_or_default();
        self.sets
            .list_in(&ns)
            .iter()
            .filter(|rs| {
                selector::from_api(rs.spec.as_ref().map(|s| &s.selector))
                    .ok()
                    .flatten()
                    .is_some_and(|s| selector::matches(&s, pod.metadata.labels.as_ref()))
            })
            .map(|rs| key_of(rs.as_ref()))
            .collect()
    }

    fn pod_changed(&self, change: &Change<Pod>) {
        match change {
            Change::Added(pod) => {
                let ns = pod.namespace().unwrap_or_default();
                if pod.metadata.deletion_timestamp.is_some() {
                    return self.pod_deleted(pod);
                }
                match self.resolve(&ns, pod) {
                    Some(k) => {
                        self.expectations.creation_observed(&k);
                        self.queue.add(k);
                    }
                    None if controller_of(&pod.metadata).is_none() => {
                        for k in self.matching(pod) {
                            self.queue.add(k);
                        }
                    }
                    None => {}
                }
            }
            Change::Updated { old, new } => {
                let ns = new.namespace().unwrap_or_default();
                if new.metadata.deletion_timestamp.is_some()
                    && old.metadata.deletion_timestamp.is_none()
                {
                    self.pod_deleted(new);
                }
                let old_ref = self.resolve(&ns, old);
                let new_ref = self.resolve(&ns, new);
                if old_ref != new_ref {
                    if let Some(k) = old_ref {
                        self.queue.add(k);
                    }
                }
                match new_ref {
                    Some(k) => {
                        let min_ready = self
                            .sets
                            .get(&k)
                            .and_then(|rs| rs.spec.as_ref().and_then(|s| s.min_ready_seconds))
                            .unwrap_or(0);
                        if min_ready > 0 && !pods::is_ready(old) && pods::is_ready(new) {
                            self.queue
                                .add_after(k.clone(), Duration::from_secs(min_ready as u64 + 1));
                        }
                        self.queue.add(k);
                    }
                    None if controller_of(&new.metadata).is_none() => {
                        for k in self.matching(new) {
                            self.queue.add(k);
                        }
                    }
                    None => {}
                }
            }
            Change::Deleted(pod) => {
                if pod.metadata.deletion_timestamp.is_none() {
                    self.pod_deleted(pod);
                } else if let Some(k) = self.resolve(&pod.namespace().unwrap_or_default(), pod) {
                    self.queue.add(k);
                }
            }
        }
    }

    fn pod_deleted(&self, pod: &Pod) {
        let ns = pod.namespace().unwrap_or_default();
        let Some(r) = controller_of(&pod.metadata) else {
            return;
        };
        if r.kind != "ReplicaSet" {
            return;
        }
        let k = key(Some(&ns), &r.name);
        self.expectations.deletion_observed(&k, &key_of(pod));
        self.queue.add(k);
    }

    #[tracing::instrument(skip(self), fields(replicaset = %k))]
    async fn sync(&self, k: &str) -> Result<Option<Duration>, ControllerError> {
        let Some(rs) = self.sets.get(k) else {
            self.expectations.delete(k);
            return Ok(None);
        };
        let (ns, name) = split_key(k);
        let spec = rs.spec.clone().unwrap_or_default();
        let Some(sel) = selector::from_api(Some(&spec.selector))? else {
            return Ok(None);
        };
        let need_sync = self.expectations.satisfied(k);
        let pod_api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        let uid = rs.metadata.uid.clone().unwrap_or_default();
        let deleting = rs.metadata.deletion_timestamp.is_some();

        // Claim: keep our matching pods, adopt matching orphans, release ours that stopped matching.
        let mut owned: Vec<Arc<Pod>> = Vec::new();
        for pod in self.pods.list_in(ns) {
            let matches = selector::matches(&sel, pod.metadata.labels.as_ref());
            match controller_of(&pod.metadata) {
                Some(r) if r.uid == uid => {
                    if matches || deleting {
                        owned.push(pod);
                    } else if let Err(e) = pods::release(&pod_api, pod.as_ref(), &uid).await {
                        tracing::warn!(pod = %pod.name_any(), %e, "releasing pod");
                    }
                }
                Some(_) => {}
                None if matches && !deleting && pod.metadata.deletion_timestamp.is_none() => {
                    match pods::adopt(&pod_api, pod.as_ref(), pods::controller_ref(rs.as_ref()))
                        .await
                    {
                        Ok(adopted) => owned.push(Arc::new(adopted)),
                        Err(e) if pods::is_not_found(&e) || pods::is_conflict(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                None => {}
            }
        }
        let active: Vec<Arc<Pod>> = owned
            .iter()
            .filter(|p| pods::is_active(p))
            .cloned()
            .collect();

        let mut failure = None;
        if need_sync && !deleting {
            failure = self
                .manage_replicas(k, ns, name, &rs, &active, &pod_api)
                .await
                .err();
        }

        let now = jiff::Timestamp::now();
        let min_ready = Duration::from_secs(spec.min_ready_seconds.unwrap_or(0).max(0) as u64);
        let template_labels = spec
            .template
            .as_ref()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let status = ReplicaSetStatus {
            replicas: active.len() as i32,
            fully_labeled_replicas: Some(
                active
                    .iter()
                    .filter(|p| {
                        let labels = p.metadata.labels.clone().unwrap_or_default();
                        template_labels
                            .iter()
                            .all(|(k, v)| labels.get(k) == Some(v))
                    })
                    .count() as i32,
            ),
            ready_replicas: Some(active.iter().filter(|p| pods::is_ready(p)).count() as i32),
            available_replicas: Some(
                active
                    .iter()
                    .filter(|p| pods::is_available(p, min_ready, now))
                    .count() as i32,
            ),
            observed_generation: rs.metadata.generation,
            conditions: failure_condition(&rs, failure.as_ref()),
            terminating_replicas: None,
        };
        self.update_status(&rs, status).await?;
        if let Some(err) = failure {
            return Err(err);
        }
        // Come back when a ready pod reaches minReadySeconds.
        Ok(active
            .iter()
            .filter_map(|p| pods::until_available(p, min_ready, now))
            .min())
    }

    async fn manage_replicas(
        &self,
        k: &str,
        ns: &str,
        name: &str,
        rs: &ReplicaSet,
        active: &[Arc<Pod>],
        pod_api: &Api<Pod>,
    ) -> Result<(), ControllerError> {
        let want = rs
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1)
            .max(0) as usize;
        if active.len() < want {
            let missing = (want - active.len()).min(BURST);
            let Some(template) = rs.spec.as_ref().and_then(|s| s.template.clone()) else {
                return Err(ControllerError::Invalid(
                    "replicaset has no pod template".into(),
                ));
            };
            self.expectations.expect_creations(k, missing);
            let owner = pods::controller_ref(rs);
            let pod = pods::from_template(&template, owner, ns, &format!("{name}-"));
            // Slow start: batches of 1, 2, 4, ... stop at the first failure.
            let params = PostParams::default();
            let mut created = 0;
            let mut batch = 1;
            while created < missing {
                let n = batch.min(missing - created);
                let results =
                    futures::future::join_all((0..n).map(|_| pod_api.create(&params, &pod))).await;
                let mut error = None;
                for r in results {
                    match r {
                        Ok(p) => self.recorder.normal(
                            rs,
                            "SuccessfulCreate",
                            format!("Created pod: {}", p.name_any()),
                        ),
                        Err(e) => {
                            self.expectations.creation_observed(k);
                            self.recorder.warning(
                                rs,
                                "FailedCreate",
                                format!("Error creating: {e}"),
                            );
                            error = Some(e);
                        }
                    }
                }
                created += n;
                if let Some(e) = error {
                    for _ in created..missing {
                        self.expectations.creation_observed(k);
                    }
                    return Err(e.into());
                }
                batch *= 2;
            }
        } else if active.len() > want {
            let surplus = (active.len() - want).min(BURST);
            let mut ranked = active.to_vec();
            pods::sort_for_deletion(&mut ranked);
            let victims = &ranked[..surplus];
            self.expectations
                .expect_deletions(k, victims.iter().map(|p| key_of(p.as_ref())));
            let params = DeleteParams::default();
            let results = futures::future::join_all(
                victims
                    .iter()
                    .map(|p| pod_api.delete(p.metadata.name.as_deref().unwrap_or(""), &params)),
            )
            .await;
            for (pod, r) in victims.iter().zip(results) {
                match r {
                    Ok(_) => self.recorder.normal(
                        rs,
                        "SuccessfulDelete",
                        format!("Deleted pod: {}", pod.name_any()),
                    ),
                    Err(e) => {
                        if let Err(e) =
                            self.expectations
                                .deletion_failed(k, &key_of(pod.as_ref()), e)
                        {
                            self.recorder.warning(
                                rs,
                                "FailedDelete",
                                format!("Error deleting: {e}"),
                            );
                            return Err(e.into());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn update_status(
        &self,
        rs: &ReplicaSet,
        status: ReplicaSetStatus,
    ) -> Result<(), ControllerError> {
        if rs.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let api: Api<ReplicaSet> =
            Api::namespaced(self.ctx.client.clone(), &rs.namespace().unwrap_or_default());
        let mut updated = rs.clone();
        updated.status = Some(status);
        match api
            .replace_status(&rs.name_any(), &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(()),
            // The newer object is on its way through the watch and will sync again.
            Err(e) if pods::is_conflict(&e) || pods::is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The ReplicaFailure condition: set while creating or deleting pods fails, cleared after.
fn failure_condition(
    rs: &ReplicaSet,
    failure: Option<&ControllerError>,
) -> Option<Vec<ReplicaSetCondition>> {
    let mut conds: Vec<ReplicaSetCondition> = rs
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ != "ReplicaFailure")
        .collect();
    if let Some(err) = failure {
        let previous = rs
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "ReplicaFailure"));
        conds.push(ReplicaSetCondition {
            type_: "ReplicaFailure".into(),
            status: "True".into(),
            reason: Some("FailedCreate".into()),
            message: Some(err.to_string()),
            last_transition_time: previous
                .and_then(|c| c.last_transition_time.clone())
                .or_else(|| Some(Time(jiff::Timestamp::now()))),
        });
    }
    (!conds.is_empty()).then_some(conds)
}
