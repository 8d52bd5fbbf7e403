//! A rate-limited work queue keyed by item, with client-go's guarantees: an item is queued at
//! most once however often it is added, is never handed to two workers at once (an add while it
//! is processed queues it again once `done` is called), and failures are retried with a
//! per-item exponential backoff. Every queue reports the upstream `workqueue_*` metrics under
//! its name.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    fmt::Display,
    future::Future,
    hash::Hash,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use tokio::sync::Notify;

/// The `workqueue_*` metric families, shared by every queue of a process and labelled by the
/// queue's name.
#[derive(Clone)]
pub struct WorkQueueMetrics {
    depth: IntGaugeVec,
    adds: IntCounterVec,
    retries: IntCounterVec,
    queue_duration: HistogramVec,
    work_duration: HistogramVec,
}

impl WorkQueueMetrics {
    /// Creates the families and registers them with `registry`.
    pub fn new(registry: &Registry) -> Result<WorkQueueMetrics, prometheus::Error> {
        // Upstream's buckets: 10ns to 10s in powers of ten.
        let buckets = prometheus::exponential_buckets(1e-8, 10.0, 10)?;
        let metrics = WorkQueueMetrics {
            depth: IntGaugeVec::new(
                Opts::new("workqueue_depth", "Current depth of workqueue"),
                &["name"],
            )?,
            adds: IntCounterVec::new(
                Opts::new(
                    "workqueue_adds_total",
                    "Total number of adds handled by workqueue",
                ),
                &["name"],
            )?,
            retries: IntCounterVec::new(
                Opts::new(
                    "workqueue_retries_total",
                    "Total number of retries handled by workqueue",
                ),
                &["name"],
            )?,
            queue_duration: HistogramVec::new(
                HistogramOpts::new(
                    "workqueue_queue_duration_seconds",
                    "How long in seconds an item stays in workqueue before being requested.",
                )
                .buckets(buckets.clone()),
                &["name"],
            )?,
            work_duration: HistogramVec::new(
                HistogramOpts::new(
                    "workqueue_work_duration_seconds",
                    "How long in seconds processing an item from workqueue takes.",
                )
                .buckets(buckets),
                &["name"],
            )?,
        };
        crate::metrics::register(registry, &metrics.depth);
        crate::metrics::register(registry, &metrics.adds);
        crate::metrics::register(registry, &metrics.retries);
        crate::metrics::register(registry, &metrics.queue_duration);
        crate::metrics::register(registry, &metrics.work_duration);
        Ok(metrics)
    }
}

/// Per-item exponential backoff: `base * 2^failures`, capped at `max` (upstream: 5 ms to 1000 s).
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(5),
            max: Duration::from_secs(1000),
        }
    }
}

impl Backoff {
    fn delay(&self, failures: u32) -> Duration {
        let factor = 2u32.checked_pow(failures).unwrap_or(u32::MAX);
        self.base
            .checked_mul(factor)
            .map_or(self.max, |d| d.min(self.max))
    }
}

struct State<T> {
    queue: VecDeque<T>,
    dirty: HashSet<T>,
    processing: HashSet<T>,
    added_at: HashMap<T, Instant>,
    failures: HashMap<T, u32>,
    shutting_down: bool,
}

struct Inner<T> {
    name: String,
    state: Mutex<State<T>>,
    notify: Notify,
    backoff: Backoff,
    metrics: WorkQueueMetrics,
}

/// A named, rate-limited work queue. Cloning gives another handle to the same queue.
pub struct WorkQueue<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for WorkQueue<T> {
    fn clone(&self) -> Self {
        WorkQueue {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Clone + Eq + Hash + Send + 'static> WorkQueue<T> {
    pub fn new(name: &str, metrics: &WorkQueueMetrics, backoff: Backoff) -> WorkQueue<T> {
        WorkQueue {
            inner: Arc::new(Inner {
                name: name.to_string(),
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    dirty: HashSet::new(),
                    processing: HashSet::new(),
                    added_at: HashMap::new(),
                    failures: HashMap::new(),
                    shutting_down: false,
                }),
                notify: Notify::new(),
                backoff,
                metrics: metrics.clone(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        // A poisoned lock only means a panicking holder; the state itself stays consistent.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn label(&self) -> [&str; 1] {
        [self.inner.name.as_str()]
    }

    /// Queues `item` unless it is already waiting.
    pub fn add(&self, item: T) {
        let mut s = self.lock();
        if s.shutting_down || s.dirty.contains(&item) {
            return;
        }
        self.inner
            .metrics
            .adds
            .with_label_values(&self.label())
            .inc();
        s.dirty.insert(item.clone());
        s.added_at.entry(item.clone()).or_insert_with(Instant::now);
        if s.processing.contains(&item) {
            return;
        }
        s.queue.push_back(item);
        self.inner
            .metrics
            .depth
            .with_label_values(&self.label())
            .inc();
        drop(s);
        self.inner.notify.notify_one();
    }

    /// Queues `item` once `delay` has passed.
    pub fn add_after(&self, item: T, delay: Duration) {
        if delay.is_zero() {
            return self.add(item);
        }
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(item);
        });
    }

    /// Queues `item` after its backoff, which doubles with every call until `forget`.
    pub fn add_rate_limited(&self, item: T) {
        let failures = {
            let mut s = self.lock();
            let n = s.failures.entry(item.clone()).or_insert(0);
            let current = *n;
            *n = n.saturating_add(1);
            current
        };
        self.inner
            .metrics
            .retries
            .with_label_values(&self.label())
            .inc();
        self.add_after(item, self.inner.backoff.delay(failures));
    }

    /// Clears the backoff of `item` after a success.
    pub fn forget(&self, item: &T) {
        self.lock().failures.remove(item);
    }

    /// How many times `item` has been retried since it was last forgotten.
    pub fn num_requeues(&self, item: &T) -> u32 {
        self.lock().failures.get(item).copied().unwrap_or(0)
    }

    /// The next item to process, waiting for one; `None` once the queue shuts down. The caller
    /// must call `done` with the item when finished.
    pub async fn get(&self) -> Option<T> {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.lock();
                if let Some(item) = s.queue.pop_front() {
                    self.inner
                        .metrics
                        .depth
                        .with_label_values(&self.label())
                        .dec();
                    s.dirty.remove(&item);
                    s.processing.insert(item.clone());
                    if let Some(at) = s.added_at.remove(&item) {
                        self.inner
                            .metrics
                            .queue_duration
                            .with_label_values(&self.label())
                            .observe(at.elapsed().as_secs_f64());
                    }
                    if !s.queue.is_empty() {
                        self.inner.notify.notify_one();
                    }
                    return Some(item);
                }
                if s.shutting_down {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Marks `item` processed; an add that arrived meanwhile queues it again.
    pub fn done(&self, item: &T) {
        let mut s = self.lock();
        s.processing.remove(item);
        if s.dirty.contains(item) && !s.shutting_down {
            s.queue.push_back(item.clone());
            self.inner
                .metrics
                .depth
                .with_label_values(&self.label())
                .inc();
            drop(s);
            self.inner.notify.notify_one();
        }
    }

    /// Number of items waiting.
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops handing out items; waiting `get` calls return `None`.
    pub fn shut_down(&self) {
        self.lock().shutting_down = true;
        self.inner.notify.notify_waiters();
    }

    /// Runs `workers` concurrent loops that take items and pass them to `sync` until the queue
    /// shuts down. `Ok(Some(d))` asks for the item again after `d`; an error retries it with
    /// backoff.
    pub async fn run_workers<F, Fut, E>(&self, workers: usize, sync: F)
    where
        T: Display,
        F: Fn(T) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<Duration>, E>> + Send,
        E: Display,
    {
        let mut tasks = Vec::new();
        for _ in 0..workers.max(1) {
            let queue = self.clone();
            let sync = sync.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(item) = queue.get().await {
                    let started = Instant::now();
                    let result = sync(item.clone()).await;
                    queue
                        .inner
                        .metrics
                        .work_duration
                        .with_label_values(&queue.label())
                        .observe(started.elapsed().as_secs_f64());
                    match result {
                        Ok(again) => {
                            queue.forget(&item);
                            if let Some(delay) = again {
                                queue.add_after(item.clone(), delay);
                            }
                        }
                        Err(err) => {
                            tracing::warn!(queue = %queue.inner.name, key = %item, %err, "sync failed; requeueing");
                            queue.add_rate_limited(item.clone());
                        }
                    }
                    queue.done(&item);
                }
            }));
        }
        for task in tasks {
            if let Err(err) = task.await {
                tracing::error!(queue = %self.inner.name, %err, "worker ended abnormally");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> WorkQueue<String> {
        let metrics = WorkQueueMetrics::new(&Registry::new()).unwrap();
        WorkQueue::new("test", &metrics, Backoff::default())
    }

    #[tokio::test]
    async fn deduplicates_and_requeues_items_added_while_processing() {
        let q = queue();
        q.add("a".to_string());
        q.add("a".to_string());
        q.add("b".to_string());
        assert_eq!(q.len(), 2);
        let a = q.get().await.unwrap();
        assert_eq!(a, "a");
        q.add("a".to_string());
        // "a" is being processed: it waits for done instead of going to a second worker.
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await.unwrap(), "b");
        q.done(&a);
        assert_eq!(q.get().await.unwrap(), "a");
        q.shut_down();
        assert_eq!(q.get().await, None);
    }

    #[tokio::test]
    async fn backoff_doubles_until_forgotten() {
        let b = Backoff::default();
        assert_eq!(b.delay(0), Duration::from_millis(5));
        assert_eq!(b.delay(3), Duration::from_millis(40));
        assert_eq!(b.delay(40), Duration::from_secs(1000));
        let q = queue();
        q.add_rate_limited("x".to_string());
        q.add_rate_limited("x".to_string());
        assert_eq!(q.num_requeues(&"x".to_string()), 2);
        q.forget(&"x".to_string());
        assert_eq!(q.num_requeues(&"x".to_string()), 0);
        let got = tokio::time::timeout(Duration::from_secs(1), q.get())
            .await
            .unwrap();
        assert_eq!(got.as_deref(), Some("x"));
    }
}
