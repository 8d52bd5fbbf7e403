//! Job controller: runs pods until `completions` succeed (or, Indexed, until every index has),
//! at most `parallelism` at a time; retries failures with exponential backoff up to
//! `backoffLimit` (Indexed: also per index, `per_index`), honours `activeDeadlineSeconds`,
//! `suspend`, `podFailurePolicy` and `successPolicy`, and tracks finished pods with a finalizer
//! so that none is counted twice: a finished pod is first recorded in
//! `uncountedTerminatedPods`, then released, then counted.

mod failure_policy;
mod indexes;
mod per_index;
mod success_policy;

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use component_base::{
    informer::{key_of, split_key, Change, Informer},
    workqueue::WorkQueue,
};
use failure_policy::Verdict;
use k8s_openapi::{
    api::{
        batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods},
        core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod},
    },
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::{
    api::{Api, DeleteParams, Patch, PatchParams, PostParams},
    ResourceExt,
};
use serde_json::json;

use super::{changed, enqueue_changes, Context, ControllerError, Running};
use crate::{
    events::Recorder,
    expectations::Expectations,
    pods::{self, controller_of},
};

pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(360);

/// Failures seen since the last success, for the pod re-creation backoff: per Job, or per
/// index with `backoffLimitPerIndex` (see `backoff_key`).
#[derive(Clone, Copy)]
struct Backoff {
    failures: u32,
    last: Instant,
}

struct Controller {
    ctx: Arc<Context>,
    jobs: Arc<Informer<Job>>,
    pods: Arc<Informer<Pod>>,
    expectations: Expectations,
    backoff: Mutex<HashMap<String, Backoff>>,
    recorder: Recorder,
    queue: WorkQueue<String>,
}

pub fn init(ctx: &Arc<Context>) -> Result<Running, ControllerError> {
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        jobs: ctx.informers.informer::<Job>(),
        pods: ctx.informers.informer::<Pod>(),
        expectations: Expectations::default(),
        backoff: Mutex::default(),
        recorder: ctx.recorder("job-controller"),
        queue: ctx.queue("job"),
    });
    enqueue_changes(&c.jobs, &c.queue);
    let weak = Arc::downgrade(&c);
    c.pods.add_handler(move |change| {
        if let Some(c) = weak.upgrade() {
            c.pod_changed(change);
        }
    });
    Ok(Box::pin(async move {
        c.jobs.wait_synced().await;
        c.pods.wait_synced().await;
        let workers = c.ctx.options.concurrent_job_syncs;
        let queue = c.queue.clone();
        queue
            .run_workers(workers, move |k: String| {
                let c = c.clone();
                async move { c.sync(&k).await }
            })
            .await;
    }))
}

/// The backoff a failure counts toward: Job `k`'s, or with per-index backoff its `index`'s.
fn backoff_key(k: &str, index: Option<i32>) -> String {
    match index {
        Some(i) => format!("{k}#{i}"),
        None => k.to_string(),
    }
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn has_finalizer(pod: &Pod) -> bool {
    pod.finalizers().iter().any(|f| f == TRACKING_FINALIZER)
}

/// Finished for counting: succeeded, failed, or deleted before it could finish.
fn finished(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed") || pod.metadata.deletion_timestamp.is_some()
}

fn condition_true(job: &Job, type_: &str) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

fn set_condition(status: &mut JobStatus, type_: &str, value: &str, reason: &str, message: &str) {
    let conds = status.conditions.get_or_insert_with(Vec::new);
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == type_) {
        if c.status == value && c.reason.as_deref() == Some(reason) {
            return;
        }
        let now = Some(Time(jiff::Timestamp::now()));
        if c.status != value {
            c.last_transition_time = now.clone();
        }
        c.status = value.into();
        c.reason = Some(reason.into());
        c.message = Some(message.into());
        c.last_probe_time = now;
        return;
    }
    let now = Some(Time(jiff::Timestamp::now()));
    conds.push(JobCondition {
        type_: type_.into(),
        status: value.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: now.clone(),
        last_transition_time: now,
    });
}

impl Controller {
    fn pod_changed(&self, change: &Change<Pod>) {
        if let Some(k) = pods::controller_key(&changed(change).metadata, "Job") {
            self.expectations.pod_changed(&k, change);
            self.queue.add(k);
        }
    }

    async fn remove_finalizer(&self, api: &Api<Pod>, pod: &Pod) -> Result<(), ControllerError> {
        let rest: Vec<&String> = pod
            .finalizers()
            .iter()
            .filter(|f| *f != TRACKING_FINALIZER)
            .collect();
        let patch = json!({ "metadata": {
            "finalizers": if rest.is_empty() { serde_json::Value::Null } else { json!(rest) },
            "resourceVersion": pod.metadata.resource_version,
        }});
        match api
            .patch(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if pods::is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn write_status(
        &self,
        api: &Api<Job>,
        job: &Job,
        status: JobStatus,
    ) -> Result<Job, ControllerError> {
        if job.status.as_ref() == Some(&status) {
            return Ok(job.clone());
        }
        let mut updated = job.clone();
        updated.status = Some(status);
        Ok(api
            .replace_status(&job.name_any(), &PostParams::default(), &updated)
            .await?)
    }

    #[tracing::instrument(skip(self), fields(job = %k))]
    async fn sync(&self, k: &str) -> Result<Option<Duration>, ControllerError> {
        let (ns, name) = split_key(k);
        let pod_api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        let job_api: Api<Job> = Api::namespaced(self.ctx.client.clone(), ns);
        let owned_by = |uid: Option<&str>| {
            self.pods
                .list_in(ns)
                .into_iter()
                .filter(|p| {
                    controller_of(&p.metadata).is_some_and(|r| {
                        r.kind == "Job" && r.name == name && uid.is_none_or(|u| u == r.uid)
                    })
                })
                .collect::<Vec<_>>()
        };
        let Some(job) = self.jobs.get(k) else {
            // The Job is gone: its pods must not stay pinned by the tracking finalizer.
            self.expectations.delete(k);
            let per_index = format!("{k}#");
            self.backoff
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|key, _| key != k && !key.starts_with(&per_index));
            for pod in owned_by(None).iter().filter(|p| has_finalizer(p)) {
                self.remove_finalizer(&pod_api, pod).await?;
            }
            return Ok(None);
        };
        let mut job = (*job).clone();
        let pods = owned_by(job.metadata.uid.as_deref());
        if condition_true(&job, "Complete") || condition_true(&job, "Failed") {
            for pod in pods.iter().filter(|p| has_finalizer(p) && finished(p)) {
                self.remove_finalizer(&pod_api, pod).await?;
            }
            return Ok(None);
        }
        if !self.expectations.satisfied(k) {
            return Ok(None);
        }
        let spec = job.spec.clone().unwrap_or_default();
        let indexed = spec.completion_mode.as_deref() == Some("Indexed");
        let per_index_limit = spec.backoff_limit_per_index.filter(|_| indexed);
        let mut status = job.status.clone().unwrap_or_default();

        // 1. Record newly finished pods as uncounted (persisted before their finalizer goes).
        let mut uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let mut fail_reason: Option<(&str, String)> = None;
        let mut ignored = Vec::new();
        let mut failed_keys = Vec::new();
        let mut new_successes = 0;
        for pod in pods.iter().filter(|p| has_finalizer(p) && finished(p)) {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            let known = uncounted
                .succeeded
                .iter()
                .flatten()
                .chain(uncounted.failed.iter().flatten())
                .any(|u| *u == uid);
            if known {
                continue;
            }
            if phase(pod) == "Succeeded" {
                uncounted.succeeded.get_or_insert_with(Vec::new).push(uid);
                new_successes += 1;
                continue;
            }
            match failure_policy::judge(spec.pod_failure_policy.as_ref(), pod) {
                Verdict::Ignore => ignored.push(pod.clone()),
                verdict => {
                    if verdict == Verdict::FailJob {
                        fail_reason = Some(("PodFailurePolicy", format!("Container of pod {} matched a FailJob rule of the pod failure policy", pod.name_any())));
                    }
                    uncounted.failed.get_or_insert_with(Vec::new).push(uid);
                    failed_keys.push(backoff_key(
                        k,
                        per_index_limit.and_then(|_| indexes::of(pod)),
                    ));
                }
            }
        }
        if Some(&uncounted) != status.uncounted_terminated_pods.as_ref()
            && (failed_keys.len() + new_successes) > 0
        {
            status.uncounted_terminated_pods = Some(uncounted.clone());
            job = self.write_status(&job_api, &job, status.clone()).await?;
        }
        self.note_outcomes(k, &failed_keys, new_successes);

        // 2. Release every recorded pod, then 3. count them.
        let recorded: Vec<&String> = uncounted
            .succeeded
            .iter()
            .flatten()
            .chain(uncounted.failed.iter().flatten())
            .collect();
        for pod in pods.iter().filter(|p| has_finalizer(p)) {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            if recorded.contains(&&uid)
                || ignored.iter().any(|i| i.metadata.uid == pod.metadata.uid)
            {
                self.remove_finalizer(&pod_api, pod).await?;
            }
        }
        let mut completed = indexes::parse(status.completed_indexes.as_deref());
        for uid in uncounted.succeeded.iter().flatten() {
            if let Some(i) = pods
                .iter()
                .find(|p| p.metadata.uid.as_ref() == Some(uid))
                .and_then(|p| indexes::of(p))
            {
                completed.insert(i);
            }
        }
        status.succeeded = Some(
            status.succeeded.unwrap_or(0) + uncounted.succeeded.as_ref().map_or(0, Vec::len) as i32,
        );
        status.failed =
            Some(status.failed.unwrap_or(0) + uncounted.failed.as_ref().map_or(0, Vec::len) as i32);
        status.uncounted_terminated_pods = Some(UncountedTerminatedPods::default());
        if indexed {
            status.completed_indexes = Some(indexes::format(&completed));
        }
        let mut failed_indexes = BTreeSet::new();
        if let Some(limit) = per_index_limit {
            failed_indexes = indexes::parse(status.failed_indexes.as_deref());
            failed_indexes.extend(per_index::failed_indexes(
                &pods,
                spec.pod_failure_policy.as_ref(),
                limit,
                spec.completions.unwrap_or(0),
            ));
            status.failed_indexes = Some(indexes::format(&failed_indexes));
        }

        // Decide the job's fate.
        let now = jiff::Timestamp::now();
        let active: Vec<Arc<Pod>> = pods
            .iter()
            .filter(|p| pods::is_active(p))
            .cloned()
            .collect();
        let suspended = spec.suspend.unwrap_or(false);
        if !suspended && status.start_time.is_none() {
            status.start_time = Some(Time(now));
        }
        let succeeded = status.succeeded.unwrap_or(0);
        let failed = status.failed.unwrap_or(0);
        let completions = spec.completions;
        let mut requeue = None;
        if fail_reason.is_none() && failed > spec.backoff_limit.unwrap_or(6) {
            fail_reason = Some((
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit".into(),
            ));
        }
        if let (None, Some(deadline), Some(start)) = (
            &fail_reason,
            spec.active_deadline_seconds,
            status.start_time.as_ref(),
        ) {
            let left = start.0.as_second() + deadline - now.as_second();
            if left <= 0 && !suspended {
                fail_reason = Some((
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline".into(),
                ));
            } else {
                requeue = Some(Duration::from_secs(left.max(1) as u64));
            }
        }
        if let (None, Some(_), Some(c)) = (&fail_reason, per_index_limit, completions) {
            let failed = failed_indexes.len() as i32;
            if spec.max_failed_indexes.is_some_and(|max| failed > max) {
                fail_reason = Some((
                    "MaxFailedIndexesExceeded",
                    "Job has exceeded the specified maximal number of failed indexes".into(),
                ));
            } else if failed > 0 && failed + completed.len() as i32 >= c {
                fail_reason = Some(("FailedIndexes", "Job has failed indexes".into()));
            }
        }
        // What success means: a successPolicy rule holding, else every completion reached.
        const REACHED: &str = "Reached expected number of succeeded pods";
        let by_policy = completions
            .filter(|_| indexed)
            .and_then(|c| success_policy::matched(spec.success_policy.as_ref(), c, &completed));
        let reached = match (indexed, completions) {
            (true, Some(c)) => completed.len() as i32 >= c,
            (_, Some(c)) => succeeded >= c,
            (_, None) => succeeded > 0 && active.is_empty(),
        };
        let success = match by_policy {
            Some(message) => Some(("SuccessPolicy", message)),
            None => reached.then(|| ("CompletionsReached", REACHED.to_string())),
        };

        let mut active_count = active.len() as i32;
        if let Some((reason, message)) = &fail_reason {
            set_condition(&mut status, "FailureTarget", "True", reason, message);
            active_count -= self.delete_pods(k, &job, &pod_api, &active).await?;
            if active_count == 0 {
                set_condition(&mut status, "Failed", "True", reason, message);
                self.recorder.warning(&job, reason, message.clone());
            }
        } else if let Some((reason, message)) = success {
            set_condition(&mut status, "SuccessCriteriaMet", "True", reason, &message);
            active_count -= self.delete_pods(k, &job, &pod_api, &active).await?;
            if active_count == 0 {
                set_condition(&mut status, "Complete", "True", reason, &message);
                status.completion_time = Some(Time(now));
                self.recorder
                    .normal(&job, "Completed", "Job completed".into());
            }
        } else if suspended {
            active_count -= self.delete_pods(k, &job, &pod_api, &active).await?;
            if !condition_true(&job, "Suspended") {
                set_condition(
                    &mut status,
                    "Suspended",
                    "True",
                    "JobSuspended",
                    "Job suspended",
                );
                self.recorder
                    .normal(&job, "Suspended", "Job suspended".into());
            }
        } else {
            if condition_true(&job, "Suspended") {
                set_condition(
                    &mut status,
                    "Suspended",
                    "False",
                    "JobResumed",
                    "Job resumed",
                );
                status.start_time = Some(Time(now));
                self.recorder.normal(&job, "Resumed", "Job resumed".into());
            }
            let finished: BTreeSet<i32> = completed.union(&failed_indexes).copied().collect();
            let (delta, wait) = self
                .manage_pods(k, &job, &pod_api, &pods, &active, succeeded, &finished)
                .await?;
            active_count += delta;
            requeue = match (requeue, wait) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        status.active = Some(active_count);
        status.ready = Some(active.iter().filter(|p| pods::is_ready(p)).count() as i32);
        status.terminating = Some(pods.iter().filter(|p| pods::is_terminating(p)).count() as i32);
        self.write_status(&job_api, &job, status).await?;
        Ok(requeue)
    }

    /// Records this sync's new failures (by backoff key) and successes of Job `k`.
    fn note_outcomes(&self, k: &str, failed_keys: &[String], successes: usize) {
        let mut backoff = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        if successes > 0 {
            backoff.remove(k);
        }
        for key in failed_keys {
            let entry = backoff.entry(key.clone()).or_insert(Backoff {
                failures: 0,
                last: Instant::now(),
            });
            entry.failures += 1;
            entry.last = Instant::now();
        }
    }

    /// How long new pods (under backoff `key`) must still wait after recent failures.
    fn backoff_left(&self, key: &str) -> Option<Duration> {
        let backoff = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        let b = backoff.get(key)?;
        let delay = BACKOFF_BASE
            .checked_mul(2u32.saturating_pow(b.failures.saturating_sub(1)))
            .map_or(BACKOFF_MAX, |d| d.min(BACKOFF_MAX));
        delay.checked_sub(b.last.elapsed()).filter(|d| !d.is_zero())
    }

    /// Creates missing pods and deletes surplus ones; returns the change in active pods and,
    /// when backoff delayed creations, when to look again. `finished` holds the indexes that
    /// need no more pods (succeeded, or failed for good).
    #[allow(clippy::too_many_arguments)]
    async fn manage_pods(
        &self,
        k: &str,
        job: &Job,
        api: &Api<Pod>,
        pods: &[Arc<Pod>],
        active: &[Arc<Pod>],
        succeeded: i32,
        finished: &BTreeSet<i32>,
    ) -> Result<(i32, Option<Duration>), ControllerError> {
        let spec = job.spec.clone().unwrap_or_default();
        let parallelism = spec.parallelism.unwrap_or(1).max(0);
        let indexed = spec.completion_mode.as_deref() == Some("Indexed");
        let done = if indexed {
            finished.len() as i32
        } else {
            succeeded
        };
        let want = match spec.completions {
            Some(c) => parallelism.min(c - done).max(0),
            None if succeeded > 0 => 0,
            None => parallelism,
        };
        let current = active.len() as i32;
        if current > want {
            let mut ranked = active.to_vec();
            pods::sort_for_deletion(&mut ranked);
            let deleted = self
                .delete_pods(k, job, api, &ranked[..(current - want) as usize])
                .await?;
            return Ok((-deleted, None));
        }
        if current == want {
            return Ok((0, None));
        }
        let per_index = spec.backoff_limit_per_index.is_some() && indexed;
        if !per_index {
            if let Some(wait) = self.backoff_left(k) {
                return Ok((0, Some(wait)));
            }
        }
        let mut to_create: Vec<Option<i32>> = Vec::new();
        let mut wait: Option<Duration> = None;
        if indexed {
            let running: BTreeSet<i32> = active.iter().filter_map(|p| indexes::of(p)).collect();
            let completions = spec.completions.unwrap_or(0);
            // With per-index backoff, an index waits for its own backoff, not its siblings'.
            let ready = |i: &i32| {
                let left = per_index
                    .then(|| self.backoff_left(&backoff_key(k, Some(*i))))
                    .flatten();
                wait = match (wait, left) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                left.is_none()
            };
            to_create = (0..completions)
                .filter(|i| !finished.contains(i) && !running.contains(i))
                .filter(ready)
                .take((want - current) as usize)
                .map(Some)
                .collect();
        } else {
            to_create.resize((want - current) as usize, None);
        }
        if to_create.is_empty() {
            return Ok((0, wait));
        }
        self.expectations.expect_creations(k, to_create.len());
        let results = futures::future::join_all(to_create.iter().map(|index| {
            let counts = index
                .filter(|_| per_index)
                .map(|i| per_index::counts_for(pods, spec.pod_failure_policy.as_ref(), i));
            let pod = self.pod_for(job, *index, counts);
            async move { api.create(&PostParams::default(), &pod).await }
        }))
        .await;
        let mut created = 0;
        let mut error = None;
        for r in results {
            match r {
                Ok(p) => {
                    created += 1;
                    self.recorder.normal(
                        job,
                        "SuccessfulCreate",
                        format!("Created pod: {}", p.name_any()),
                    );
                }
                Err(e) => {
                    self.expectations.creation_observed(k);
                    self.recorder
                        .warning(job, "FailedCreate", format!("Error creating: {e}"));
                    error = Some(e);
                }
            }
        }
        if let Some(e) = error {
            return Err(e.into());
        }
        Ok((created, wait))
    }

    /// A pod for `index` (Indexed), starting with the index's failure `counts` (per-index
    /// backoff).
    fn pod_for(&self, job: &Job, index: Option<i32>, counts: Option<(i32, i32)>) -> Pod {
        let template = job
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let name = job.name_any();
        let prefix = match index {
            Some(i) => format!("{name}-{i}-"),
            None => format!("{name}-"),
        };
        let mut pod = pods::from_template(
            &template,
            pods::controller_ref(job),
            &job.namespace().unwrap_or_default(),
            &prefix,
        );
        pod.metadata
            .finalizers
            .get_or_insert_with(Vec::new)
            .push(TRACKING_FINALIZER.into());
        if let Some((failures, ignored)) = counts {
            let annotations = pod
                .metadata
                .annotations
                .get_or_insert_with(Default::default);
            annotations.insert(
                per_index::FAILURE_COUNT_ANNOTATION.into(),
                failures.to_string(),
            );
            annotations.insert(
                per_index::IGNORED_FAILURE_COUNT_ANNOTATION.into(),
                ignored.to_string(),
            );
        }
        if let Some(i) = index {
            pod.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(indexes::INDEX_ANNOTATION.into(), i.to_string());
            pod.metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert(indexes::INDEX_ANNOTATION.into(), i.to_string());
            if let Some(spec) = pod.spec.as_mut() {
                spec.hostname = Some(format!("{name}-{i}"));
                for c in spec
                    .containers
                    .iter_mut()
                    .chain(spec.init_containers.iter_mut().flatten())
                {
                    c.env.get_or_insert_with(Vec::new).push(EnvVar {
                        name: "JOB_COMPLETION_INDEX".into(),
                        value: None,
                        value_from: Some(EnvVarSource {
                            field_ref: Some(ObjectFieldSelector {
                                api_version: None,
                                field_path: format!(
                                    "metadata.annotations['{}']",
                                    indexes::INDEX_ANNOTATION
                                ),
                            }),
                            ..Default::default()
                        }),
                    });
                }
            }
        }
        pod
    }

    /// Deletes `victims`; returns how many deletions were issued.
    async fn delete_pods(
        &self,
        k: &str,
        job: &Job,
        api: &Api<Pod>,
        victims: &[Arc<Pod>],
    ) -> Result<i32, ControllerError> {
        if victims.is_empty() {
            return Ok(0);
        }
        self.expectations
            .expect_deletions(k, victims.iter().map(|p| key_of(p.as_ref())));
        let params = DeleteParams::default();
        let mut deleted = 0;
        for pod in victims {
            match api.delete(&pod.name_any(), &params).await {
                Ok(_) => {
                    deleted += 1;
                    self.recorder.normal(
                        job,
                        "SuccessfulDelete",
                        format!("Deleted pod: {}", pod.name_any()),
                    );
                }
                Err(e) => {
                    self.expectations
                        .deletion_failed(k, &key_of(pod.as_ref()), e)?;
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }
}
