//! The kubelet's metrics, with upstream names, served on `/metrics`.

use prometheus::{Histogram, HistogramOpts, IntGauge, IntGaugeVec, Opts, Registry};

/// The kubelet's collectors and their registry.
pub struct Metrics {
    pub registry: Registry,
    pub pleg_relist_duration: Histogram,
    pub running_pods: IntGauge,
    pub running_containers: IntGaugeVec,
    pub node_name: IntGaugeVec,
}

impl Metrics {
    pub fn new(node: &str) -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let pleg_relist_duration = Histogram::with_opts(
            HistogramOpts::new(
                "kubelet_pleg_relist_duration_seconds",
                "Duration in seconds for relisting pods in PLEG.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )?;
        let running_pods = IntGauge::new(
            "kubelet_running_pods",
            "Number of pods that have a running pod sandbox",
        )?;
        let running_containers = IntGaugeVec::new(
            Opts::new(
                "kubelet_running_containers",
                "Number of containers currently running",
            ),
            &["container_state"],
        )?;
        let node_name = IntGaugeVec::new(
            Opts::new(
                "kubelet_node_name",
                "The node's name. The count is always 1.",
            ),
            &["node"],
        )?;
        node_name.with_label_values(&[node]).set(1);
        component_base::metrics::register(&registry, &pleg_relist_duration);
        component_base::metrics::register(&registry, &running_pods);
        component_base::metrics::register(&registry, &running_containers);
        component_base::metrics::register(&registry, &node_name);
        Ok(Metrics {
            registry,
            pleg_relist_duration,
            running_pods,
            running_containers,
            node_name,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn metrics_render_with_upstream_names() {
        let m = super::Metrics::new("n1").unwrap();
        m.pleg_relist_duration.observe(0.01);
        let (_, body) = component_base::metrics::render(&m.registry);
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("kubelet_pleg_relist_duration_seconds_bucket"));
        assert!(text.contains("kubelet_node_name{node=\"n1\"} 1"));
    }
}
