//! What every mode shares: folding tracked changes into the current service-port map, and the
//! outcome of one sync.

use crate::{
    exec::ExecError,
    model::{ServicePort, ServicePortMap, ServicePortName},
    tracker::Changes,
};

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// One service port that changed, with its state before. Its state after is the one in the
/// service-port map (none when it is gone): a full sync changes every port, and a second copy of
/// each would cost the sync its allocation time.
#[derive(Debug, Clone)]
pub struct PortChange {
    pub name: ServicePortName,
    pub old: Option<ServicePort>,
}

impl PortChange {
    /// The port as it is now.
    pub fn current<'a>(&self, ports: &'a ServicePortMap) -> Option<&'a ServicePort> {
        ports.get(&self.name)
    }
}

/// What a sync did, for metrics and logs.
#[derive(Debug, Default, Clone)]
pub struct SyncReport {
    pub full: bool,
    /// Service ports whose rules were rewritten.
    pub rewritten: usize,
    /// Rules (or, in userspace mode, listeners) now in place, per table.
    pub rules: Vec<(&'static str, usize)>,
    /// UDP conntrack entries the changes made stale.
    pub stale_udp: Vec<crate::conntrack::Stale>,
}

/// Folds `changes` into `ports` and returns the service ports that actually differ.
pub fn apply_changes(ports: &mut ServicePortMap, changes: &Changes) -> Vec<PortChange> {
    let mut out = Vec::new();
    for (key, new_ports) in &changes.services {
        let (ns, name) = key.split_once('/').unwrap_or(("", key.as_str()));
        let old_names: Vec<ServicePortName> = ports
            .range(
                ServicePortName {
                    namespace: ns.to_string(),
                    name: name.to_string(),
                    port_name: String::new(),
                    protocol: crate::model::Protocol::Tcp,
                }..,
            )
            .take_while(|(n, _)| n.namespace == ns && n.name == name)
            .map(|(n, _)| n.clone())
            .collect();
        for n in old_names {
            if !new_ports.iter().any(|p| p.name == n) {
                let old = ports.remove(&n);
                out.push(PortChange { name: n, old });
            }
        }
        for p in new_ports {
            if ports.get(&p.name) == Some(p) {
                continue;
            }
            let old = ports.insert(p.name.clone(), p.clone());
            out.push(PortChange {
                name: p.name.clone(),
                old,
            });
        }
    }
    out
}

/// Counts service ports with a Local traffic policy but no local endpoint:
/// (internal, external).
pub fn no_local_endpoints(ports: &ServicePortMap) -> (usize, usize) {
    let count = |policy: fn(&ServicePort) -> bool| {
        ports
            .values()
            .filter(|p| policy(p) && p.local_endpoints.is_empty())
            .count()
    };
    (
        count(|p| p.internal_policy_local),
        count(|p| p.external_policy_local),
    )
}

/// A short stable hash (FNV-1a, 64 bits) rendered in upstream's upper-case base32 style, for
/// chain names that must stay short (iptables allows 28 characters).
pub fn short_hash(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    (0..13)
        .map(|i| ALPHABET[((h >> (i * 5)) & 31) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_distinct() {
        assert_eq!(short_hash(&["a", "b"]), short_hash(&["a", "b"]));
        assert_ne!(short_hash(&["a", "b"]), short_hash(&["ab"]));
        assert_eq!(short_hash(&["x"]).len(), 13);
    }
}
