//! The EndpointSlices a controller wrote, remembered until its informer shows them (upstream's
//! EndpointSliceTracker). A sync working from a cache that lacks its own recent writes would
//! take a slice it just created for missing and create it again; so while the cache is behind,
//! the sync waits. Shared by the EndpointSlice and EndpointSlice mirroring controllers.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;

/// How long a recorded write is waited for; past it the cache is trusted (another writer may
/// have changed or removed the slice in between).
const STALE_LIMIT: Duration = Duration::from_secs(10);

/// How long a sync waits before looking at the cache again.
pub const STALE_RETRY: Duration = Duration::from_millis(100);

/// One service's writes: slice name → (resource version written, `None` once deleted; when).
type Writes = HashMap<String, (Option<u64>, Instant)>;

fn resource_version(s: &EndpointSlice) -> Option<u64> {
    s.metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
}

/// Own writes per service key.
#[derive(Default)]
pub struct SliceTracker {
    written: Mutex<HashMap<String, Writes>>,
}

impl SliceTracker {
    fn record(&self, service: &str, name: &str, rv: Option<u64>) {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(service.to_string())
            .or_default()
            .insert(name.to_string(), (rv, Instant::now()));
    }

    /// Records that `slice` (as the apiserver returned it) was created or updated for `service`.
    pub fn written(&self, service: &str, slice: &EndpointSlice) {
        self.record(service, &slice.name_any(), resource_version(slice));
    }

    /// Records that slice `name` of `service` was deleted.
    pub fn deleted(&self, service: &str, name: &str) {
        self.record(service, name, None);
    }

    /// Whether the cache (`cached` looks a slice of the service's namespace up by name) does
    /// not yet show every write recorded for `service`; writes it shows are forgotten.
    pub fn cache_is_stale(
        &self,
        service: &str,
        cached: impl Fn(&str) -> Option<Arc<EndpointSlice>>,
    ) -> bool {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let Some(slices) = written.get_mut(service) else {
            return false;
        };
        slices.retain(|name, (rv, at)| {
            if at.elapsed() > STALE_LIMIT {
                return false;
            }
            let caught_up = match (rv, cached(name)) {
                (None, None) => true,
                (None, Some(_)) | (Some(_), None) => false,
                (Some(rv), Some(c)) => resource_version(&c).is_some_and(|seen| seen >= *rv),
            };
            !caught_up
        });
        let stale = !slices.is_empty();
        if !stale {
            written.remove(service);
        }
        stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn slice(name: &str, rv: &str) -> Arc<EndpointSlice> {
        Arc::new(EndpointSlice {
            metadata: ObjectMeta {
                name: Some(name.into()),
                resource_version: Some(rv.into()),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            endpoints: Vec::new(),
            ports: None,
        })
    }

    #[test]
    fn stale_until_the_cache_shows_every_own_write() {
        let t = SliceTracker::default();
        assert!(!t.cache_is_stale("ns/svc", |_| None));
        t.written("ns/svc", &slice("a", "7"));
        t.deleted("ns/svc", "b");
        // Neither write visible yet.
        assert!(t.cache_is_stale("ns/svc", |n| (n == "b").then(|| slice("b", "3"))));
        // The create is seen at an older version only.
        assert!(t.cache_is_stale("ns/svc", |n| (n == "a").then(|| slice("a", "6"))));
        // Both caught up; the service is forgotten.
        assert!(!t.cache_is_stale("ns/svc", |n| (n == "a").then(|| slice("a", "8"))));
        assert!(!t.cache_is_stale("ns/svc", |_| None));
    }
}
