//! Controller expectations, as upstream's: after a controller creates or deletes pods it waits
//! to observe those changes in its cache before acting on the same object again, so that a
//! stale cache never makes it create (or delete) the same pods twice. Expectations expire after
//! five minutes in case a watch event was lost.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::{Duration, Instant},
};

use component_base::informer::{key_of, Change};
use k8s_openapi::api::core::v1::Pod;

const TTL: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Pending {
    adds: i64,
    deletes: HashSet<String>,
    set_at: Instant,
}

/// Outstanding creations (counted) and deletions (by pod key) per controller key.
#[derive(Debug, Default)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the cache has caught up with what `key`'s last sync did.
    pub fn satisfied(&self, key: &str) -> bool {
        match self.lock().get(key) {
            None => true,
            Some(p) => (p.adds <= 0 && p.deletes.is_empty()) || p.set_at.elapsed() > TTL,
        }
    }

    /// Records that `adds` creations are on their way.
    pub fn expect_creations(&self, key: &str, adds: usize) {
        self.lock().insert(
            key.to_string(),
            Pending {
                adds: adds as i64,
                deletes: HashSet::new(),
                set_at: Instant::now(),
            },
        );
    }

    /// Records that the pods under `pod_keys` are being deleted.
    pub fn expect_deletions(&self, key: &str, pod_keys: impl IntoIterator<Item = String>) {
        self.lock().insert(
            key.to_string(),
            Pending {
                adds: 0,
                deletes: pod_keys.into_iter().collect(),
                set_at: Instant::now(),
            },
        );
    }

    /// A creation was seen, or will never happen because it failed.
    pub fn creation_observed(&self, key: &str) {
        if let Some(p) = self.lock().get_mut(key) {
            p.adds -= 1;
        }
    }

    /// The deletion of `pod_key` was seen, or will never happen because it failed.
    pub fn deletion_observed(&self, key: &str, pod_key: &str) {
        if let Some(p) = self.lock().get_mut(key) {
            p.deletes.remove(pod_key);
        }
    }

    /// Settles the expected deletion of `pod_key` whose delete request failed with `e`: a pod
    /// already gone counts as deleted; any other error is passed on.
    pub fn deletion_failed(
        &self,
        key: &str,
        pod_key: &str,
        e: kube::Error,
    ) -> Result<(), kube::Error> {
        self.deletion_observed(key, pod_key);
        if crate::pods::is_not_found(&e) {
            Ok(())
        } else {
            Err(e)
        }
    }

    /// Observes what a change to one of `key`'s pods settles: its creation, or its deletion
    /// (a deletion timestamp newly set, or the pod gone).
    pub fn pod_changed(&self, key: &str, change: &Change<Pod>) {
        match change {
            Change::Added(_) => self.creation_observed(key),
            Change::Deleted(p) => self.deletion_observed(key, &key_of(p.as_ref())),
            Change::Updated { old, new } => {
                if new.metadata.deletion_timestamp.is_some()
                    && old.metadata.deletion_timestamp.is_none()
                {
                    self.deletion_observed(key, &key_of(new.as_ref()));
                }
            }
        }
    }

    /// Forgets `key` (its object is gone).
    pub fn delete(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn satisfied_once_every_change_is_observed() {
        let e = Expectations::default();
        assert!(e.satisfied("ns/rs"));
        e.expect_creations("ns/rs", 2);
        e.creation_observed("ns/rs");
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(e.satisfied("ns/rs"));
        e.expect_deletions("ns/rs", ["ns/p1".to_string()]);
        e.deletion_observed("ns/rs", "ns/other");
        assert!(!e.satisfied("ns/rs"));
        e.deletion_observed("ns/rs", "ns/p1");
        e.deletion_observed("ns/rs", "ns/p1");
        assert!(e.satisfied("ns/rs"));
    }
}
