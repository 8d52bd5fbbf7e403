//! The watch cache of one resource: the current objects and a window of recent events, kept
//! current by the reflector. Lists at a known revision and every watch are served from here.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard},
    time::Duration,
};

use tokio::sync::{broadcast, watch};

use super::object::{EventType, Object, WatchEvent};
use crate::registry::ResourceDef;

/// How many past events each resource keeps for watches that resume from a revision.
const HISTORY: usize = 10_000;
/// How many events a watcher may fall behind before it is closed (it resumes from its last
/// revision, as upstream clients do).
const BROADCAST: usize = 16_384;

struct Inner {
    objects: BTreeMap<String, Arc<Object>>,
    history: VecDeque<Arc<WatchEvent>>,
    /// Every event with a revision above this is in `history`.
    oldest: i64,
    /// The revision the cache is current to.
    rv: i64,
}

/// A consistent view of the cache at one revision.
pub struct Snapshot {
    pub rv: i64,
    pub objects: Vec<Arc<Object>>,
}

/// Where a watch can start.
pub enum WatchStart {
    /// Events after the requested revision, then live events.
    Events(Vec<Arc<WatchEvent>>, broadcast::Receiver<Arc<WatchEvent>>),
    /// The requested revision is older than the cache's window.
    TooOld { oldest: i64 },
}

/// One resource's cache.
pub struct Cache {
    pub def: &'static ResourceDef,
    inner: RwLock<Inner>,
    tx: broadcast::Sender<Arc<WatchEvent>>,
    progress: watch::Sender<i64>,
}

impl Cache {
    pub fn new(def: &'static ResourceDef) -> Cache {
        let (tx, _) = broadcast::channel(BROADCAST);
        let (progress, _) = watch::channel(0);
        Cache {
            def,
            inner: RwLock::new(Inner {
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                oldest: 0,
                rv: 0,
            }),
            tx,
            progress,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the content with a full listing at `rv` (start-up, or after the etcd watch
    /// was lost beyond recovery). Watchers are not told; they resume with 410 and relist.
    pub fn replace(&self, objects: Vec<Object>, rv: i64) {
        let mut inner = self.write();
        inner.objects = objects
            .into_iter()
            .map(|o| (o.key.clone(), Arc::new(o)))
            .collect();
        inner.history.clear();
        inner.oldest = rv;
        inner.rv = rv;
        drop(inner);
        self.progress.send_replace(rv);
    }

    /// Applies an object change seen at `rv`; `None` deletes.
    pub fn apply(&self, key: &str, object: Option<Object>, deleted_at: i64) {
        let mut inner = self.write();
        let prev = inner.objects.get(key).cloned();
        let event = match object {
            Some(obj) => {
                let obj = Arc::new(obj);
                inner.objects.insert(key.to_string(), obj.clone());
                WatchEvent {
                    kind: if prev.is_some() {
                        EventType::Modified
                    } else {
                        EventType::Added
                    },
                    rv: obj.rv,
                    object: obj,
                    prev,
                }
            }
            None => {
                let Some(prev) = inner.objects.remove(key) else {
                    return;
                };
                let mut last = (*prev).clone();
                if let Ok(mut value) = last.value() {
                    last = Object::from_value(self.def, key, &mut value, deleted_at);
                }
                WatchEvent {
                    kind: EventType::Deleted,
                    rv: deleted_at,
                    object: Arc::new(last),
                    prev: Some(prev),
                }
            }
        };
        let event = Arc::new(event);
        inner.rv = inner.rv.max(event.rv);
        inner.history.push_back(event.clone());
        while inner.history.len() > HISTORY {
            if let Some(old) = inner.history.pop_front() {
                inner.oldest = old.rv;
            }
        }
        // Sent under the lock so that a watch starting now sees each event exactly once.
        let _ = self.tx.send(event);
    }

    /// Records that the cache is current to `rv` (no events of this resource up to it).
    pub fn advance(&self, rv: i64) {
        let mut inner = self.write();
        if rv > inner.rv {
            inner.rv = rv;
        }
        let rv = inner.rv;
        drop(inner);
        self.progress.send_replace(rv);
    }

    /// The revision the cache is current to.
    pub fn revision(&self) -> i64 {
        self.read().rv
    }

    /// Waits until the cache is current to at least `rv`; false on timeout.
    pub async fn wait_for(&self, rv: i64, timeout: Duration) -> bool {
        let mut rx = self.progress.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|current| *current >= rv))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The objects under `prefix` ("" for all, "<namespace>/" for one namespace).
    pub fn snapshot(&self, prefix: &str) -> Snapshot {
        let inner = self.read();
        let objects = if prefix.is_empty() {
            inner.objects.values().cloned().collect()
        } else {
            inner
                .objects
                .range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(_, v)| v.clone())
                .collect()
        };
        Snapshot {
            rv: inner.rv,
            objects,
        }
    }

    /// One object.
    pub fn get(&self, key: &str) -> (Option<Arc<Object>>, i64) {
        let inner = self.read();
        (inner.objects.get(key).cloned(), inner.rv)
    }

    /// Starts a watch from `rv`: the events after it, then live events.
    pub fn watch_from(&self, rv: i64) -> WatchStart {
        let inner = self.read();
        if rv < inner.oldest {
            return WatchStart::TooOld {
                oldest: inner.oldest,
            };
        }
        let start = inner.history.partition_point(|e| e.rv <= rv);
        let past = inner.history.range(start..).cloned().collect();
        WatchStart::Events(past, self.tx.subscribe())
    }

    /// Starts a watch at the current state: the objects under `prefix` as they are now, the
    /// revision they are at, and live events after it.
    pub fn watch_now(&self, prefix: &str) -> (Snapshot, broadcast::Receiver<Arc<WatchEvent>>) {
        let inner = self.read();
        let rx = self.tx.subscribe();
        let objects = inner
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect();
        (
            Snapshot {
                rv: inner.rv,
                objects,
            },
            rx,
        )
    }

    /// The number of objects held (for metrics).
    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    /// True when no object is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::catalog;

    fn object(def: &'static ResourceDef, name: &str, rv: i64) -> Object {
        let mut v = serde_json::json!({"metadata": {"name": name, "namespace": "ns", "labels": {"a": "b"}}});
        Object::from_value(def, &format!("ns/{name}"), &mut v, rv)
    }

    #[test]
    fn events_after_a_revision_then_live_and_too_old_below_the_window() {
        let def = catalog::find("", "v1", "configmaps").unwrap();
        let cache = Cache::new(def);
        cache.replace(vec![object(def, "a", 5)], 10);
        cache.apply("ns/b", Some(object(def, "b", 11)), 11);
        cache.apply("ns/a", Some(object(def, "a", 12)), 12);
        cache.apply("ns/b", None, 13);
        assert_eq!(cache.revision(), 13);
        match cache.watch_from(11) {
            WatchStart::Events(past, _) => {
                let kinds: Vec<(EventType, i64)> = past.iter().map(|e| (e.kind, e.rv)).collect();
                assert_eq!(
                    kinds,
                    vec![(EventType::Modified, 12), (EventType::Deleted, 13)]
                );
                assert_eq!(
                    past[1].object.rv, 13,
                    "a deletion carries the deletion revision"
                );
            }
            WatchStart::TooOld { .. } => panic!("11 is inside the window"),
        }
        assert!(matches!(
            cache.watch_from(9),
            WatchStart::TooOld { oldest: 10 }
        ));
        let snap = cache.snapshot("ns/");
        assert_eq!((snap.rv, snap.objects.len()), (13, 1));
        assert!(cache.snapshot("other/").objects.is_empty());
    }

    #[test]
    fn live_events_reach_subscribers() {
        let def = catalog::find("", "v1", "configmaps").unwrap();
        let cache = Cache::new(def);
        cache.replace(Vec::new(), 1);
        let (snap, mut rx) = cache.watch_now("");
        assert_eq!(snap.rv, 1);
        cache.apply("ns/x", Some(object(def, "x", 2)), 2);
        let ev = rx.try_recv().unwrap();
        assert_eq!((ev.kind, ev.rv), (EventType::Added, 2));
        assert_eq!(
            ev.object.attrs.labels.get("a").map(String::as_str),
            Some("b")
        );
    }
}
