//! Latency percentiles and the report lines.

use std::time::Duration;

/// Percentile `p` (0..=100) of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One throughput line: operations per second and p50/p99 latency.
pub fn report(
    name: &str,
    mut samples: Vec<Duration>,
    wall: Duration,
    baseline: Option<(&str, f64)>,
) {
    samples.sort();
    let rate = samples.len() as f64 / wall.as_secs_f64().max(1e-9);
    let mut line = format!(
        "{name:<44} {rate:>9.0} ops/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 99.0))
    );
    if let Some((label, upstream)) = baseline {
        line.push_str(&format!("   ({:.2}x upstream's {label})", rate / upstream));
    }
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let s: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&s, 50.0), Duration::from_millis(51));
        assert_eq!(percentile(&s, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }
}
