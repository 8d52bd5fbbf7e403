//! CronJob controller: creates a Job for each time the schedule (in `timeZone`) comes due,
//! honouring `concurrencyPolicy` (Allow, Forbid, Replace), `startingDeadlineSeconds` and
//! `suspend`, tracks active Jobs and the last scheduled and successful times in status, and
//! trims finished Jobs to the history limits.

mod schedule;

use std::{sync::Arc, time::Duration};

use component_base::{
    informer::{key_of, split_key, Change, Informer},
    workqueue::WorkQueue,
};
use jiff::{tz::TimeZone, Timestamp};
use k8s_openapi::{
    api::{
        batch::v1::{CronJob, Job},
        core::v1::ObjectReference,
    },
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
};
use kube::{
    api::{Api, DeleteParams, PostParams},
    Resource, ResourceExt,
};
use schedule::Schedule;

use super::{changed, Context, ControllerError, Running};
use crate::{
    events::Recorder,
    pods::{self, controller_of},
};

const SCHEDULED_AT: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// More missed times than this means the clock or the controller was far off.
const MAX_MISSED: usize = 100;

struct Controller {
    ctx: Arc<Context>,
    cronjobs: Arc<Informer<CronJob>>,
    jobs: Arc<Informer<Job>>,
    recorder: Recorder,
    queue: WorkQueue<String>,
}

pub fn init(ctx: &Arc<Context>) -> Result<Running, ControllerError> {
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        cronjobs: ctx.informers.informer::<CronJob>(),
        jobs: ctx.informers.informer::<Job>(),
        recorder: ctx.recorder("cronjob-controller"),
        queue: ctx.queue("cronjob"),
    });
    let q = c.queue.clone();
    c.cronjobs.add_handler(move |change| {
        if let Change::Added(cj) | Change::Updated { new: cj, .. } = change {
            q.add(key_of(cj.as_ref()));
        }
    });
    let q = c.queue.clone();
    c.jobs.add_handler(move |change| {
        if let Some(k) = pods::controller_key(&changed(change).metadata, "CronJob") {
            q.add(k);
        }
    });
    Ok(Box::pin(async move {
        c.cronjobs.wait_synced().await;
        c.jobs.wait_synced().await;
        let queue = c.queue.clone();
        queue
            .run_workers(c.ctx.options.concurrent_cron_job_syncs, move |k: String| {
                let c = c.clone();
                async move { c.sync(&k).await }
            })
            .await;
    }))
}

fn finished(job: &Job) -> Option<&'static str> {
    let conds = job.status.as_ref()?.conditions.as_ref()?;
    conds
        .iter()
        .find(|c| c.status == "True" && (c.type_ == "Complete" || c.type_ == "Failed"))
        .map(|c| {
            if c.type_ == "Complete" {
                "Complete"
            } else {
                "Failed"
            }
        })
}

fn reference(job: &Job) -> ObjectReference {
    let mut r = job.object_ref(&());
    r.field_path = None;
    r
}

/// The latest schedule time in (`earliest`, `now`] and how many were missed.
fn most_recent(
    schedule: &Schedule,
    tz: &TimeZone,
    earliest: Timestamp,
    now: Timestamp,
) -> (Option<Timestamp>, usize) {
    let mut latest = None;
    let mut count = 0;
    let mut t = earliest;
    while let Some(next) = schedule.next(t, tz) {
        if next > now {
            break;
        }
        latest = Some(next);
        count += 1;
        t = next;
        if count > MAX_MISSED * 10 {
            break;
        }
    }
    (latest, count)
}

impl Controller {
    #[tracing::instrument(skip(self), fields(cronjob = %k))]
    async fn sync(&self, k: &str) -> Result<Option<Duration>, ControllerError> {
        let Some(cj) = self.cronjobs.get(k) else {
            return Ok(None);
        };
        let (ns, _) = split_key(k);
        let job_api: Api<Job> = Api::namespaced(self.ctx.client.clone(), ns);
        let cj_api: Api<CronJob> = Api::namespaced(self.ctx.client.clone(), ns);
        let uid = cj.metadata.uid.clone().unwrap_or_default();
        let mut owned: Vec<Arc<Job>> = self
            .jobs
            .list_in(ns)
            .into_iter()
            .filter(|j| controller_of(&j.metadata).is_some_and(|r| r.uid == uid))
            .collect();
        owned.sort_by_key(|j| j.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let spec = cj.spec.clone().unwrap_or_default();
        let mut status = cj.status.clone().unwrap_or_default();

        // Active jobs, and what the finished ones tell us.
        let previously_active: Vec<String> = status
            .active
            .iter()
            .flatten()
            .filter_map(|r| r.uid.clone())
            .collect();
        let mut active = Vec::new();
        for job in &owned {
            match finished(job) {
                None => active.push(reference(job)),
                Some(how) => {
                    if previously_active
                        .iter()
                        .any(|u| Some(u) == job.metadata.uid.as_ref())
                    {
                        self.recorder.normal(
                            cj.as_ref(),
                            "SawCompletedJob",
                            format!("Saw completed job: {}, condition: {how}", job.name_any()),
                        );
                    }
                    if how == "Complete" {
                        let done = job.status.as_ref().and_then(|s| s.completion_time.clone());
                        if done.as_ref().map(|t| t.0)
                            > status.last_successful_time.as_ref().map(|t| t.0)
                        {
                            status.last_successful_time = done;
                        }
                    }
                }
            }
        }
        status.active = (!active.is_empty()).then_some(active);
        self.trim_history(&cj, &job_api, &owned).await?;

        let mut requeue = None;
        if cj.metadata.deletion_timestamp.is_none() && !spec.suspend.unwrap_or(false) {
            let tz = match spec.time_zone.as_deref() {
                Some(name) => TimeZone::get(name).map_err(|e| {
                    ControllerError::Invalid(format!("unknown time zone {name:?}: {e}"))
                })?,
                None => TimeZone::system(),
            };
            let schedule = Schedule::parse(&spec.schedule)
                .map_err(|e| ControllerError::Invalid(e.to_string()))?;
            let now = Timestamp::now();
            let mut earliest = status
                .last_schedule_time
                .as_ref()
                .or(cj.metadata.creation_timestamp.as_ref())
                .map_or(now, |t| t.0);
            if let Some(deadline) = spec.starting_deadline_seconds {
                let window = now
                    .checked_sub(jiff::SignedDuration::from_secs(deadline))
                    .unwrap_or(now);
                earliest = earliest.max(window);
            }
            let (due, missed) = most_recent(&schedule, &tz, earliest, now);
            if missed > MAX_MISSED {
                self.recorder.warning(cj.as_ref(), "TooManyMissedTimes", format!("too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"));
            }
            if let Some(due) = due {
                self.run_once(&cj, &job_api, &mut status, due, &tz).await?;
            }
            requeue = schedule.next(now, &tz).map(|next| {
                Duration::from_millis(
                    (next.as_millisecond() - now.as_millisecond()).max(0) as u64 + 100,
                )
            });
        }
        if cj.status.as_ref() != Some(&status) {
            let mut updated = (*cj).clone();
            updated.status = Some(status);
            match cj_api
                .replace_status(&cj.name_any(), &PostParams::default(), &updated)
                .await
            {
                Ok(_) => {}
                Err(e) if pods::is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(requeue)
    }

    /// Starts the job for schedule time `due`, unless the concurrency policy forbids it.
    async fn run_once(
        &self,
        cj: &CronJob,
        api: &Api<Job>,
        status: &mut k8s_openapi::api::batch::v1::CronJobStatus,
        due: Timestamp,
        tz: &TimeZone,
    ) -> Result<(), ControllerError> {
        let spec = cj.spec.clone().unwrap_or_default();
        let name = format!("{}-{}", cj.name_any(), due.as_second() / 60);
        let active = status.active.clone().unwrap_or_default();
        if active
            .iter()
            .any(|r| r.name.as_deref() == Some(name.as_str()))
        {
            return Ok(());
        }
        match spec.concurrency_policy.as_deref() {
            Some("Forbid") if !active.is_empty() => {
                tracing::debug!(job = %name, "not starting: a previous run is still active");
                return Ok(());
            }
            Some("Replace") => {
                for r in &active {
                    let Some(job) = r.name.as_deref() else {
                        continue;
                    };
                    match api.delete(job, &DeleteParams::background()).await {
                        Ok(_) => self.recorder.normal(
                            cj,
                            "SuccessfulDelete",
                            format!("Deleted job {job}"),
                        ),
                        Err(e) if pods::is_not_found(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                status.active = None;
            }
            _ => {}
        }
        let template = spec.job_template;
        let tmeta = template.metadata.unwrap_or_default();
        let mut annotations = tmeta.annotations.unwrap_or_default();
        annotations.insert(
            SCHEDULED_AT.into(),
            due.to_zoned(tz.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string(),
        );
        let job = Job {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: cj.namespace(),
                labels: tmeta.labels,
                annotations: Some(annotations),
                owner_references: Some(vec![pods::controller_ref(cj)]),
                ..Default::default()
            },
            spec: Some(template.spec.unwrap_or_default()),
            status: None,
        };
        let created = match api.create(&PostParams::default(), &job).await {
            Ok(created) => {
                self.recorder
                    .normal(cj, "SuccessfulCreate", format!("Created job {name}"));
                created
            }
            // Already started for this time (a previous sync whose status write was lost).
            Err(e) if pods::is_conflict(&e) => api.get(&name).await?,
            Err(e) => {
                self.recorder
                    .warning(cj, "FailedCreate", format!("Error creating job: {e}"));
                return Err(e.into());
            }
        };
        status
            .active
            .get_or_insert_with(Vec::new)
            .push(reference(&created));
        status.last_schedule_time = Some(Time(due));
        Ok(())
    }

    /// Deletes the oldest finished jobs beyond the successful and failed history limits.
    async fn trim_history(
        &self,
        cj: &CronJob,
        api: &Api<Job>,
        owned: &[Arc<Job>],
    ) -> Result<(), ControllerError> {
        let spec = cj.spec.clone().unwrap_or_default();
        for (kind, limit) in [
            ("Complete", spec.successful_jobs_history_limit.unwrap_or(3)),
            ("Failed", spec.failed_jobs_history_limit.unwrap_or(1)),
        ] {
            let done: Vec<&Arc<Job>> = owned
                .iter()
                .filter(|j| finished(j) == Some(kind) && j.metadata.deletion_timestamp.is_none())
                .collect();
            let excess = done.len().saturating_sub(limit.max(0) as usize);
            for job in done.into_iter().take(excess) {
                match api
                    .delete(&job.name_any(), &DeleteParams::background())
                    .await
                {
                    Ok(_) => self.recorder.normal(
                        cj,
                        "SuccessfulDelete",
                        format!("Deleted job {}", job.name_any()),
                    ),
                    Err(e) if pods::is_not_found(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_missed_times_and_picks_the_latest() {
        let s = Schedule::parse("*/10 * * * *").unwrap();
        let t = |x: &str| x.parse::<Timestamp>().unwrap();
        let (latest, missed) = most_recent(
            &s,
            &TimeZone::UTC,
            t("2026-01-01T00:05:00Z"),
            t("2026-01-01T00:45:00Z"),
        );
        assert_eq!(latest, Some(t("2026-01-01T00:40:00Z")));
        assert_eq!(missed, 4);
        assert_eq!(
            most_recent(
                &s,
                &TimeZone::UTC,
                t("2026-01-01T00:41:00Z"),
                t("2026-01-01T00:45:00Z")
            ),
            (None, 0)
        );
    }
}
