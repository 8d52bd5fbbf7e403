//! The change tracker: Services and EndpointSlices as the watches report them, and the set of
//! services that changed since the last sync, so that a sync recomputes only those.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Instant,
};

use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use kube::ResourceExt;
use tokio::sync::Notify;

use crate::model::{self, ServicePort};

/// The label linking an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

#[derive(Default)]
struct State {
    services: HashMap<String, Arc<Service>>,
    /// Slices by owning service key, then by slice name.
    slices: HashMap<String, BTreeMap<String, Arc<EndpointSlice>>>,
    dirty: HashSet<String>,
    /// When the oldest unsynced change arrived (upstream's "last queued" time).
    queued_at: Option<Instant>,
    services_synced: bool,
    slices_synced: bool,
    pending_services: Option<Vec<Service>>,
    pending_slices: Option<Vec<EndpointSlice>>,
}

/// Shared between the watch loops (writers) and the sync loop (reader).
#[derive(Default)]
pub struct Tracker {
    state: Mutex<State>,
    /// Woken whenever something changed.
    pub changed: Notify,
}

/// The service ports of the services a sync has to look at.
pub struct Changes {
    /// Per service key, its ports now (empty when the service is gone or headless).
    pub services: Vec<(String, Vec<ServicePort>)>,
    pub queued_at: Option<Instant>,
}

fn service_key(svc: &Service) -> String {
    format!("{}/{}", svc.namespace().unwrap_or_default(), svc.name_any())
}

fn slice_owner(slice: &EndpointSlice) -> Option<String> {
    let svc = slice.labels().get(SERVICE_NAME_LABEL)?;
    Some(format!("{}/{}", slice.namespace().unwrap_or_default(), svc))
}

impl Tracker {
    fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    fn mark(&self, state: &mut State, key: String) {
        tracing::trace!(service = %key, "change queued for the next sync");
        state.dirty.insert(key);
        state.queued_at.get_or_insert_with(Instant::now);
        self.changed.notify_one();
    }

    pub fn apply_service(&self, svc: Service) {
        let key = service_key(&svc);
        self.with_state(|s| {
            s.services.insert(key.clone(), Arc::new(svc));
            self.mark(s, key);
        });
    }

    pub fn delete_service(&self, svc: &Service) {
        let key = service_key(svc);
        self.with_state(|s| {
            s.services.remove(&key);
            self.mark(s, key);
        });
    }

    pub fn apply_slice(&self, slice: EndpointSlice) {
        let Some(key) = slice_owner(&slice) else {
            return;
        };
        let name = slice.name_any();
        self.with_state(|s| {
            s.slices
                .entry(key.clone())
                .or_default()
                .insert(name, Arc::new(slice));
            self.mark(s, key);
        });
    }

    pub fn delete_slice(&self, slice: &EndpointSlice) {
        let Some(key) = slice_owner(slice) else {
            return;
        };
        let name = slice.name_any();
        self.with_state(|s| {
            if let Some(m) = s.slices.get_mut(&key) {
                m.remove(&name);
                if m.is_empty() {
                    s.slices.remove(&key);
                }
            }
            self.mark(s, key);
        });
    }

    /// A (re)list of services began; objects arrive through `relist_service`.
    pub fn begin_service_relist(&self) {
        self.with_state(|s| s.pending_services = Some(Vec::new()));
    }

    pub fn relist_service(&self, svc: Service) {
        self.with_state(|s| s.pending_services.get_or_insert_with(Vec::new).push(svc));
    }

    /// The relist is complete: it replaces what was known, and every service is re-checked.
    pub fn end_service_relist(&self) {
        self.with_state(|s| {
            let fresh: HashMap<String, Arc<Service>> = s
                .pending_services
                .take()
                .unwrap_or_default()
                .into_iter()
                .map(|svc| (service_key(&svc), Arc::new(svc)))
                .collect();
            let old = std::mem::replace(&mut s.services, fresh);
            let keys: Vec<String> = old.into_keys().chain(s.services.keys().cloned()).collect();
            for key in keys {
                self.mark(s, key);
            }
            s.services_synced = true;
        });
        self.changed.notify_one();
    }

    pub fn begin_slice_relist(&self) {
        self.with_state(|s| s.pending_slices = Some(Vec::new()));
    }

    pub fn relist_slice(&self, slice: EndpointSlice) {
        self.with_state(|s| s.pending_slices.get_or_insert_with(Vec::new).push(slice));
    }

    pub fn end_slice_relist(&self) {
        self.with_state(|s| {
            let mut fresh: HashMap<String, BTreeMap<String, Arc<EndpointSlice>>> = HashMap::new();
            for slice in s.pending_slices.take().unwrap_or_default() {
                if let Some(key) = slice_owner(&slice) {
                    fresh
                        .entry(key)
                        .or_default()
                        .insert(slice.name_any(), Arc::new(slice));
                }
            }
            let old = std::mem::replace(&mut s.slices, fresh);
            let keys: Vec<String> = old.into_keys().chain(s.slices.keys().cloned()).collect();
            for key in keys {
                self.mark(s, key);
            }
            s.slices_synced = true;
        });
        self.changed.notify_one();
    }

    /// Both initial lists are in, so a sync would not remove rules for objects not yet seen.
    pub fn synced(&self) -> bool {
        self.with_state(|s| s.services_synced && s.slices_synced)
    }

    /// Whether changes are waiting, and since when.
    pub fn queued_at(&self) -> Option<Instant> {
        self.with_state(|s| s.queued_at)
    }

    /// Takes the pending changes: the changed services (or all of them for a full sync).
    pub fn take(&self, full: bool, node_name: &str) -> Changes {
        self.with_state(|s| {
            let dirty = std::mem::take(&mut s.dirty);
            let queued_at = s.queued_at.take();
            let keys: Vec<String> = if full {
                s.services
                    .keys()
                    .cloned()
                    .chain(dirty)
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect()
            } else {
                dirty.into_iter().collect()
            };
            let services = keys
                .into_iter()
                .map(|key| {
                    let ports = match s.services.get(&key) {
                        Some(svc) => {
                            let slices: Vec<&EndpointSlice> = s
                                .slices
                                .get(&key)
                                .map(|m| m.values().map(|a| a.as_ref()).collect())
                                .unwrap_or_default();
                            model::service_ports(svc, &slices, node_name)
                        }
                        None => Vec::new(),
                    };
                    (key, ports)
                })
                .collect();
            Changes {
                services,
                queued_at,
            }
        })
    }

    /// Puts services back after a failed sync so the next one retries them.
    pub fn requeue(&self, keys: impl IntoIterator<Item = String>, queued_at: Option<Instant>) {
        self.with_state(|s| {
            s.dirty.extend(keys);
            if let Some(t) = queued_at {
                s.queued_at = Some(s.queued_at.map_or(t, |q| q.min(t)));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_changed_services_are_taken() {
        let t = Tracker::default();
        let svc = |name: &str| -> Service {
            serde_json::from_value(json!({
                "metadata": {"namespace": "ns", "name": name},
                "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80}]}
            }))
            .unwrap()
        };
        t.begin_service_relist();
        t.relist_service(svc("a"));
        t.relist_service(svc("b"));
        t.end_service_relist();
        assert!(!t.synced());
        t.begin_slice_relist();
        t.end_slice_relist();
        assert!(t.synced());
        assert_eq!(t.take(false, "n").services.len(), 2);
        assert!(t.take(false, "n").services.is_empty());
        t.apply_service(svc("b"));
        let changes = t.take(false, "n");
        assert_eq!(changes.services.len(), 1);
        assert_eq!(changes.services[0].0, "ns/b");
        assert!(changes.queued_at.is_some());
        assert_eq!(t.take(true, "n").services.len(), 2);
    }
}
