//! kube-proxy's metrics, under upstream's names (`kubeproxy_*`). The rule-count and failure
//! metrics are named after the running mode, as upstream's iptables and nftables proxiers name
//! theirs.

use prometheus::{Gauge, Histogram, HistogramOpts, IntCounter, IntGaugeVec, Opts, Registry};

use crate::config::ProxyMode;

/// The metrics the sync loop and the watches update.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub sync_duration: Histogram,
    pub full_sync_duration: Histogram,
    pub partial_sync_duration: Histogram,
    pub last_sync_timestamp: Gauge,
    pub last_queued_timestamp: Gauge,
    /// `..._iptables_restore_failures_total` or `..._nftables_sync_failures_total`.
    pub sync_failures: IntCounter,
    /// Rules programmed, by table (`..._iptables_total{table}` and its per-mode siblings).
    pub rules_total: IntGaugeVec,
    pub service_changes_total: IntCounter,
    pub endpoint_changes_total: IntCounter,
    /// Services with a Local traffic policy and no local endpoint, by `traffic_policy`.
    pub no_local_endpoints: IntGaugeVec,
}

fn buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.001, 2.0, 15).unwrap_or_default()
}

impl Metrics {
    pub fn new(mode: ProxyMode) -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let hist = |name: &str, help: &str| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets()))
        };
        let (failures_name, failures_help) = match mode {
            ProxyMode::Iptables => (
                "kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
                "Cumulative proxy iptables restore failures",
            ),
            ProxyMode::Nftables => (
                "kubeproxy_sync_proxy_rules_nftables_sync_failures_total",
                "Cumulative proxy nftables sync failures",
            ),
            ProxyMode::Userspace => (
                "kubeproxy_sync_proxy_rules_userspace_sync_failures_total",
                "Cumulative proxy userspace listener sync failures",
            ),
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
            sync_failures: IntCounter::new(failures_name, failures_help)?,
            rules_total: IntGaugeVec::new(
                Opts::new(
                    format!("kubeproxy_sync_proxy_rules_{}_total", mode.as_str()),
                    format!("Number of {} rules programmed", mode.as_str()),
                ),
                &["table"],
            )?,
            service_changes_total: IntCounter::new(
                "kubeproxy_sync_proxy_rules_service_changes_total",
                "Cumulative proxy rules Service changes",
            )?,
            endpoint_changes_total: IntCounter::new(
                "kubeproxy_sync_proxy_rules_endpoint_changes_total",
                "Cumulative proxy rules Endpoint changes",
            )?,
            no_local_endpoints: IntGaugeVec::new(
                Opts::new(
                    "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
                    "Number of services with a Local traffic policy and no endpoints",
                ),
                &["traffic_policy"],
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
        component_base::metrics::register(r, &m.service_changes_total);
        component_base::metrics::register(r, &m.endpoint_changes_total);
        component_base::metrics::register(r, &m.no_local_endpoints);
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iptables_mode_uses_upstream_names() {
        let m = Metrics::new(ProxyMode::Iptables).unwrap();
        m.rules_total.with_label_values(&["nat"]).set(7);
        m.sync_failures.inc();
        let (_, body) = component_base::metrics::render(&m.registry);
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("kubeproxy_sync_proxy_rules_iptables_total{table=\"nat\"} 7"));
        assert!(text.contains("kubeproxy_sync_proxy_rules_iptables_restore_failures_total 1"));
    }
}
