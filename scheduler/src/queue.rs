//! The scheduling queue, as upstream's PriorityQueue: an active queue ordered by priority then
//! arrival, a backoff queue (per-pod exponential backoff between the initial and maximum
//! backoff), and unschedulable pods that wait for a cluster event one of their rejecting
//! plugins cares about (or, as a safety net, five minutes) instead of being polled.

use std::{
    cmp::Reverse,
    collections::{BTreeSet, HashMap, HashSet},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use crate::{
    framework::{ClusterEvent, PodInfo},
    metrics::Metrics,
};

/// Unschedulable pods are retried after this long even without a relevant event.
const MAX_IN_UNSCHEDULABLE: Duration = Duration::from_secs(300);

/// A pod waiting in the queue, with its attempt history.
#[derive(Debug, Clone)]
pub struct QueuedPod {
    pub info: Arc<PodInfo>,
    pub attempts: u32,
    /// When the pod first entered the queue, for the end-to-end latency.
    pub first_seen: Instant,
    pub last_attempt: Option<Instant>,
    /// Plugins that rejected the pod in its last attempt.
    pub unschedulable_plugins: HashSet<&'static str>,
    /// The scheduling cycle that popped the pod.
    pub cycle: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location {
    Active(u64),
    Backoff(Instant),
    Unschedulable(Instant),
    InFlight,
}

struct Entry {
    pod: QueuedPod,
    location: Location,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    active: BTreeSet<(Reverse<i32>, u64, String)>,
    backoff: BTreeSet<(Instant, String)>,
    seq: u64,
    scheduling_cycle: u64,
    move_request_cycle: u64,
    closed: bool,
    /// Keys of the pods in the unschedulable set, so events are cheap when none wait.
    unschedulable: HashSet<String>,
    /// Pods a preemption nominated, by node.
    nominated: HashMap<String, Vec<Arc<PodInfo>>>,
}

pub struct SchedulingQueue {
    inner: Mutex<Inner>,
    ready: Condvar,
    initial_backoff: Duration,
    max_backoff: Duration,
    metrics: Arc<Metrics>,
}

impl Inner {
    fn push_active(&mut self, key: &str) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(e) = self.entries.get_mut(key) {
            e.location = Location::Active(seq);
            self.active
                .insert((Reverse(e.pod.info.priority), seq, key.to_string()));
        }
    }

    fn unlink(&mut self, key: &str) {
        let Some(e) = self.entries.get(key) else {
            return;
        };
        match e.location {
            Location::Active(seq) => {
                self.active
                    .remove(&(Reverse(e.pod.info.priority), seq, key.to_string()));
            }
            Location::Backoff(at) => {
                self.backoff.remove(&(at, key.to_string()));
            }
            Location::Unschedulable(_) => {
                self.unschedulable.remove(key);
            }
            Location::InFlight => {}
        }
    }

    fn set_nomination(&mut self, info: &Arc<PodInfo>) {
        for pods in self.nominated.values_mut() {
            pods.retain(|p| p.key != info.key);
        }
        self.nominated.retain(|_, pods| !pods.is_empty());
        if let Some(node) = info.nominated_node() {
            self.nominated
                .entry(node.to_string())
                .or_default()
                .push(info.clone());
        }
    }
}

impl SchedulingQueue {
    pub fn new(initial_backoff: Duration, max_backoff: Duration, metrics: Arc<Metrics>) -> Self {
        SchedulingQueue {
            inner: Mutex::new(Inner::default()),
            ready: Condvar::new(),
            initial_backoff,
            max_backoff,
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update_gauges(&self, inner: &Inner) {
        let g = &self.metrics.pending_pods;
        g.with_label_values(&["active"])
            .set(inner.active.len() as i64);
        g.with_label_values(&["backoff"])
            .set(inner.backoff.len() as i64);
        g.with_label_values(&["unschedulable"])
            .set(inner.unschedulable.len() as i64);
    }

    /// Upstream's per-pod backoff: initial * 2^(attempts-1), capped.
    fn backoff_duration(&self, attempts: u32) -> Duration {
        let shift = attempts.saturating_sub(1).min(16);
        (self.initial_backoff * (1u32 << shift)).min(self.max_backoff)
    }

    fn backoff_expiry(&self, pod: &QueuedPod) -> Option<Instant> {
        pod.last_attempt
            .map(|t| t + self.backoff_duration(pod.attempts))
    }

    /// A new pending pod.
    pub fn add(&self, info: Arc<PodInfo>) {
        let mut inner = self.lock();
        if inner.entries.contains_key(&info.key) {
            drop(inner);
            self.update(info);
            return;
        }
        inner.set_nomination(&info);
        let key = info.key.clone();
        inner.entries.insert(
            key.clone(),
            Entry {
                pod: QueuedPod {
                    info,
                    attempts: 0,
                    first_seen: Instant::now(),
                    last_attempt: None,
                    unschedulable_plugins: HashSet::new(),
                    cycle: 0,
                },
                location: Location::InFlight,
            },
        );
        inner.push_active(&key);
        self.metrics
            .queue_incoming_pods
            .with_label_values(&["active", "PodAdd"])
            .inc();
        self.update_gauges(&inner);
        drop(inner);
        self.ready.notify_one();
    }

    /// A pending pod changed. An unschedulable pod whose spec or labels changed is retried.
    pub fn update(&self, info: Arc<PodInfo>) {
        let mut inner = self.lock();
        inner.set_nomination(&info);
        let key = info.key.clone();
        let Some(e) = inner.entries.get_mut(&key) else {
            drop(inner);
            self.add(info);
            return;
        };
        let changed = e.pod.info.changed_for_scheduling(&info);
        let priority_changed = e.pod.info.priority != info.priority;
        let location = e.location;
        if priority_changed {
            inner.unlink(&key);
        }
        if let Some(e) = inner.entries.get_mut(&key) {
            e.pod.info = info;
        }
        match location {
            Location::Unschedulable(_) if changed => {
                self.requeue_after_event(&mut inner, &key, "PodUpdate");
            }
            Location::Active(_) if priority_changed => inner.push_active(&key),
            Location::Backoff(at) if priority_changed => {
                inner.backoff.insert((at, key.clone()));
            }
            _ => {}
        }
        self.update_gauges(&inner);
        drop(inner);
        self.ready.notify_one();
    }

    /// A pending pod was deleted, or bound by someone else.
    pub fn delete(&self, key: &str) {
        let mut inner = self.lock();
        inner.unlink(key);
        inner.entries.remove(key);
        for pods in inner.nominated.values_mut() {
            pods.retain(|p| p.key != key);
        }
        inner.nominated.retain(|_, pods| !pods.is_empty());
        self.update_gauges(&inner);
    }

    /// Moves expired backoff pods and long-waiting unschedulable pods to the active queue.
    fn flush(&self, inner: &mut Inner, now: Instant) {
        while let Some((at, key)) = inner.backoff.first().cloned() {
            if at > now {
                break;
            }
            inner.backoff.remove(&(at, key.clone()));
            inner.push_active(&key);
        }
        let stale: Vec<String> = inner
            .unschedulable
            .iter()
            .filter(|k| {
                inner.entries.get(*k).is_some_and(|e| {
                    matches!(e.location, Location::Unschedulable(since) if now.duration_since(since) > MAX_IN_UNSCHEDULABLE)
                })
            })
            .cloned()
            .collect();
        for key in stale {
            self.requeue_after_event(inner, &key, "UnschedulableTimeout");
        }
    }

    /// Blocks until a pod is ready to be scheduled; `None` once closed.
    pub fn pop(&self) -> Option<QueuedPod> {
        let mut inner = self.lock();
        loop {
            if inner.closed {
                return None;
            }
            let now = Instant::now();
            self.flush(&mut inner, now);
            if let Some((_, _, key)) = inner.active.pop_first() {
                inner.scheduling_cycle += 1;
                let cycle = inner.scheduling_cycle;
                let Some(e) = inner.entries.get_mut(&key) else {
                    continue;
                };
                e.location = Location::InFlight;
                e.pod.attempts += 1;
                e.pod.last_attempt = Some(now);
                e.pod.cycle = cycle;
                let pod = e.pod.clone();
                self.update_gauges(&inner);
                return Some(pod);
            }
            let wait = inner
                .backoff
                .first()
                .map(|(at, _)| at.saturating_duration_since(now))
                .unwrap_or(Duration::from_secs(30))
                .max(Duration::from_millis(1));
            inner = match self.ready.wait_timeout(inner, wait) {
                Ok((guard, _)) => guard,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// The pod was bound: it leaves the queue.
    pub fn done(&self, key: &str) {
        let mut inner = self.lock();
        if inner
            .entries
            .get(key)
            .is_some_and(|e| e.location == Location::InFlight)
        {
            inner.entries.remove(key);
        }
    }

    /// A scheduling attempt failed. Unless a relevant event arrived while the pod was in flight,
    /// it waits in the unschedulable set; errors (and pods with no rejecting plugin) back off.
    pub fn requeue(&self, pod: QueuedPod, rejected_by: HashSet<&'static str>, error: bool) {
        let mut inner = self.lock();
        let key = pod.info.key.clone();
        let Some(e) = inner.entries.get_mut(&key) else {
            return;
        };
        if e.location != Location::InFlight {
            return;
        }
        e.pod.unschedulable_plugins = rejected_by;
        e.pod.attempts = pod.attempts;
        e.pod.last_attempt = pod.last_attempt;
        let moved_since = inner.move_request_cycle >= pod.cycle;
        let pending_event = error || moved_since;
        if pending_event {
            let at = self.backoff_expiry(&pod).unwrap_or_else(Instant::now);
            if let Some(e) = inner.entries.get_mut(&key) {
                e.location = Location::Backoff(at);
            }
            inner.backoff.insert((at, key));
            self.metrics
                .queue_incoming_pods
                .with_label_values(&["backoff", "ScheduleAttemptFailure"])
                .inc();
        } else {
            if let Some(e) = inner.entries.get_mut(&key) {
                e.location = Location::Unschedulable(Instant::now());
            }
            inner.unschedulable.insert(key);
            self.metrics
                .queue_incoming_pods
                .with_label_values(&["unschedulable", "ScheduleAttemptFailure"])
                .inc();
        }
        self.update_gauges(&inner);
        drop(inner);
        self.ready.notify_one();
    }

    fn requeue_after_event(&self, inner: &mut Inner, key: &str, event: &str) {
        inner.unschedulable.remove(key);
        let expiry = inner
            .entries
            .get(key)
            .and_then(|e| self.backoff_expiry(&e.pod));
        match expiry {
            Some(at) if at > Instant::now() => {
                if let Some(e) = inner.entries.get_mut(key) {
                    e.location = Location::Backoff(at);
                }
                inner.backoff.insert((at, key.to_string()));
                self.metrics
                    .queue_incoming_pods
                    .with_label_values(&["backoff", event])
                    .inc();
            }
            _ => {
                inner.push_active(key);
                self.metrics
                    .queue_incoming_pods
                    .with_label_values(&["active", event])
                    .inc();
            }
        }
    }

    /// A cluster event: unschedulable pods rejected by a plugin interested in it are retried.
    pub fn on_event(
        &self,
        event: ClusterEvent,
        interested: impl Fn(&QueuedPod, ClusterEvent) -> bool,
    ) {
        let mut inner = self.lock();
        inner.move_request_cycle = inner.scheduling_cycle;
        let keys: Vec<String> = inner
            .unschedulable
            .iter()
            .filter(|k| {
                inner.entries.get(*k).is_some_and(|e| {
                    e.pod.unschedulable_plugins.is_empty() || interested(&e.pod, event)
                })
            })
            .cloned()
            .collect();
        if keys.is_empty() {
            return;
        }
        for key in &keys {
            self.requeue_after_event(&mut inner, key, event.label());
        }
        self.update_gauges(&inner);
        drop(inner);
        self.ready.notify_one();
    }

    /// Records a nomination made by preemption.
    pub fn nominate(&self, info: Arc<PodInfo>) {
        self.lock().set_nomination(&info);
    }

    /// The pods nominated to each node.
    pub fn nominated(&self) -> HashMap<String, Vec<Arc<PodInfo>>> {
        self.lock().nominated.clone()
    }

    /// Wakes `pop` for good.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Keys of every pod the queue holds, for reconciling after a relist.
    pub fn keys(&self) -> Vec<String> {
        self.lock().entries.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn pod(name: &str, priority: i32) -> Arc<PodInfo> {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "d"},
            "spec": {"priority": priority, "containers": [{"name": "c"}]}
        }))
        .unwrap();
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    fn queue() -> SchedulingQueue {
        let registry = prometheus::Registry::new();
        SchedulingQueue::new(
            Duration::from_millis(50),
            Duration::from_millis(200),
            Arc::new(Metrics::new(&registry).unwrap()),
        )
    }

    #[test]
    fn priority_then_arrival() {
        let q = queue();
        q.add(pod("low", 1));
        q.add(pod("high", 10));
        q.add(pod("low2", 1));
        assert_eq!(q.pop().unwrap().info.name, "high");
        assert_eq!(q.pop().unwrap().info.name, "low");
        assert_eq!(q.pop().unwrap().info.name, "low2");
    }

    #[test]
    fn unschedulable_waits_for_interesting_event_then_backs_off() {
        let q = queue();
        q.add(pod("p", 0));
        let p = q.pop().unwrap();
        q.requeue(p, HashSet::from(["NodeResourcesFit"]), false);
        q.on_event(ClusterEvent::NodeAdd, |_, _| false);
        assert!(q.lock().active.is_empty() && q.lock().backoff.is_empty());
        q.on_event(ClusterEvent::NodeAdd, |p, _| {
            p.unschedulable_plugins.contains("NodeResourcesFit")
        });
        let start = Instant::now();
        let p = q.pop().unwrap();
        assert_eq!(p.attempts, 2);
        assert!(start.elapsed() < Duration::from_secs(1));
        // An event during the attempt sends the pod to backoff rather than unschedulable.
        q.on_event(ClusterEvent::NodeUpdate, |_, _| true);
        q.requeue(p, HashSet::from(["NodeResourcesFit"]), false);
        assert_eq!(q.lock().backoff.len(), 1);
        assert_eq!(q.backoff_duration(1), Duration::from_millis(50));
        assert_eq!(q.backoff_duration(2), Duration::from_millis(100));
        assert_eq!(q.backoff_duration(9), Duration::from_millis(200));
        assert_eq!(q.pop().unwrap().attempts, 3);
        q.close();
        assert!(q.pop().is_none());
    }
}
