//! StatefulSet controller: pods with stable names (`<set>-<ordinal>`) and hostnames, created in
//! order and each waiting for its predecessor to be Running and Ready (OrderedReady) or all at
//! once (Parallel), removed highest ordinal first, and updated by RollingUpdate from the highest
//! ordinal down to `partition`, one pod at a time. Each template is recorded as a
//! ControllerRevision, so pods below the partition keep the current revision's template.
//! Each `volumeClaimTemplates` entry gives every pod its own PersistentVolumeClaim
//! `<claim>-<set>-<ordinal>`, created before the pod and kept when the pod goes — unless
//! `persistentVolumeClaimRetentionPolicy` says Delete: the set owns the claims (`whenDeleted`),
//! or a pod removed by scaling down owns its claims (`whenScaled`), and the garbage collector
//! removes them with their owner.

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
    time::Duration,
};

use component_base::{
    informer::{key_of, split_key, Informer},
    workqueue::WorkQueue,
};
use k8s_openapi::api::{
    apps::v1::{
        ControllerRevision, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
        StatefulSetStatus,
    },
    core::v1::{
        PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
    },
};
use kube::{
    api::{Api, DeleteParams, PostParams},
    ResourceExt,
};

use super::{changed, enqueue_changes, history, Context, ControllerError, Running};
use crate::{
    events::Recorder,
    expectations::Expectations,
    pods::{self, controller_of},
    selector,
};

const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

struct Controller {
    ctx: Arc<Context>,
    sets: Arc<Informer<StatefulSet>>,
    pods: Arc<Informer<Pod>>,
    revisions: Arc<Informer<ControllerRevision>>,
    expectations: Expectations,
    recorder: Recorder,
    queue: WorkQueue<String>,
}

pub fn init(ctx: &Arc<Context>) -> Result<Running, ControllerError> {
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        sets: ctx.informers.informer::<StatefulSet>(),
        pods: ctx.informers.informer::<Pod>(),
        revisions: ctx.informers.informer::<ControllerRevision>(),
        expectations: Expectations::default(),
        recorder: ctx.recorder("statefulset-controller"),
        queue: ctx.queue("statefulset"),
    });
    enqueue_changes(&c.sets, &c.queue);
    let weak = Arc::downgrade(&c);
    c.pods.add_handler(move |change| {
        let Some(c) = weak.upgrade() else { return };
        if let Some(k) = pods::controller_key(&changed(change).metadata, "StatefulSet") {
            c.expectations.pod_changed(&k, change);
            c.queue.add(k);
        }
    });
    Ok(Box::pin(async move {
        c.sets.wait_synced().await;
        c.pods.wait_synced().await;
        c.revisions.wait_synced().await;
        let queue = c.queue.clone();
        queue
            .run_workers(
                c.ctx.options.concurrent_statefulset_syncs,
                move |k: String| {
                    let c = c.clone();
                    async move { c.sync(&k).await.map(|()| None::<Duration>) }
                },
            )
            .await;
    }))
}

fn ordinal(set: &str, pod: &Pod) -> Option<i32> {
    pod.name_any()
        .strip_prefix(set)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

fn claim_templates(set: &StatefulSet) -> Vec<PersistentVolumeClaim> {
    set.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.clone())
        .unwrap_or_default()
}

/// The claim of pod `ordinal` from `template`: `<claim>-<set>-<ordinal>`, as upstream.
fn claim_name(template: &PersistentVolumeClaim, set: &StatefulSet, ordinal: i32) -> String {
    format!(
        "{}-{}-{ordinal}",
        template.metadata.name.as_deref().unwrap_or_default(),
        set.name_any()
    )
}

/// Whether the retention policy's field `which` says Delete (the default is Retain).
fn retention(
    set: &StatefulSet,
    which: impl Fn(&StatefulSetPersistentVolumeClaimRetentionPolicy) -> Option<&str>,
) -> bool {
    set.spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref())
        .and_then(which)
        == Some("Delete")
}

fn running_and_ready(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        && pods::is_ready(pod)
        && pod.metadata.deletion_timestamp.is_none()
}

fn revision_of(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()?
        .get(history::HASH_LABEL)
        .map(String::as_str)
}

impl Controller {
    fn new_pod(
        &self,
        set: &StatefulSet,
        ordinal: i32,
        revision: &str,
        template: &PodTemplateSpec,
    ) -> Pod {
        let name = format!("{}-{ordinal}", set.name_any());
        let mut pod = pods::from_template(
            template,
            pods::controller_ref(set),
            &set.namespace().unwrap_or_default(),
            "",
        );
        pod.metadata.generate_name = None;
        pod.metadata.name = Some(name.clone());
        let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
        labels.insert(history::HASH_LABEL.into(), revision.into());
        labels.insert(POD_NAME_LABEL.into(), name.clone());
        labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
        if let Some(spec) = pod.spec.as_mut() {
            let volumes = spec.volumes.get_or_insert_with(Vec::new);
            for claim in claim_templates(set) {
                let volume = claim.metadata.name.clone().unwrap_or_default();
                volumes.retain(|v| v.name != volume);
                volumes.push(Volume {
                    name: volume,
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: claim_name(&claim, set, ordinal),
                        read_only: None,
                    }),
                    ..Default::default()
                });
            }
            if volumes.is_empty() {
                spec.volumes = None;
            }
            spec.hostname = Some(name);
            spec.subdomain = set
                .spec
                .as_ref()
                .and_then(|s| s.service_name.clone())
                .filter(|s| !s.is_empty());
        }
        pod
    }

    #[tracing::instrument(skip(self), fields(statefulset = %k))]
    async fn sync(&self, k: &str) -> Result<(), ControllerError> {
        let Some(set) = self.sets.get(k) else {
            self.expectations.delete(k);
            return Ok(());
        };
        if set.metadata.deletion_timestamp.is_some() || !self.expectations.satisfied(k) {
            return Ok(());
        }
        let (ns, name) = split_key(k);
        let spec = set.spec.clone().unwrap_or_default();
        let Some(sel) = selector::from_api(Some(&spec.selector))? else {
            return Ok(());
        };
        let uid = set.metadata.uid.clone().unwrap_or_default();
        let pod_api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        let mut owned: BTreeMap<i32, Arc<Pod>> = BTreeMap::new();
        for pod in self.pods.list_in(ns) {
            let matches = selector::matches(&sel, pod.metadata.labels.as_ref())
                && ordinal(name, &pod).is_some();
            match controller_of(&pod.metadata) {
                Some(r) if r.uid == uid && matches => {
                    if let Some(i) = ordinal(name, &pod) {
                        owned.insert(i, pod);
                    }
                }
                Some(r) if r.uid == uid => pods::release(&pod_api, pod.as_ref(), &uid).await?,
                None if matches && pod.metadata.deletion_timestamp.is_none() => {
                    let adopted =
                        pods::adopt(&pod_api, pod.as_ref(), pods::controller_ref(set.as_ref()))
                            .await?;
                    if let Some(i) = ordinal(name, &adopted) {
                        owned.insert(i, Arc::new(adopted));
                    }
                }
                _ => {}
            }
        }
        let revisions = history::owned_by(self.revisions.list_in(ns), &uid);
        let status = set.status.clone().unwrap_or_default();
        let hash = pods::template_hash(&spec.template, status.collision_count);
        let update_revision = history::ensure(
            &self.ctx.client,
            set.as_ref(),
            &revisions,
            &spec.template,
            &hash,
        )
        .await?;
        let current_revision = status
            .current_revision
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| update_revision.clone());
        let replicas = spec.replicas.unwrap_or(1).max(0);
        let parallel = spec.pod_management_policy.as_deref() == Some("Parallel");
        let rolling = spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.type_.as_deref())
            .unwrap_or("RollingUpdate")
            == "RollingUpdate";
        let partition = spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.rolling_update.as_ref())
            .and_then(|r| r.partition)
            .unwrap_or(0);
        let update_template = spec.template.clone();
        let current_template = revisions
            .iter()
            .find(|r| r.name_any() == current_revision)
            .and_then(|r| history::template_of(r))
            .unwrap_or_else(|| update_template.clone());

        self.converge(&set, k, &pod_api, &owned, replicas, parallel, |i| {
            if rolling && i < partition && current_revision != update_revision {
                (current_revision.clone(), current_template.clone())
            } else {
                (update_revision.clone(), update_template.clone())
            }
        })
        .await?;

        // Rolling update: replace the highest-ordinal outdated pod once every pod is ready.
        let all_ready = (0..replicas).all(|i| owned.get(&i).is_some_and(|p| running_and_ready(p)));
        if rolling && all_ready && self.expectations.satisfied(k) {
            for i in (partition.max(0)..replicas).rev() {
                let Some(pod) = owned.get(&i) else { continue };
                if revision_of(pod) != Some(update_revision.as_str()) {
                    self.delete(&set, k, &pod_api, pod).await?;
                    break;
                }
            }
        }

        let mut live: HashSet<String> = owned
            .values()
            .filter_map(|p| revision_of(p).map(String::from))
            .collect();
        live.extend([current_revision.clone(), update_revision.clone()]);
        history::truncate(
            &self.ctx.client,
            &revisions,
            &live,
            spec.revision_history_limit
                .unwrap_or(history::DEFAULT_HISTORY_LIMIT),
        )
        .await?;

        let count = |f: &dyn Fn(&Pod) -> bool| owned.values().filter(|p| f(p)).count() as i32;
        let updated = count(&|p| revision_of(p) == Some(update_revision.as_str()));
        let current = count(&|p| revision_of(p) == Some(current_revision.as_str()));
        let new_status = StatefulSetStatus {
            observed_generation: set.metadata.generation,
            replicas: owned.len() as i32,
            ready_replicas: Some(count(&pods::is_ready)),
            available_replicas: Some(count(&pods::is_ready)),
            current_replicas: Some(current),
            updated_replicas: Some(updated),
            current_revision: Some(if updated == replicas && owned.len() as i32 == replicas {
                update_revision.clone()
            } else {
                current_revision
            }),
            update_revision: Some(update_revision),
            collision_count: status.collision_count,
            conditions: status.conditions.clone(),
        };
        if set.status.as_ref() != Some(&new_status) {
            let mut s = (*set).clone();
            s.status = Some(new_status);
            let api: Api<StatefulSet> = Api::namespaced(self.ctx.client.clone(), ns);
            match api.replace_status(name, &PostParams::default(), &s).await {
                Ok(_) => {}
                Err(e) if pods::is_conflict(&e) || pods::is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Creates missing ordinals and removes surplus ones, in order unless `parallel`.
    #[allow(clippy::too_many_arguments)]
    async fn converge(
        &self,
        set: &StatefulSet,
        k: &str,
        api: &Api<Pod>,
        owned: &BTreeMap<i32, Arc<Pod>>,
        replicas: i32,
        parallel: bool,
        revision_for: impl Fn(i32) -> (String, PodTemplateSpec),
    ) -> Result<(), ControllerError> {
        for i in 0..replicas {
            match owned.get(&i) {
                Some(pod)
                    if matches!(
                        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                        Some("Failed" | "Succeeded")
                    ) =>
                {
                    // A finished pod of a set is recreated under the same name.
                    self.delete(set, k, api, pod).await?;
                    if !parallel {
                        return Ok(());
                    }
                }
                Some(pod) => {
                    if !parallel && !running_and_ready(pod) {
                        return Ok(());
                    }
                }
                None => {
                    self.ensure_claims(set, i).await?;
                    let (revision, template) = revision_for(i);
                    let pod = self.new_pod(set, i, &revision, &template);
                    self.expectations.expect_creations(k, 1);
                    match api.create(&PostParams::default(), &pod).await {
                        Ok(_) => self.recorder.normal(
                            set,
                            "SuccessfulCreate",
                            format!(
                                "create Pod {} in StatefulSet {} successful",
                                pod.name_any(),
                                set.name_any()
                            ),
                        ),
                        Err(e) => {
                            self.expectations.creation_observed(k);
                            if !pods::is_conflict(&e) {
                                self.recorder.warning(
                                    set,
                                    "FailedCreate",
                                    format!(
                                        "create Pod {} in StatefulSet {} failed error: {e}",
                                        pod.name_any(),
                                        set.name_any()
                                    ),
                                );
                                return Err(e.into());
                            }
                        }
                    }
                    if !parallel {
                        return Ok(());
                    }
                }
            }
        }
        // Surplus ordinals, highest first; in order only once the rest are ready.
        let surplus: Vec<&Arc<Pod>> = owned.range(replicas..).map(|(_, p)| p).rev().collect();
        for pod in surplus {
            if pod.metadata.deletion_timestamp.is_some() {
                if !parallel {
                    return Ok(());
                }
                continue;
            }
            if retention(set, |p| p.when_scaled.as_deref()) {
                self.hand_claims_to(set, pod).await?;
            }
            self.delete(set, k, api, pod).await?;
            if !parallel {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Makes `pod` (removed by scaling down) an owner of its claims, so they go with it.
    async fn hand_claims_to(&self, set: &StatefulSet, pod: &Pod) -> Result<(), ControllerError> {
        let Some(ordinal) = ordinal(&set.name_any(), pod) else {
            return Ok(());
        };
        let api: Api<PersistentVolumeClaim> = Api::namespaced(
            self.ctx.client.clone(),
            &set.namespace().unwrap_or_default(),
        );
        let mut owner = pods::controller_ref(pod);
        owner.controller = None;
        owner.block_owner_deletion = None;
        for template in claim_templates(set) {
            let name = claim_name(&template, set, ordinal);
            let Some(mut claim) = api.get_opt(&name).await? else {
                continue;
            };
            let refs = claim.metadata.owner_references.get_or_insert_with(Vec::new);
            if refs.iter().any(|r| r.uid == owner.uid) {
                continue;
            }
            refs.push(owner.clone());
            api.replace(&name, &PostParams::default(), &claim).await?;
        }
        Ok(())
    }

    /// Creates the claims pod `ordinal` mounts, unless they exist. With the retention policy
    /// `whenDeleted: Delete` the set owns them, so deleting the set removes them.
    async fn ensure_claims(&self, set: &StatefulSet, ordinal: i32) -> Result<(), ControllerError> {
        let templates = claim_templates(set);
        if templates.is_empty() {
            return Ok(());
        }
        let ns = set.namespace().unwrap_or_default();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.ctx.client.clone(), &ns);
        let selector_labels = set
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.clone())
            .unwrap_or_default();
        let owned_by_set = retention(set, |p| p.when_deleted.as_deref());
        for template in templates {
            let name = claim_name(&template, set, ordinal);
            let mut claim = template.clone();
            claim.metadata.name = Some(name.clone());
            claim.metadata.namespace = Some(ns.clone());
            claim.status = None;
            claim
                .metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .extend(selector_labels.clone());
            if owned_by_set {
                let mut owner = pods::controller_ref(set);
                owner.controller = None;
                owner.block_owner_deletion = None;
                claim.metadata.owner_references = Some(vec![owner]);
            }
            match api.create(&PostParams::default(), &claim).await {
                Ok(_) => self.recorder.normal(
                    set,
                    "SuccessfulCreate",
                    format!(
                        "create Claim {name} Pod {}-{ordinal} in StatefulSet {} success",
                        set.name_any(),
                        set.name_any()
                    ),
                ),
                Err(e) if pods::is_conflict(&e) => {}
                Err(e) => {
                    self.recorder.warning(
                        set,
                        "FailedCreate",
                        format!(
                            "create Claim {name} for Pod {}-{ordinal} in StatefulSet {} failed error: {e}",
                            set.name_any(),
                            set.name_any()
                        ),
                    );
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    async fn delete(
        &self,
        set: &StatefulSet,
        k: &str,
        api: &Api<Pod>,
        pod: &Pod,
    ) -> Result<(), ControllerError> {
        self.expectations.expect_deletions(k, [key_of(pod)]);
        match api.delete(&pod.name_any(), &DeleteParams::default()).await {
            Ok(_) => {
                self.recorder.normal(
                    set,
                    "SuccessfulDelete",
                    format!(
                        "delete Pod {} in StatefulSet {} successful",
                        pod.name_any(),
                        set.name_any()
                    ),
                );
                Ok(())
            }
            Err(e) => Ok(self.expectations.deletion_failed(k, &key_of(pod), e)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ordinals_come_from_stable_names() {
        let pod = |name: &str| -> Pod {
            serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap()
        };
        assert_eq!(ordinal("web", &pod("web-3")), Some(3));
        assert_eq!(ordinal("web", &pod("web-x")), None);
        assert_eq!(ordinal("web", &pod("webby-1")), None);
    }

    #[test]
    fn claims_are_named_per_ordinal() {
        let set: StatefulSet = serde_json::from_value(json!({
            "metadata": { "name": "web" },
            "spec": {
                "selector": { "matchLabels": { "app": "web" } },
                "template": { "spec": { "containers": [] } },
                "volumeClaimTemplates": [{ "metadata": { "name": "data" } }],
            },
        }))
        .unwrap();
        let templates = claim_templates(&set);
        assert_eq!(claim_name(&templates[0], &set, 2), "data-web-2");
    }
}
