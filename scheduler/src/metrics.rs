//! The scheduler's metrics, under upstream's names and labels.

use component_base::metrics::register;
use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry,
};

pub struct Metrics {
    pub schedule_attempts: IntCounterVec,
    pub attempt_duration: HistogramVec,
    pub pending_pods: IntGaugeVec,
    pub preemption_attempts: IntCounter,
    pub preemption_victims: Histogram,
    pub queue_incoming_pods: IntCounterVec,
    pub pod_scheduling_attempts: Histogram,
    pub pod_scheduling_sli_duration: HistogramVec,
    /// Upstream components export this through the Go process collector.
    pub resident_memory: IntGauge,
}

impl Metrics {
    /// Defines the metrics and registers them with `registry`.
    pub fn new(registry: &Registry) -> Result<Metrics, prometheus::Error> {
        let m = Metrics {
            schedule_attempts: IntCounterVec::new(
                Opts::new(
                    "scheduler_schedule_attempts_total",
                    "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem.",
                ),
                &["result", "profile"],
            )?,
            attempt_duration: HistogramVec::new(
                HistogramOpts::new(
                    "scheduler_scheduling_attempt_duration_seconds",
                    "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
                )
                .buckets(exponential_buckets(0.001, 2.0, 15)?),
                &["result", "profile"],
            )?,
            pending_pods: IntGaugeVec::new(
                Opts::new(
                    "scheduler_pending_pods",
                    "Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in unschedulablePods.",
                ),
                &["queue"],
            )?,
            preemption_attempts: IntCounter::new(
                "scheduler_preemption_attempts_total",
                "Total preemption attempts in the cluster till now",
            )?,
            preemption_victims: Histogram::with_opts(
                HistogramOpts::new("scheduler_preemption_victims", "Number of selected preemption victims")
                    .buckets(exponential_buckets(1.0, 2.0, 7)?),
            )?,
            queue_incoming_pods: IntCounterVec::new(
                Opts::new(
                    "scheduler_queue_incoming_pods_total",
                    "Number of pods added to scheduling queues by event and queue type.",
                ),
                &["queue", "event"],
            )?,
            pod_scheduling_attempts: Histogram::with_opts(
                HistogramOpts::new(
                    "scheduler_pod_scheduling_attempts",
                    "Number of attempts to successfully schedule a pod.",
                )
                .buckets(exponential_buckets(1.0, 2.0, 5)?),
            )?,
            pod_scheduling_sli_duration: HistogramVec::new(
                HistogramOpts::new(
                    "scheduler_pod_scheduling_sli_duration_seconds",
                    "E2e latency for a pod being scheduled, from the time the pod enters the scheduling queue and might involve multiple scheduling attempts.",
                )
                .buckets(exponential_buckets(0.01, 2.0, 20)?),
                &["attempts"],
            )?,
            resident_memory: IntGauge::new(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            )?,
        };
        register(registry, &m.schedule_attempts);
        register(registry, &m.attempt_duration);
        register(registry, &m.pending_pods);
        register(registry, &m.preemption_attempts);
        register(registry, &m.preemption_victims);
        register(registry, &m.queue_incoming_pods);
        register(registry, &m.pod_scheduling_attempts);
        register(registry, &m.pod_scheduling_sli_duration);
        register(registry, &m.resident_memory);
        Ok(m)
    }

    /// Refreshes the process metrics from /proc before a scrape.
    pub fn refresh_process(&self) {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok());
        if let Some(kib) = rss_kib {
            self.resident_memory.set(kib * 1024);
        }
    }
}
