//! The scheduling loop: pop a pod, run its profile against a snapshot of the cache, assume it on
//! the chosen node and bind asynchronously (so the next pod is scheduled while the binding is in
//! flight), or record why it fits nowhere (event, PodScheduled condition, explanation), try
//! preemption, and requeue it.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
    time::Instant,
};

use component_base::event_recorder::{EventRecorder, EventType};
use k8s_openapi::api::{core::v1::Pod, policy::v1::PodDisruptionBudget};
use kube::{
    api::{Api, DeleteParams, Patch, PatchParams, PostParams},
    Client,
};
use serde_json::json;

use crate::{
    cache::Cache,
    explain::{self, Explanation},
    framework::{
        profile::{Profile, ScheduleError},
        ClusterEvent, NodeInfo, PodInfo,
    },
    metrics::Metrics,
    preemption::{self, Outcome},
    queue::{QueuedPod, SchedulingQueue},
};

/// Bindings sent concurrently. When all are in flight the scheduling thread waits for one to
/// finish, instead of piling up binding tasks (and memory) behind a saturated apiserver.
const MAX_BINDINGS_IN_FLIGHT: usize = 32;

/// How many rejected nodes the FailedScheduling event lists by name.
const EVENT_SUMMARY_NODES: usize = 5;

pub struct Scheduler {
    pub cache: Mutex<Cache>,
    pub queue: SchedulingQueue,
    pub profiles: HashMap<String, Arc<Profile>>,
    pub explanations: explain::Store,
    pub metrics: Arc<Metrics>,
    pub pdbs: Mutex<HashMap<String, PodDisruptionBudget>>,
    /// Plugin name -> the cluster events that can make a pod it rejected schedulable.
    plugin_events: HashMap<&'static str, &'static [ClusterEvent]>,
    client: Client,
    recorder: Arc<EventRecorder>,
    runtime: tokio::runtime::Handle,
    binding_slots: Arc<tokio::sync::Semaphore>,
}

impl Scheduler {
    pub fn new(
        client: Client,
        profiles: Vec<Profile>,
        queue: SchedulingQueue,
        metrics: Arc<Metrics>,
        recorder: Arc<EventRecorder>,
        runtime: tokio::runtime::Handle,
    ) -> Scheduler {
        let mut plugin_events = HashMap::new();
        for p in &profiles {
            for plugin in &p.plugins {
                plugin_events.insert(plugin.name(), plugin.events());
            }
        }
        Scheduler {
            cache: Mutex::new(Cache::default()),
            queue,
            profiles: profiles
                .into_iter()
                .map(|p| (p.name.clone(), Arc::new(p)))
                .collect(),
            explanations: explain::Store::default(),
            metrics,
            pdbs: Mutex::new(HashMap::new()),
            plugin_events,
            client,
            recorder,
            runtime,
            binding_slots: Arc::new(tokio::sync::Semaphore::new(MAX_BINDINGS_IN_FLIGHT)),
        }
    }

    pub fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this scheduler owns pods naming `scheduler_name`.
    pub fn handles(&self, scheduler_name: &str) -> bool {
        self.profiles.contains_key(scheduler_name)
    }

    /// Tells the queue about a cluster event.
    pub fn on_event(&self, event: ClusterEvent) {
        self.queue.on_event(event, |pod, event| {
            pod.unschedulable_plugins.iter().any(|p| {
                self.plugin_events
                    .get(p)
                    .is_none_or(|events| events.contains(&event))
            })
        });
    }

    /// Schedules pods until the queue is closed. Runs on its own thread: the algorithm is
    /// CPU-bound; everything that talks to the apiserver is spawned onto the runtime.
    pub fn run(self: &Arc<Self>) {
        while let Some(pod) = self.queue.pop() {
            self.schedule_one(pod);
        }
    }

    fn schedule_one(self: &Arc<Self>, qp: QueuedPod) {
        let start = Instant::now();
        let pod = qp.info.clone();
        let _span = tracing::debug_span!("schedule", pod = %pod.key).entered();
        let Some(profile) = self.profiles.get(pod.scheduler_name()).cloned() else {
            self.queue.delete(&pod.key);
            return;
        };
        if pod.is_terminating() {
            self.queue.delete(&pod.key);
            return;
        }
        let snapshot = self.cache().snapshot();
        let nominated = self.queue.nominated();
        let with_nominated = |node: &NodeInfo| -> Option<NodeInfo> {
            let extra: Vec<&Arc<PodInfo>> = nominated
                .get(&*node.name)?
                .iter()
                .filter(|p| p.key != pod.key && p.priority >= pod.priority)
                .filter(|p| !node.pods.iter().any(|q| q.key == p.key))
                .collect();
            if extra.is_empty() {
                return None;
            }
            let mut n = node.clone();
            for p in extra {
                n.add_pod(p.clone());
            }
            Some(n)
        };
        let mut explanation = Explanation::new(&pod.key, &pod.uid, &profile.name, qp.attempts);
        match profile.schedule(&pod, &snapshot, &with_nominated, &mut explanation) {
            Ok(node) => {
                explanation.result = "Scheduled";
                explanation.finish(Some(&node));
                self.explanations.record(explanation);
                self.cache().assume(pod.clone(), &node);
                tracing::debug!(node = %node, "assumed pod");
                // This thread is outside the runtime, so it may block on the runtime's handle.
                let slot = self
                    .runtime
                    .block_on(self.binding_slots.clone().acquire_owned())
                    .ok();
                let this = self.clone();
                self.runtime
                    .spawn(async move { this.bind(qp, node, profile, start, slot).await });
            }
            Err(ScheduleError::Unschedulable(diagnosis)) => {
                let mut message = diagnosis.message();
                let mut nominate = None;
                if profile.preemption {
                    self.metrics.preemption_attempts.inc();
                    let pdbs: Vec<PodDisruptionBudget> = self
                        .pdbs
                        .lock()
                        .map(|p| p.values().cloned().collect())
                        .unwrap_or_default();
                    match preemption::preempt(&profile, &pod, &snapshot, &diagnosis, &pdbs) {
                        Outcome::Preempt(candidate) => {
                            explanation.preemption = Some(format!(
                                "nominated node {}; preempting {}",
                                candidate.node,
                                candidate
                                    .victims
                                    .iter()
                                    .map(|v| v.key.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ));
                            self.metrics
                                .preemption_victims
                                .observe(candidate.victims.len() as f64);
                            nominate = Some(candidate);
                        }
                        Outcome::NotHelpful(msg) => {
                            message = format!("{message} preemption: {msg}");
                            explanation.preemption = Some(msg);
                        }
                    }
                }
                explanation.result = "Unschedulable";
                explanation.finish(None);
                explanation.message = message.clone();
                let summary = explanation.summary(EVENT_SUMMARY_NODES);
                self.explanations.record(explanation);
                self.metrics
                    .schedule_attempts
                    .with_label_values(&["unschedulable", &profile.name])
                    .inc();
                self.metrics
                    .attempt_duration
                    .with_label_values(&["unschedulable", &profile.name])
                    .observe(start.elapsed().as_secs_f64());
                tracing::info!(pod = %pod.key, %message, "unable to schedule pod; no fit; waiting");
                let rejected = diagnosis.unschedulable_plugins.clone();
                let nominated_node = nominate.as_ref().map(|c| c.node.to_string());
                if let (Some(node), Some(object)) = (&nominated_node, &pod.object) {
                    let mut p = (**object).clone();
                    p.status
                        .get_or_insert_with(Default::default)
                        .nominated_node_name = Some(node.clone());
                    self.queue.nominate(Arc::new(PodInfo::new(Arc::new(p))));
                }
                self.queue.requeue(qp, rejected, false);
                let this = self.clone();
                self.runtime.spawn(async move {
                    if let Some(candidate) = nominate {
                        this.evict(&pod, &candidate).await;
                    }
                    let note = if summary.is_empty() {
                        message.clone()
                    } else {
                        format!("{message} Rejected by: {summary}.")
                    };
                    this.recorder
                        .record(
                            &pod.object_ref(),
                            EventType::Warning,
                            "FailedScheduling",
                            "Scheduling",
                            &note,
                        )
                        .await;
                    this.set_unschedulable(&pod, "Unschedulable", &message, nominated_node)
                        .await;
                });
            }
            Err(ScheduleError::Internal(err)) => {
                explanation.result = "Error";
                explanation.message = err.clone();
                self.explanations.record(explanation);
                self.metrics
                    .schedule_attempts
                    .with_label_values(&["error", &profile.name])
                    .inc();
                tracing::warn!(pod = %pod.key, %err, "error scheduling pod; retrying");
                self.queue.requeue(qp, HashSet::new(), true);
                let this = self.clone();
                self.runtime.spawn(async move {
                    this.recorder
                        .record(
                            &pod.object_ref(),
                            EventType::Warning,
                            "FailedScheduling",
                            "Scheduling",
                            &err,
                        )
                        .await;
                    this.set_unschedulable(&pod, "SchedulerError", &err, None)
                        .await;
                });
            }
        }
    }

    /// Binds through `pods/binding`; on failure forgets the assumption and requeues.
    async fn bind(
        self: Arc<Self>,
        qp: QueuedPod,
        node: Arc<str>,
        profile: Arc<Profile>,
        start: Instant,
        slot: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        let pod = &qp.info;
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": &*node},
        });
        let result = api
            .create_subresource::<_, serde_json::Value>(
                "binding",
                &pod.name,
                &PostParams::default(),
                &binding,
            )
            .await;
        // The slot bounds bindings in flight, not the event that follows.
        drop(slot);
        match result {
            Ok(_) => {
                self.queue.done(&pod.key);
                let elapsed = start.elapsed().as_secs_f64();
                self.metrics
                    .schedule_attempts
                    .with_label_values(&["scheduled", &profile.name])
                    .inc();
                self.metrics
                    .attempt_duration
                    .with_label_values(&["scheduled", &profile.name])
                    .observe(elapsed);
                self.metrics
                    .pod_scheduling_attempts
                    .observe(f64::from(qp.attempts));
                self.metrics
                    .pod_scheduling_sli_duration
                    .with_label_values(&[&qp.attempts.min(16).to_string()])
                    .observe(qp.first_seen.elapsed().as_secs_f64());
                tracing::debug!(pod = %pod.key, node = %node, "bound pod");
                self.recorder
                    .record(
                        &pod.object_ref(),
                        EventType::Normal,
                        "Scheduled",
                        "Binding",
                        &format!("Successfully assigned {} to {}", pod.key, node),
                    )
                    .await;
            }
            Err(err) => {
                self.cache().forget(&pod.key);
                self.metrics
                    .schedule_attempts
                    .with_label_values(&["error", &profile.name])
                    .inc();
                let gone = matches!(&err, kube::Error::Api(s) if s.code == 404);
                tracing::warn!(pod = %pod.key, node = %node, %err, "binding failed");
                if gone {
                    self.queue.delete(&pod.key);
                    return;
                }
                self.queue.requeue(qp.clone(), HashSet::new(), true);
                self.on_event(ClusterEvent::AssignedPodDelete);
                let msg = format!("Binding rejected: {err}");
                self.recorder
                    .record(
                        &pod.object_ref(),
                        EventType::Warning,
                        "FailedScheduling",
                        "Scheduling",
                        &msg,
                    )
                    .await;
            }
        }
    }

    /// Deletes the victims gracefully and records why.
    async fn evict(&self, preemptor: &PodInfo, candidate: &preemption::Candidate) {
        for victim in &candidate.victims {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &victim.namespace);
            let params = DeleteParams {
                preconditions: Some(kube::api::Preconditions {
                    uid: Some(victim.uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(&victim.name, &params).await {
                Ok(_) => {
                    tracing::info!(victim = %victim.key, preemptor = %preemptor.key, node = %candidate.node, "preempting pod");
                    self.recorder
                        .record(
                            &victim.object_ref(),
                            EventType::Normal,
                            "Preempted",
                            "Preempting",
                            &format!(
                                "Preempted by pod {} on node {}",
                                preemptor.uid, candidate.node
                            ),
                        )
                        .await;
                }
                Err(err) => {
                    tracing::warn!(victim = %victim.key, %err, "deleting preemption victim")
                }
            }
        }
    }

    /// Sets PodScheduled=False (and the nominated node) unless the pod already says so.
    async fn set_unschedulable(
        &self,
        pod: &PodInfo,
        reason: &str,
        message: &str,
        nominated: Option<String>,
    ) {
        let status = pod.object.as_ref().and_then(|p| p.status.as_ref());
        let current = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
        let same = current.is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(message)
        });
        let nominated_same = nominated.is_none()
            || status.and_then(|s| s.nominated_node_name.as_deref()) == nominated.as_deref();
        if same && nominated_same {
            return;
        }
        let mut patch = json!({
            "status": {
                "conditions": [{
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": reason,
                    "message": message,
                    "lastProbeTime": null,
                    "lastTransitionTime": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                }]
            }
        });
        if let Some(node) = nominated {
            patch["status"]["nominatedNodeName"] = json!(node);
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        if let Err(err) = api
            .patch_status(
                &pod.name,
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
        {
            tracing::debug!(pod = %pod.key, %err, "updating PodScheduled condition");
        }
    }
}
