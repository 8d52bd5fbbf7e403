//! TTL-after-finished controller: deletes a finished Job (Complete or Failed) once
//! `ttlSecondsAfterFinished` has passed since it finished, taking its pods with it.

use std::{sync::Arc, time::Duration};

use component_base::informer::{key_of, split_key, Change, Informer};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};

use super::{Context, ControllerError, Running};
use crate::pods;

pub fn init(ctx: &Arc<Context>) -> Result<Running, ControllerError> {
    let jobs = ctx.informers.informer::<Job>();
    let queue = ctx.queue::<String>("ttl_jobs_to_delete");
    let q = queue.clone();
    jobs.add_handler(move |change| {
        if let Change::Added(j) | Change::Updated { new: j, .. } = change {
            if j.spec
                .as_ref()
                .and_then(|s| s.ttl_seconds_after_finished)
                .is_some()
            {
                q.add(key_of(j.as_ref()));
            }
        }
    });
    let ctx = ctx.clone();
    Ok(Box::pin(async move {
        jobs.wait_synced().await;
        queue
            .run_workers(5, move |k: String| {
                let (ctx, jobs) = (ctx.clone(), jobs.clone());
                async move { sync(&ctx, &jobs, &k).await }
            })
            .await;
    }))
}

/// When a finished job with a TTL expires.
fn expires_at(job: &Job) -> Option<jiff::Timestamp> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let finished = job
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")?;
    let at = finished.last_transition_time.as_ref()?.0;
    at.checked_add(jiff::SignedDuration::from_secs(i64::from(ttl)))
        .ok()
}

#[tracing::instrument(skip(ctx, jobs), fields(job = %k))]
async fn sync(
    ctx: &Context,
    jobs: &Informer<Job>,
    k: &str,
) -> Result<Option<Duration>, ControllerError> {
    let Some(job) = jobs.get(k) else {
        return Ok(None);
    };
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let Some(at) = expires_at(&job) else {
        return Ok(None);
    };
    let left = at.as_millisecond() - jiff::Timestamp::now().as_millisecond();
    if left > 0 {
        return Ok(Some(Duration::from_millis(left as u64)));
    }
    let (ns, name) = split_key(k);
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: Some(Preconditions {
            uid: job.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    tracing::info!("deleting finished job whose TTL expired");
    match api.delete(name, &params).await {
        Ok(_) => Ok(None),
        Err(e) if pods::is_not_found(&e) || pods::is_conflict(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
