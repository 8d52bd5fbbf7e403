//! The rollout itself: finding or creating the new ReplicaSet, the RollingUpdate and Recreate
//! strategies, scaling (including proportional scaling mid-rollout) and revision-history
//! cleanup.

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use kube::{
    api::{Api, DeleteParams, ObjectMeta, PostParams},
    ResourceExt,
};

use super::{util, Controller};
use crate::{
    controllers::ControllerError,
    pods::{self, controller_of},
};

/// One sync of one deployment: the deployment and its ReplicaSets as they stand, updated in
/// place as this sync changes them.
pub struct Rollout<'a> {
    pub c: &'a Controller,
    pub d: Deployment,
    pub sets: Vec<Arc<ReplicaSet>>,
    pub rs_api: Api<ReplicaSet>,
    pub d_api: Api<Deployment>,
    /// Set when this sync created the new ReplicaSet (for the Progressing reason).
    pub created: Option<String>,
}

impl<'a> Rollout<'a> {
    pub fn new(c: &'a Controller, d: Deployment, sets: Vec<Arc<ReplicaSet>>) -> Rollout<'a> {
        let ns = d.namespace().unwrap_or_default();
        Rollout {
            rs_api: Api::namespaced(c.ctx.client.clone(), &ns),
            d_api: Api::namespaced(c.ctx.client.clone(), &ns),
            c,
            d,
            sets,
            created: None,
        }
    }

    pub fn paused(&self) -> bool {
        self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
    }

    fn template(&self) -> k8s_openapi::api::core::v1::PodTemplateSpec {
        self.d
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default()
    }

    /// The ReplicaSet running the current template (the oldest, if several) and the others.
    pub fn split(&self) -> (Option<Arc<ReplicaSet>>, Vec<Arc<ReplicaSet>>) {
        let template = self.template();
        let mut sorted = self.sets.clone();
        sorted.sort_by_key(|rs| {
            (
                rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
                rs.name_any(),
            )
        });
        let new = sorted
            .iter()
            .find(|rs| {
                rs.spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| util::equal_ignore_hash(t, &template))
            })
            .cloned();
        let old = sorted
            .into_iter()
            .filter(|rs| {
                new.as_ref()
                    .is_none_or(|n| n.metadata.uid != rs.metadata.uid)
            })
            .collect();
        (new, old)
    }

    /// Whether some active ReplicaSet was sized for a different replica count than the
    /// deployment now asks for.
    pub fn is_scaling_event(&self) -> bool {
        let want = util::replicas(&self.d).to_string();
        self.sets
            .iter()
            .filter(|rs| util::spec_replicas(rs) > 0)
            .any(|rs| {
                rs.annotations()
                    .get(util::DESIRED_REPLICAS)
                    .is_some_and(|v| *v != want)
            })
    }

    fn replace_set(&mut self, rs: ReplicaSet) -> Arc<ReplicaSet> {
        let rs = Arc::new(rs);
        self.sets.retain(|s| s.metadata.uid != rs.metadata.uid);
        self.sets.push(rs.clone());
        rs
    }

    /// Finds the new ReplicaSet (bringing its revision up to date) or, when `create`, creates
    /// it; records the new revision on the deployment.
    pub async fn get_all(
        &mut self,
        create: bool,
    ) -> Result<(Option<Arc<ReplicaSet>>, Vec<Arc<ReplicaSet>>), ControllerError> {
        let (existing, old) = self.split();
        let max_old = old
            .iter()
            .map(|rs| util::rs_revision(rs))
            .max()
            .unwrap_or(0);
        let new_revision = max_old + 1;
        let new = match existing {
            Some(rs) => {
                let annotations =
                    util::rs_annotations(&self.d, rs.metadata.annotations.as_ref(), new_revision);
                let min_ready = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
                let rs_min_ready = rs.spec.as_ref().and_then(|s| s.min_ready_seconds);
                if rs.metadata.annotations.as_ref() != Some(&annotations)
                    || min_ready != rs_min_ready
                {
                    let mut updated = (*rs).clone();
                    updated.metadata.annotations = Some(annotations);
                    if let Some(spec) = updated.spec.as_mut() {
                        spec.min_ready_seconds = min_ready;
                    }
                    let updated = self
                        .rs_api
                        .replace(&rs.name_any(), &PostParams::default(), &updated)
                        .await?;
                    Some(self.replace_set(updated))
                } else {
                    Some(rs)
                }
            }
            None if create => Some(self.create_new(new_revision).await?),
            None => None,
        };
        if let Some(rs) = &new {
            self.set_deployment_revision(util::rs_revision(rs)).await?;
        }
        let (_, old) = self.split();
        Ok((new, old))
    }

    async fn set_deployment_revision(&mut self, revision: i64) -> Result<(), ControllerError> {
        if util::revision(self.d.metadata.annotations.as_ref()) == revision {
            return Ok(());
        }
        let mut d = self.d.clone();
        d.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(util::REVISION.into(), revision.to_string());
        self.d = self
            .d_api
            .replace(&d.name_any(), &PostParams::default(), &d)
            .await?;
        Ok(())
    }

    async fn create_new(&mut self, revision: i64) -> Result<Arc<ReplicaSet>, ControllerError> {
        let collisions = self.d.status.as_ref().and_then(|s| s.collision_count);
        let mut template = self.template();
        let hash = pods::template_hash(&template, collisions);
        template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(Default::default)
            .insert(util::HASH_LABEL.into(), hash.clone());
        let mut selector = self
            .d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(util::HASH_LABEL.into(), hash.clone());
        let name = format!("{}-{}", self.d.name_any(), hash);
        let replicas = util::new_rs_replicas(&self.d, &self.sets, 0);
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: self.d.namespace(),
                labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                annotations: Some(util::rs_annotations(&self.d, None, revision)),
                owner_references: Some(vec![pods::controller_ref(&self.d)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                min_ready_seconds: self.d.spec.as_ref().and_then(|s| s.min_ready_seconds),
                selector,
                template: Some(template),
            }),
            status: None,
        };
        match self.rs_api.create(&PostParams::default(), &rs).await {
            Ok(created) => {
                if replicas > 0 {
                    self.c.recorder.normal(
                        &self.d,
                        "ScalingReplicaSet",
                        format!("Scaled up replica set {name} from 0 to {replicas}"),
                    );
                }
                self.created = Some(name);
                Ok(self.replace_set(created))
            }
            Err(e) if pods::is_conflict(&e) => {
                // The name is taken: ours with the same template (a stale cache), or a hash collision.
                let existing = self.rs_api.get(&name).await?;
                let ours = controller_of(&existing.metadata)
                    .is_some_and(|r| Some(&r.uid) == self.d.metadata.uid.as_ref());
                let same = existing
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| util::equal_ignore_hash(t, &self.template()));
                if ours && same {
                    return Ok(self.replace_set(existing));
                }
                let mut d = self.d.clone();
                let status = d.status.get_or_insert_with(Default::default);
                status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
                self.d_api
                    .replace_status(&d.name_any(), &PostParams::default(), &d)
                    .await?;
                Err(ControllerError::Invalid(format!(
                    "hash collision for replica set {name}; retrying with a new collision count"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sets a ReplicaSet's replicas and replica annotations; true when something changed.
    async fn scale(&mut self, rs: &Arc<ReplicaSet>, to: i32) -> Result<bool, ControllerError> {
        let from = util::spec_replicas(rs);
        let want_desired = util::replicas(&self.d).to_string();
        let want_max = (util::replicas(&self.d) + util::max_surge(&self.d)).to_string();
        let annotations = rs.annotations();
        if from == to
            && annotations.get(util::DESIRED_REPLICAS) == Some(&want_desired)
            && annotations.get(util::MAX_REPLICAS) == Some(&want_max)
        {
            return Ok(false);
        }
        let mut updated = (**rs).clone();
        if let Some(spec) = updated.spec.as_mut() {
            spec.replicas = Some(to);
        }
        let a = updated
            .metadata
            .annotations
            .get_or_insert_with(Default::default);
        a.insert(util::DESIRED_REPLICAS.into(), want_desired);
        a.insert(util::MAX_REPLICAS.into(), want_max);
        let updated = self
            .rs_api
            .replace(&rs.name_any(), &PostParams::default(), &updated)
            .await?;
        self.replace_set(updated);
        if from != to {
            let dir = if to > from { "up" } else { "down" };
            self.c.recorder.normal(
                &self.d,
                "ScalingReplicaSet",
                format!(
                    "Scaled {dir} replica set {} from {from} to {to}",
                    rs.name_any()
                ),
            );
        }
        Ok(from != to)
    }

    /// RollingUpdate: surge the new ReplicaSet up, then drain old ones while keeping at least
    /// `replicas - maxUnavailable` pods available.
    pub async fn rollout_rolling(&mut self) -> Result<Option<Duration>, ControllerError> {
        let (new, old) = self.get_all(true).await?;
        let Some(new) = new else {
            return self.sync_rollout_status().await;
        };
        let want = util::replicas(&self.d);
        let current = util::spec_replicas(&new);
        let target = if current > want {
            want
        } else {
            util::new_rs_replicas(&self.d, &self.sets, current)
        };
        if self.scale(&new, target).await? && target != current {
            return self.sync_rollout_status().await;
        }
        if self.reconcile_old(&old).await? {
            return self.sync_rollout_status().await;
        }
        if self.complete() {
            self.cleanup().await?;
        }
        self.sync_rollout_status().await
    }

    async fn reconcile_old(&mut self, old: &[Arc<ReplicaSet>]) -> Result<bool, ControllerError> {
        let old_pods: i32 = util::total_spec(old);
        if old_pods == 0 {
            return Ok(false);
        }
        let (new, _) = self.split();
        let all_pods = util::total_spec(&self.sets);
        let min_available = util::replicas(&self.d) - util::max_unavailable(&self.d);
        let new_unavailable = new
            .as_ref()
            .map_or(0, |n| util::spec_replicas(n) - util::available(n));
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        // First remove old pods that are not available anyway: they cost no availability.
        let mut done = 0;
        let mut sorted = old.to_vec();
        sorted.sort_by_key(|rs| rs.metadata.creation_timestamp.as_ref().map(|t| t.0));
        for rs in &sorted {
            if done >= max_scaled_down {
                break;
            }
            let replicas = util::spec_replicas(rs);
            let unhealthy = replicas - util::available(rs);
            if replicas == 0 || unhealthy <= 0 {
                continue;
            }
            let cut = unhealthy.min(max_scaled_down - done);
            self.scale(rs, replicas - cut).await?;
            done += cut;
        }
        // Then available ones, as far as the availability budget allows.
        let available = util::total_available(&self.sets);
        let mut budget = (available - min_available).min(max_scaled_down - done);
        for rs in &sorted {
            if budget <= 0 {
                break;
            }
            let current = self
                .sets
                .iter()
                .find(|s| s.metadata.uid == rs.metadata.uid)
                .cloned()
                .unwrap_or_else(|| rs.clone());
            let replicas = util::spec_replicas(&current);
            if replicas == 0 {
                continue;
            }
            let cut = replicas.min(budget);
            self.scale(&current, replicas - cut).await?;
            budget -= cut;
            done += cut;
        }
        Ok(done > 0)
    }

    /// Recreate: scale every old ReplicaSet to zero, wait for their pods to go, then bring the
    /// new one up in full.
    pub async fn rollout_recreate(&mut self) -> Result<Option<Duration>, ControllerError> {
        let (_, old) = self.get_all(false).await?;
        let mut scaled = false;
        for rs in old.iter().filter(|rs| util::spec_replicas(rs) > 0) {
            scaled |= self.scale(rs, 0).await?;
        }
        if scaled {
            return self.sync_rollout_status().await;
        }
        let old_uids: Vec<String> = old
            .iter()
            .filter_map(|rs| rs.metadata.uid.clone())
            .collect();
        let old_running = self
            .c
            .pods
            .list_in(&self.d.namespace().unwrap_or_default())
            .iter()
            .filter(|p| {
                !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
            })
            .any(|p| controller_of(&p.metadata).is_some_and(|r| old_uids.contains(&r.uid)));
        if old_running {
            return self.sync_rollout_status().await;
        }
        let (new, _) = self.get_all(true).await?;
        if let Some(new) = new {
            self.scale(&new, util::replicas(&self.d)).await?;
        }
        if self.complete() {
            self.cleanup().await?;
        }
        self.sync_rollout_status().await
    }

    /// Scaling without a rollout (a paused deployment, or a replica change mid-rollout): the
    /// change is spread over the active ReplicaSets in proportion to their size.
    pub async fn sync_scale(&mut self) -> Result<Option<Duration>, ControllerError> {
        let (new, old) = self.get_all(false).await?;
        let want = util::replicas(&self.d);
        let mut active: Vec<Arc<ReplicaSet>> = self
            .sets
            .iter()
            .filter(|rs| util::spec_replicas(rs) > 0)
            .cloned()
            .collect();
        if active.len() <= 1 {
            if let Some(only) = active.first().cloned().or(new.clone()) {
                self.scale(&only, want).await?;
            }
        } else if new
            .as_ref()
            .is_some_and(|n| util::spec_replicas(n) == want && util::available(n) >= want)
        {
            // The new ReplicaSet is saturated: the old ones are no longer needed.
            for rs in old.iter().filter(|rs| util::spec_replicas(rs) > 0) {
                self.scale(rs, 0).await?;
            }
        } else {
            let allowed = want + util::max_surge(&self.d);
            let total = util::total_spec(&active);
            let delta = allowed - total;
            if delta != 0 {
                // Largest first (newest on ties) gets the rounding leftovers.
                active.sort_by(|a, b| {
                    util::spec_replicas(b)
                        .cmp(&util::spec_replicas(a))
                        .then_with(|| {
                            b.metadata
                                .creation_timestamp
                                .as_ref()
                                .map(|t| t.0)
                                .cmp(&a.metadata.creation_timestamp.as_ref().map(|t| t.0))
                        })
                });
                let mut targets: Vec<i32> = active
                    .iter()
                    .map(|rs| {
                        let share = (util::spec_replicas(rs) as f64 * delta as f64
                            / total.max(1) as f64)
                            .trunc() as i32;
                        util::spec_replicas(rs) + share
                    })
                    .collect();
                let leftover = allowed - targets.iter().sum::<i32>();
                if let Some(first) = targets.first_mut() {
                    *first = (*first + leftover).max(0);
                }
                for (rs, to) in active.iter().zip(targets) {
                    self.scale(rs, to.max(0)).await?;
                }
            }
        }
        if self.paused() {
            self.cleanup().await?;
        }
        self.sync_status_only().await
    }

    /// Deletes the oldest fully scaled-down ReplicaSets beyond `revisionHistoryLimit`.
    pub async fn cleanup(&mut self) -> Result<(), ControllerError> {
        let limit = self
            .d
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10)
            .max(0) as usize;
        let (new, _) = self.split();
        let mut dead: Vec<Arc<ReplicaSet>> = self
            .sets
            .iter()
            .filter(|rs| {
                new.as_ref()
                    .is_none_or(|n| n.metadata.uid != rs.metadata.uid)
            })
            .filter(|rs| {
                util::spec_replicas(rs) == 0
                    && rs.status.as_ref().is_none_or(|s| s.replicas == 0)
                    && rs.metadata.deletion_timestamp.is_none()
            })
            .cloned()
            .collect();
        if dead.len() <= limit {
            return Ok(());
        }
        dead.sort_by_key(|rs| {
            (
                util::rs_revision(rs),
                rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
            )
        });
        let excess = dead.len() - limit;
        for rs in dead.into_iter().take(excess) {
            tracing::debug!(replicaset = %rs.name_any(), "deleting old replica set beyond the revision history limit");
            match self
                .rs_api
                .delete(&rs.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => self.sets.retain(|s| s.metadata.uid != rs.metadata.uid),
                Err(e) if pods::is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
