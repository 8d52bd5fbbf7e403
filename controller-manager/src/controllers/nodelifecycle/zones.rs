//! Zone disruption, as upstream's node lifecycle controller judges it: each zone (region and
//! zone labels) is Normal, PartialDisruption (more than two nodes and at least
//! `--unhealthy-zone-threshold` of them not Ready) or FullDisruption (no node Ready). The
//! zone's state sets how fast NoExecute taints — and so evictions — may be added there:
//! `--node-eviction-rate` when Normal or FullDisruption, `--secondary-node-eviction-rate` when
//! PartialDisruption in a zone larger than `--large-cluster-size-threshold` (none in a smaller
//! one). When every zone is fully disrupted the problem is taken to be the control plane's own
//! view, not the nodes: evictions stop and existing NoExecute taints are lifted. Each zone's
//! size and health are exported as upstream's `node_collector_*` gauges.

use std::{collections::HashMap, time::Instant};

use prometheus::{GaugeVec, Opts, Registry};

/// A zone's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneState {
    /// Seen for the first time; its rate is set on the next change.
    Initial,
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// The eviction settings from the flags.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub eviction_rate: f64,
    pub secondary_eviction_rate: f64,
    pub large_cluster_threshold: usize,
    pub unhealthy_zone_threshold: f64,
}

/// What a pass over the zones asks of the controller beyond its rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    /// Every zone just became fully disrupted: lift the NoExecute taints.
    EnteredFullDisruption,
    /// Some node answers again after every zone was fully disrupted: restart every node's
    /// grace period.
    LeftFullDisruption,
}

/// A zone's state from its nodes' Ready conditions (`true` for Ready), with how many are not
/// Ready.
pub fn zone_state(ready: &[bool], unhealthy_threshold: f64) -> (usize, ZoneState) {
    let not_ready = ready.iter().filter(|r| !**r).count();
    let state = if not_ready > 0 && not_ready == ready.len() {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / ready.len() as f64 >= unhealthy_threshold {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    };
    (not_ready, state)
}

/// A token bucket (burst one) per zone for adding NoExecute taints; a zone's rate follows its
/// state.
struct Limiter {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Limiter {
    fn new(rate: f64) -> Limiter {
        Limiter {
            rate,
            tokens: 1.0,
            last: Instant::now(),
        }
    }

    fn try_take(&mut self) -> bool {
        if self.rate <= 0.0 {
            return false;
        }
        let now = Instant::now();
        self.tokens = (self.tokens + (now - self.last).as_secs_f64() * self.rate).min(1.0);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Upstream's per-zone gauges.
struct Metrics {
    size: GaugeVec,
    health: GaugeVec,
    unhealthy: GaugeVec,
}

impl Metrics {
    fn new(registry: &Registry) -> Result<Metrics, prometheus::Error> {
        let gauge = |name: &str, help: &str| -> Result<GaugeVec, prometheus::Error> {
            let g = GaugeVec::new(Opts::new(name, help).subsystem("node_collector"), &["zone"])?;
            component_base::metrics::register(registry, &g);
            Ok(g)
        };
        Ok(Metrics {
            size: gauge(
                "zone_size",
                "Gauge measuring number of registered Nodes per zones.",
            )?,
            health: gauge(
                "zone_health",
                "Gauge measuring percentage of healthy nodes per zone.",
            )?,
            unhealthy: gauge(
                "unhealthy_nodes_in_zone",
                "Gauge measuring number of not Ready Nodes per zones.",
            )?,
        })
    }

    fn set(&self, zone: &str, size: usize, unhealthy: usize) {
        self.size.with_label_values(&[zone]).set(size as f64);
        let health = if size == 0 {
            100.0
        } else {
            100.0 * (size - unhealthy) as f64 / size as f64
        };
        self.health.with_label_values(&[zone]).set(health);
        self.unhealthy
            .with_label_values(&[zone])
            .set(unhealthy as f64);
    }
}

/// The zones' states and eviction limiters.
pub struct Zones {
    settings: Settings,
    states: HashMap<String, ZoneState>,
    limiters: HashMap<String, Limiter>,
    metrics: Metrics,
}

impl Zones {
    pub fn new(settings: Settings, registry: &Registry) -> Result<Zones, prometheus::Error> {
        Ok(Zones {
            settings,
            states: HashMap::new(),
            limiters: HashMap::new(),
            metrics: Metrics::new(registry)?,
        })
    }

    /// Whether every zone is fully disrupted, so that no evictions happen.
    pub fn all_fully_disrupted(&self) -> bool {
        !self.states.is_empty()
            && self
                .states
                .values()
                .all(|s| *s == ZoneState::FullDisruption)
    }

    #[cfg(test)]
    pub fn state(&self, zone: &str) -> Option<ZoneState> {
        self.states.get(zone).copied()
    }

    /// Whether a NoExecute taint may be added in `zone` now.
    pub fn try_taint(&mut self, zone: &str) -> bool {
        let rate = self.settings.eviction_rate;
        self.limiters
            .entry(zone.to_string())
            .or_insert_with(|| Limiter::new(rate))
            .try_take()
    }

    fn set_rate(&mut self, zone: &str, size: usize, state: ZoneState) {
        let s = self.settings;
        let rate = match state {
            ZoneState::PartialDisruption if size > s.large_cluster_threshold => {
                s.secondary_eviction_rate
            }
            ZoneState::PartialDisruption => 0.0,
            _ => s.eviction_rate,
        };
        self.limiters.insert(zone.to_string(), Limiter::new(rate));
    }

    /// Takes in this pass's Ready conditions by zone and updates states and rates.
    pub fn observe(&mut self, ready_by_zone: &HashMap<String, Vec<bool>>) -> Transition {
        let mut new_states = HashMap::new();
        for (zone, ready) in ready_by_zone {
            let (unhealthy, state) = zone_state(ready, self.settings.unhealthy_zone_threshold);
            self.metrics.set(zone, ready.len(), unhealthy);
            new_states.insert(zone.clone(), state);
            self.states
                .entry(zone.clone())
                .or_insert(ZoneState::Initial);
        }
        for gone in self
            .states
            .keys()
            .filter(|z| !ready_by_zone.contains_key(*z))
        {
            self.metrics.set(gone, 0, 0);
        }
        self.states
            .retain(|zone, _| ready_by_zone.contains_key(zone));
        self.limiters
            .retain(|zone, _| ready_by_zone.contains_key(zone));
        let all_are = new_states.values().all(|s| *s == ZoneState::FullDisruption);
        let all_were = self
            .states
            .values()
            .all(|s| *s == ZoneState::FullDisruption);
        if all_are && all_were {
            return Transition::None;
        }
        let size = |zone: &str| ready_by_zone.get(zone).map_or(0, Vec::len);
        if all_are {
            for zone in new_states.keys() {
                self.limiters.insert(zone.clone(), Limiter::new(0.0));
                self.states.insert(zone.clone(), ZoneState::FullDisruption);
            }
            return Transition::EnteredFullDisruption;
        }
        let changed: Vec<(String, ZoneState)> = new_states
            .into_iter()
            .filter(|(zone, state)| all_were || self.states.get(zone) != Some(state))
            .collect();
        for (zone, state) in changed {
            tracing::info!(zone, ?state, "zone is now in a new state");
            self.set_rate(&zone, size(&zone), state);
            self.states.insert(zone, state);
        }
        if all_were {
            Transition::LeftFullDisruption
        } else {
            Transition::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: Settings = Settings {
        eviction_rate: 1000.0,
        secondary_eviction_rate: 1000.0,
        large_cluster_threshold: 4,
        unhealthy_zone_threshold: 0.55,
    };

    fn zones(spec: &[(&str, usize, usize)]) -> HashMap<String, Vec<bool>> {
        spec.iter()
            .map(|(zone, ready, not_ready)| {
                let mut v = vec![true; *ready];
                v.extend(vec![false; *not_ready]);
                (zone.to_string(), v)
            })
            .collect()
    }

    #[test]
    fn zone_states_follow_the_share_of_unready_nodes() {
        let t = 0.55;
        assert_eq!(zone_state(&[true, true], t), (0, ZoneState::Normal));
        assert_eq!(
            zone_state(&[false, false], t),
            (2, ZoneState::FullDisruption)
        );
        // Two unready nodes are never a partial disruption, however small the zone.
        assert_eq!(zone_state(&[true, false, false], t), (2, ZoneState::Normal));
        assert_eq!(
            zone_state(&[true, true, false, false, false], t),
            (3, ZoneState::PartialDisruption)
        );
        assert_eq!(
            zone_state(&[true, true, true, false, false, false], t),
            (3, ZoneState::Normal)
        );
    }

    #[test]
    fn partial_disruption_slows_or_stops_evictions_by_zone_size() {
        let mut z = Zones::new(SETTINGS, &Registry::new()).unwrap();
        // Small zone "a" (4 nodes, not above the threshold): evictions stop.
        // Large zone "b" (5 nodes): the secondary rate.
        assert_eq!(
            z.observe(&zones(&[("a", 1, 3), ("b", 2, 3), ("c", 3, 0)])),
            Transition::None
        );
        assert_eq!(z.state("a"), Some(ZoneState::PartialDisruption));
        assert_eq!(z.state("b"), Some(ZoneState::PartialDisruption));
        assert_eq!(z.state("c"), Some(ZoneState::Normal));
        assert!(!z.try_taint("a"));
        assert!(z.try_taint("b"));
        assert!(z.try_taint("c"));
    }

    #[test]
    fn a_fully_disrupted_zone_keeps_evicting_unless_every_zone_is() {
        let mut z = Zones::new(SETTINGS, &Registry::new()).unwrap();
        z.observe(&zones(&[("a", 0, 2), ("b", 2, 0)]));
        assert_eq!(z.state("a"), Some(ZoneState::FullDisruption));
        assert!(z.try_taint("a"));

        assert_eq!(
            z.observe(&zones(&[("a", 0, 2), ("b", 0, 2)])),
            Transition::EnteredFullDisruption
        );
        assert!(z.all_fully_disrupted());
        assert!(!z.try_taint("a"));
        assert!(!z.try_taint("b"));
        assert_eq!(
            z.observe(&zones(&[("a", 0, 2), ("b", 0, 2)])),
            Transition::None
        );
        assert!(!z.try_taint("b"));

        assert_eq!(
            z.observe(&zones(&[("a", 0, 2), ("b", 1, 1)])),
            Transition::LeftFullDisruption
        );
        assert_eq!(z.state("b"), Some(ZoneState::Normal));
        assert!(!z.all_fully_disrupted());
        assert!(z.try_taint("a"));
        assert!(z.try_taint("b"));
    }

    #[test]
    fn the_limiter_allows_one_taint_then_waits_for_the_rate() {
        let mut slow = Zones::new(
            Settings {
                eviction_rate: 0.1,
                ..SETTINGS
            },
            &Registry::new(),
        )
        .unwrap();
        assert!(slow.try_taint("a"));
        assert!(!slow.try_taint("a"));
        assert!(slow.try_taint("b"));
    }
}
