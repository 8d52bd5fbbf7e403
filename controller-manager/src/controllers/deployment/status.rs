//! Deployment status: replica counts summed over the ReplicaSets, and the Available and
//! Progressing conditions (with ProgressDeadlineExceeded once progressDeadlineSeconds pass
//! without progress, and DeploymentPaused/DeploymentResumed around pauses).

use std::time::Duration;

use k8s_openapi::{
    api::apps::v1::{DeploymentCondition, DeploymentStatus},
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::{api::PostParams, ResourceExt};

use super::{rollout::Rollout, util};
use crate::{controllers::ControllerError, pods};

const AVAILABLE: &str = "Available";
const PROGRESSING: &str = "Progressing";

fn condition(status: &DeploymentStatus, type_: &str) -> Option<DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
}

/// Sets a condition, keeping its transition time when the status did not change and its
/// update time when nothing changed at all (unless `refresh`: progress was made).
fn set_condition(
    status: &mut DeploymentStatus,
    type_: &str,
    value: &str,
    reason: &str,
    message: String,
) {
    upsert_condition(status, type_, value, reason, message, false)
}

fn upsert_condition(
    status: &mut DeploymentStatus,
    type_: &str,
    value: &str,
    reason: &str,
    message: String,
    refresh: bool,
) {
    let now = Time(jiff::Timestamp::now());
    let previous = condition(status, type_);
    let unchanged = previous.as_ref().is_some_and(|c| {
        c.status == value
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message.as_str())
    });
    if unchanged && !refresh {
        return;
    }
    let transition = match &previous {
        Some(c) if c.status == value => c.last_transition_time.clone(),
        _ => Some(now.clone()),
    };
    let conds = status.conditions.get_or_insert_with(Vec::new);
    conds.retain(|c| c.type_ != type_);
    conds.push(DeploymentCondition {
        type_: type_.into(),
        status: value.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(now),
        last_transition_time: transition,
    });
}

impl Rollout<'_> {
    /// Counts from the ReplicaSets, keeping the existing conditions.
    fn calculate(&self) -> DeploymentStatus {
        let (new, _) = self.split();
        let sum = |f: &dyn Fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> i32| -> i32 {
            self.sets
                .iter()
                .filter_map(|rs| rs.status.as_ref())
                .map(f)
                .sum()
        };
        let available = sum(&|s| s.available_replicas.unwrap_or(0));
        let previous = self.d.status.clone().unwrap_or_default();
        let mut status = DeploymentStatus {
            observed_generation: self.d.metadata.generation,
            replicas: Some(sum(&|s| s.replicas)),
            updated_replicas: Some(
                new.as_ref()
                    .and_then(|n| n.status.as_ref())
                    .map_or(0, |s| s.replicas),
            ),
            ready_replicas: Some(sum(&|s| s.ready_replicas.unwrap_or(0))),
            available_replicas: Some(available),
            unavailable_replicas: Some((util::replicas(&self.d) - available).max(0)),
            collision_count: previous.collision_count,
            conditions: previous.conditions.clone(),
            terminating_replicas: None,
        };
        let min_available = util::replicas(&self.d) - util::max_unavailable(&self.d);
        if available >= min_available {
            set_condition(
                &mut status,
                AVAILABLE,
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
            );
        } else {
            set_condition(
                &mut status,
                AVAILABLE,
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
            );
        }
        status
    }

    /// Every desired replica is updated and available, and the spec has been observed.
    pub fn complete(&self) -> bool {
        let s = self.calculate();
        let want = util::replicas(&self.d);
        s.updated_replicas == Some(want)
            && s.replicas == Some(want)
            && s.available_replicas == Some(want)
            && s.observed_generation >= self.d.metadata.generation
    }

    async fn write(&mut self, status: DeploymentStatus) -> Result<(), ControllerError> {
        if self.d.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut d = self.d.clone();
        d.status = Some(status);
        match self
            .d_api
            .replace_status(&d.name_any(), &PostParams::default(), &d)
            .await
        {
            Ok(updated) => {
                self.d = updated;
                Ok(())
            }
            // A newer deployment is on its way through the watch and will sync again.
            Err(e) if pods::is_conflict(&e) || pods::is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn sync_status_only(&mut self) -> Result<Option<Duration>, ControllerError> {
        let status = self.calculate();
        self.write(status).await?;
        Ok(None)
    }

    /// Status plus the Progressing condition; asks to be synced again when the progress
    /// deadline would pass.
    pub async fn sync_rollout_status(&mut self) -> Result<Option<Duration>, ControllerError> {
        let mut status = self.calculate();
        let previous = self.d.status.clone().unwrap_or_default();
        let deadline = self
            .d
            .spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds);
        let (new, _) = self.split();
        let new_name = new.as_ref().map(|n| n.name_any()).unwrap_or_default();
        let mut requeue = None;
        if let Some(deadline) = deadline.filter(|_| !self.paused()) {
            let current = condition(&status, PROGRESSING);
            let progressed = status.updated_replicas > previous.updated_replicas
                || status.ready_replicas > previous.ready_replicas
                || status.available_replicas > previous.available_replicas
                || status.replicas.unwrap_or(0) - status.updated_replicas.unwrap_or(0)
                    < previous.replicas.unwrap_or(0) - previous.updated_replicas.unwrap_or(0);
            if self.complete() {
                set_condition(
                    &mut status,
                    PROGRESSING,
                    "True",
                    "NewReplicaSetAvailable",
                    format!("ReplicaSet \"{new_name}\" has successfully progressed."),
                );
            } else if let Some(created) = &self.created {
                set_condition(
                    &mut status,
                    PROGRESSING,
                    "True",
                    "NewReplicaSetCreated",
                    format!("Created new replica set \"{created}\""),
                );
            } else if progressed || current.is_none() {
                upsert_condition(
                    &mut status,
                    PROGRESSING,
                    "True",
                    "ReplicaSetUpdated",
                    format!("ReplicaSet \"{new_name}\" is progressing."),
                    true,
                );
            } else if current
                .as_ref()
                .is_some_and(|c| c.reason.as_deref() != Some("ProgressDeadlineExceeded"))
            {
                let since = current
                    .as_ref()
                    .and_then(|c| c.last_update_time.as_ref())
                    .map_or(0, |t| t.0.as_second());
                let left = since + i64::from(deadline) - jiff::Timestamp::now().as_second();
                if left <= 0 {
                    set_condition(
                        &mut status,
                        PROGRESSING,
                        "False",
                        "ProgressDeadlineExceeded",
                        format!("ReplicaSet \"{new_name}\" has timed out progressing."),
                    );
                    self.c.recorder.warning(
                        &self.d,
                        "ProgressDeadlineExceeded",
                        format!("ReplicaSet \"{new_name}\" has timed out progressing."),
                    );
                } else {
                    requeue = Some(Duration::from_secs(left as u64 + 1));
                }
            }
            if !self.complete()
                && requeue.is_none()
                && condition(&status, PROGRESSING).is_some_and(|c| c.status == "True")
            {
                requeue = Some(Duration::from_secs(
                    u64::try_from(deadline).unwrap_or(600) + 1,
                ));
            }
        }
        self.write(status).await?;
        Ok(requeue)
    }

    /// Marks the Progressing condition paused or resumed as `spec.paused` changes.
    pub async fn check_paused_conditions(&mut self) -> Result<(), ControllerError> {
        if self
            .d
            .spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            .is_none()
        {
            return Ok(());
        }
        let mut status = self.d.status.clone().unwrap_or_default();
        let reason = condition(&status, PROGRESSING).and_then(|c| c.reason);
        let paused_now = reason.as_deref() == Some("DeploymentPaused");
        if self.paused() && !paused_now {
            set_condition(
                &mut status,
                PROGRESSING,
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused".into(),
            );
        } else if !self.paused() && paused_now {
            set_condition(
                &mut status,
                PROGRESSING,
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed".into(),
            );
        } else {
            return Ok(());
        }
        self.write(status).await
    }
}
