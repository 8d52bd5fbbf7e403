//! kube-proxy's metrics, under upstream's names (`kubeproxy_*`).

use prometheus::{Gauge, Histogram, HistogramOpts, IntCounter, IntGauge, IntGaugeVec, Opts, Registry};

/// The metrics the sync loop updates.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub sync_duration: Histogram,
    pub full_sync_duration: Histogram,
    pub partial_sync_duration: Histogram,
    pub last_sync_timestamp: Gauge,
    pub last_queued_timestamp: Gauge,
    pub sync_failures: IntCounter,
    pub rules_total: IntGaugeVec,
    pub endpoint_changes_total: IntCounter,
    pub no_local_endpoints: IntGauge,
}

fn buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.001, 2.0, 15).unwrap_or_default()
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let hist = |name: &str, help: &str| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets()))
        };
        let m = Metrics {
            sync_duration: hist(
                "kubeproxy_sync_proxy_rules_duration_seconds",
                "SyncProxyRules latency in seconds",
            )?,
            full_sync_duration: hist(
                "kubeproxy_sync_full_proxy_rules_duration_seconds",
                "SyncProxyRules latency in seconds for full resyncs",
            )?,
            partial_sync_duration: hist(
                "kubeproxy_sync_partial_proxy_rules_duration_seconds",
                "SyncProxyRules latency in seconds for partial resyncs",
            )?,
            last_sync_timestamp: Gauge::new(
                "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                "The last time proxy rules were successfully synced",
            )?,
            last_queued_timestamp: Gauge::new(
                "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
                "The last time a sync of proxy rules was queued",
            )?,
            sync_failures: IntCounter::new(
                "kubeproxy_sync_proxy_rules_failures_total",
                "Cumulative proxy rules sync failures",
            )?,
            rules_total: IntGaugeVec::new(
                Opts::new(
                    "kubeproxy_sync_proxy_rules_rules_total",
                    "Number of proxy rules (per mode) kube-proxy has programmed for services",
                ),
                &["mode"],
            )?,
            endpoint_changes_total: IntCounter::new(
                "kubeproxy_sync_proxy_rules_endpoint_changes_total",
                "Cumulative proxy rules Endpoint changes",
            )?,
            no_local_endpoints: IntGauge::new(
                "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
                "Number of services with a Local traffic policy and no endpoints",
            )?,
            registry,
        };
        let r = &m.registry;
        component_base::metrics::register(r, &m.sync_duration);
        component_base::metrics::register(r, &m.full_sync_duration);
        component_base::metrics::register(r, &m.partial_sync_duration);
        component_base::metrics::register(r, &m.last_sync_timestamp);
        component_base::metrics::register(r, &m.last_queued_timestamp);
        component_base::metrics::register(r, &m.sync_failures);
        component_base::metrics::register(r, &m.rules_total);
        component_base::metrics::register(r, &m.endpoint_changes_total);
        component_base::metrics::register(r, &m.no_local_endpoints);
        Ok(m)
    }
}
