//! The process's Prometheus registry and its text exposition.

use prometheus::{Encoder, Registry, TextEncoder};

/// Renders every metric of `registry` in the Prometheus text format.
pub fn render(registry: &Registry) -> (String, Vec<u8>) {
    let encoder = TextEncoder::new();
    let mut buf = Vec::new();
    if let Err(err) = encoder.encode(&registry.gather(), &mut buf) {
        tracing::warn!(%err, "encoding metrics");
    }
    (encoder.format_type().to_string(), buf)
}

/// Registers a collector, logging instead of failing when it is already registered (so that
/// components built twice in one test process keep working).
pub fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: &C) {
    if let Err(err) = registry.register(Box::new(c.clone())) {
        tracing::debug!(%err, "metric already registered");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_registered_counter() {
        let registry = Registry::new();
        let c = prometheus::IntCounter::new("sample_total", "a sample").unwrap();
        register(&registry, &c);
        c.inc();
        let (ct, body) = render(&registry);
        assert!(ct.starts_with("text/plain"));
        assert!(String::from_utf8(body).unwrap().contains("sample_total 1"));
    }
}
