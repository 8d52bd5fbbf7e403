//! Shared informers, as client-go's SharedInformerFactory: one list+watch per resource for the
//! whole process, a cache every controller reads, and change notifications fanned out to every
//! registered handler. Handlers only enqueue keys; controllers read the cache when they sync.

use std::{
    any::Any,
    collections::HashMap,
    fmt::Debug,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, RwLock},
};

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{
    api::{Api, ApiResource, DynamicObject},
    runtime::watcher,
    Client, Resource,
};
use serde::de::DeserializeOwned;
use tokio::{sync::watch, task::JoinHandle};

/// The cache key of an object: `namespace/name`, or `name` for cluster-scoped objects.
pub fn key(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// Splits a key into namespace (empty for cluster-scoped objects) and name.
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

/// The key of an object.
pub fn key_of<K: Resource>(obj: &K) -> String {
    key(
        obj.meta().namespace.as_deref(),
        obj.meta().name.as_deref().unwrap_or(""),
    )
}

/// What changed in the cache.
#[derive(Debug)]
pub enum Change<K> {
    Added(Arc<K>),
    Updated { old: Arc<K>, new: Arc<K> },
    Deleted(Arc<K>),
}

type Handler<K> = Box<dyn Fn(&Change<K>) + Send + Sync>;
type Runner = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A cache of one resource kept current by a single watch, and the handlers it notifies.
pub struct Informer<K> {
    resource: String,
    store: RwLock<HashMap<String, Arc<K>>>,
    handlers: RwLock<Vec<Handler<K>>>,
    synced: watch::Sender<bool>,
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    fn new(resource: String) -> Informer<K> {
        Informer {
            resource,
            store: RwLock::new(HashMap::new()),
            handlers: RwLock::new(Vec::new()),
            synced: watch::channel(false).0,
        }
    }

    /// The object cached under `key`.
    pub fn get(&self, key: &str) -> Option<Arc<K>> {
        self.read().get(key).cloned()
    }

    /// Every cached object.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.read().values().cloned().collect()
    }

    /// The cached objects of one namespace.
    pub fn list_in(&self, namespace: &str) -> Vec<Arc<K>> {
        self.read()
            .values()
            .filter(|o| o.meta().namespace.as_deref() == Some(namespace))
            .cloned()
            .collect()
    }

    /// Whether the first list has been applied.
    pub fn has_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Completes once the first list has been applied.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Registers a handler; it first sees every object already cached as `Added`.
    pub fn add_handler(&self, handler: impl Fn(&Change<K>) + Send + Sync + 'static) {
        let mut handlers = self.handlers.write().unwrap_or_else(|e| e.into_inner());
        for obj in self.list() {
            handler(&Change::Added(obj));
        }
        handlers.push(Box::new(handler));
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<K>>> {
        self.store.read().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self, changes: Vec<Change<K>>) {
        let handlers = self.handlers.read().unwrap_or_else(|e| e.into_inner());
        for change in &changes {
            for h in handlers.iter() {
                h(change);
            }
        }
    }

    fn upsert(&self, obj: K) -> Option<Change<K>> {
        let new = Arc::new(obj);
        let old = self
            .store
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key_of(new.as_ref()), new.clone());
        match old {
            Some(old) if old.meta().resource_version == new.meta().resource_version => None,
            Some(old) => Some(Change::Updated { old, new }),
            None => Some(Change::Added(new)),
        }
    }

    fn remove(&self, obj: K) -> Change<K> {
        let removed = self
            .store
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key_of(&obj));
        Change::Deleted(removed.unwrap_or_else(|| Arc::new(obj)))
    }

    /// Swaps in a fresh list, reporting what it added, changed and no longer holds.
    fn replace(&self, fresh: HashMap<String, Arc<K>>) -> Vec<Change<K>> {
        let mut store = self.store.write().unwrap_or_else(|e| e.into_inner());
        let mut changes = Vec::new();
        for (k, new) in &fresh {
            match store.get(k) {
                Some(old) if old.meta().resource_version == new.meta().resource_version => {}
                Some(old) => changes.push(Change::Updated {
                    old: old.clone(),
                    new: new.clone(),
                }),
                None => changes.push(Change::Added(new.clone())),
            }
        }
        for (k, old) in store.iter() {
            if !fresh.contains_key(k) {
                changes.push(Change::Deleted(old.clone()));
            }
        }
        *store = fresh;
        changes
    }

    /// Lists and watches until the process ends, relisting after errors.
    async fn run(self: Arc<Self>, api: Api<K>) {
        let stream = watcher(api, watcher::Config::default().any_semantic());
        futures::pin_mut!(stream);
        let mut relist: Option<HashMap<String, Arc<K>>> = None;
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Init) => relist = Some(HashMap::new()),
                Ok(watcher::Event::InitApply(obj)) => {
                    if let Some(fresh) = relist.as_mut() {
                        fresh.insert(key_of(&obj), Arc::new(obj));
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    let changes = self.replace(relist.take().unwrap_or_default());
                    self.synced.send_replace(true);
                    self.notify(changes);
                }
                Ok(watcher::Event::Apply(obj)) => {
                    if let Some(change) = self.upsert(obj) {
                        self.notify(vec![change]);
                    }
                }
                Ok(watcher::Event::Delete(obj)) => {
                    let change = self.remove(obj);
                    self.notify(vec![change]);
                }
                Err(err) => {
                    tracing::warn!(resource = %self.resource, %err, "watch failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// What a garbage collector needs of any resource: object metadata and its changes.
#[derive(Debug, Clone)]
pub enum MetaChange {
    Upserted(ObjectMeta),
    Deleted(ObjectMeta),
}

/// A metadata-only view of an informer of any type.
pub trait MetaInformer: Send + Sync {
    /// Registers a handler of metadata changes (replaying the cache first).
    fn add_meta_handler(&self, handler: Box<dyn Fn(MetaChange) + Send + Sync>);
    fn synced(&self) -> bool;
}

impl<K> MetaInformer for Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    fn add_meta_handler(&self, handler: Box<dyn Fn(MetaChange) + Send + Sync>) {
        self.add_handler(move |change| match change {
            Change::Added(o) | Change::Updated { new: o, .. } => {
                handler(MetaChange::Upserted(o.meta().clone()))
            }
            Change::Deleted(o) => handler(MetaChange::Deleted(o.meta().clone())),
        });
    }

    fn synced(&self) -> bool {
        self.has_synced()
    }
}

struct Entry {
    typed: Arc<dyn Any + Send + Sync>,
    meta: Arc<dyn MetaInformer>,
    runner: Option<Runner>,
}

/// Hands out one informer per resource and starts their watches.
pub struct InformerFactory {
    client: Client,
    entries: Mutex<HashMap<String, Entry>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn resource_id(group: &str, version: &str, plural: &str) -> String {
    format!("{group}/{version}/{plural}")
}

impl InformerFactory {
    pub fn new(client: Client) -> InformerFactory {
        InformerFactory {
            client,
            entries: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The process's informer of `K` across all namespaces.
    pub fn informer<K>(&self) -> Arc<Informer<K>>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let id = resource_id(&K::group(&()), &K::version(&()), &K::plural(&()));
        let mut entries = self.entries();
        if let Some(found) = entries
            .get(&id)
            .and_then(|e| e.typed.clone().downcast::<Informer<K>>().ok())
        {
            return found;
        }
        let informer = Arc::new(Informer::<K>::new(id.clone()));
        let api: Api<K> = Api::all(self.client.clone());
        entries.insert(
            id,
            Entry {
                typed: informer.clone(),
                meta: informer.clone(),
                runner: Some(Box::pin(informer.clone().run(api))),
            },
        );
        informer
    }

    /// A metadata view of `resource`: the existing informer when one is already shared, a new
    /// dynamic one otherwise.
    pub fn metadata(&self, resource: &ApiResource) -> Arc<dyn MetaInformer> {
        let id = resource_id(&resource.group, &resource.version, &resource.plural);
        let mut entries = self.entries();
        if let Some(found) = entries.get(&id) {
            return found.meta.clone();
        }
        let informer = Arc::new(Informer::<DynamicObject>::new(id.clone()));
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), resource);
        entries.insert(
            id,
            Entry {
                typed: informer.clone(),
                meta: informer.clone(),
                runner: Some(Box::pin(informer.clone().run(api))),
            },
        );
        informer
    }

    /// Starts the watch of every informer handed out since the last call.
    pub fn start(&self) {
        let runners: Vec<Runner> = self
            .entries()
            .values_mut()
            .filter_map(|e| e.runner.take())
            .collect();
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.extend(runners.into_iter().map(tokio::spawn));
    }

    /// Whether every informer handed out so far has applied its first list.
    pub fn all_synced(&self) -> bool {
        self.entries().values().all(|e| e.meta.synced())
    }
}

impl Drop for InformerFactory {
    fn drop(&mut self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn cm(name: &str, rv: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(rv.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn relist_reports_additions_updates_and_deletions() {
        let inf = Informer::<ConfigMap>::new("cm".into());
        assert!(matches!(inf.upsert(cm("a", "1")), Some(Change::Added(_))));
        assert!(inf.upsert(cm("a", "1")).is_none());
        inf.upsert(cm("b", "1"));
        let fresh: HashMap<_, _> = [cm("a", "2"), cm("c", "1")]
            .into_iter()
            .map(|o| (key_of(&o), Arc::new(o)))
            .collect();
        let changes = inf.replace(fresh);
        assert_eq!(changes.len(), 3);
        assert!(changes.iter().any(|c| matches!(c, Change::Updated { new, .. } if new.metadata.name.as_deref() == Some("a"))));
        assert!(changes
            .iter()
            .any(|c| matches!(c, Change::Added(o) if o.metadata.name.as_deref() == Some("c"))));
        assert!(changes
            .iter()
            .any(|c| matches!(c, Change::Deleted(o) if o.metadata.name.as_deref() == Some("b"))));
        assert_eq!(split_key("ns/a"), ("ns", "a"));
        assert_eq!(split_key("node1"), ("", "node1"));
        assert_eq!(inf.list_in("ns").len(), 2);
    }
}
