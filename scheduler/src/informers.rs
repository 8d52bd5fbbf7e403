//! Watches that feed the scheduler: nodes and bound pods into the cache, pending pods of this
//! scheduler's profiles into the queue, PodDisruptionBudgets for preemption. Each change that
//! could make an unschedulable pod schedulable is passed on as a cluster event.

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicBool, AtomicU8, Ordering},
        Arc,
    },
};

use futures::{Stream, StreamExt};
use k8s_openapi::api::{
    apps::v1::{ReplicaSet, StatefulSet},
    core::v1::{Namespace, Node, Pod, ReplicationController, Service},
    policy::v1::PodDisruptionBudget,
};
use kube::{
    api::Api,
    runtime::{watcher, WatchStreamExt},
    Client, Resource,
};

use crate::{
    framework::{ClusterEvent, PodInfo},
    scheduler::Scheduler,
    workloads::{Kind, Selector},
};

/// Whether each watch has delivered its initial list.
#[derive(Default)]
pub struct Synced {
    pub nodes: AtomicBool,
    pub pods: AtomicBool,
    pub pdbs: AtomicBool,
    pub namespaces: AtomicBool,
    /// One bit per workload kind that has listed.
    pub workloads: AtomicU8,
}

impl Synced {
    pub fn all(&self) -> bool {
        self.nodes.load(Ordering::Acquire)
            && self.pods.load(Ordering::Acquire)
            && self.pdbs.load(Ordering::Acquire)
            && self.namespaces.load(Ordering::Acquire)
            && self.workloads.load(Ordering::Acquire) == ALL_WORKLOADS
    }
}

fn key_of<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{}", meta.name.as_deref().unwrap_or("")),
        _ => meta.name.clone().unwrap_or_default(),
    }
}

/// Drives a watcher, calling `apply`/`delete` per object and `relisted` with the keys seen in a
/// complete (re)list so objects deleted while disconnected are dropped.
async fn drive<K, S>(
    stream: S,
    what: &'static str,
    mut apply: impl FnMut(K),
    mut delete: impl FnMut(K),
    mut relisted: impl FnMut(HashSet<String>),
) where
    K: Resource + Clone,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    let mut seen: HashSet<String> = HashSet::new();
    // As upstream's informers, drop managedFields: the scheduler never reads them and they are
    // most of an object's size.
    let stream =
        stream.map(|event| event.map(|e| e.modify(|obj| obj.meta_mut().managed_fields = None)));
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Apply(obj)) => apply(obj),
            Ok(watcher::Event::Delete(obj)) => delete(obj),
            Ok(watcher::Event::Init) => seen.clear(),
            Ok(watcher::Event::InitApply(obj)) => {
                seen.insert(key_of(&obj));
                apply(obj);
            }
            Ok(watcher::Event::InitDone) => relisted(std::mem::take(&mut seen)),
            Err(err) => tracing::warn!(%err, resource = what, "watch failed; retrying"),
        }
    }
}

/// Nodes into the cache.
pub async fn nodes(client: Client, sched: Arc<Scheduler>, synced: Arc<Synced>) {
    let api: Api<Node> = Api::all(client);
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    drive(
        stream,
        "nodes",
        |node| {
            let event = sched.cache().upsert_node(Arc::new(node));
            if let Some(event) = event {
                sched.on_event(event);
            }
        },
        |node| {
            sched
                .cache()
                .remove_node(node.metadata.name.as_deref().unwrap_or(""));
        },
        |seen| {
            let mut cache = sched.cache();
            for name in cache.node_names() {
                if !seen.contains(&name) {
                    cache.remove_node(&name);
                }
            }
            drop(cache);
            synced.nodes.store(true, Ordering::Release);
            sched.on_event(ClusterEvent::NodeAdd);
        },
    )
    .await;
}

fn apply_pod(sched: &Scheduler, pod: Pod) {
    let bound = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let info = Arc::new(if bound {
        PodInfo::bound(pod)
    } else {
        PodInfo::new(Arc::new(pod))
    });
    match info.node_name() {
        Some(node) => {
            sched.queue.delete(&info.key);
            if info.terminal {
                if sched.cache().remove_pod(&info.key) {
                    sched.on_event(ClusterEvent::AssignedPodDelete);
                }
                return;
            }
            let node = node.to_string();
            let existed = {
                let mut cache = sched.cache();
                let existed = cache.is_placed(&info.key);
                cache.upsert_bound_pod(info, &node);
                existed
            };
            sched.on_event(if existed {
                ClusterEvent::AssignedPodUpdate
            } else {
                ClusterEvent::AssignedPodAdd
            });
        }
        None => {
            if !sched.handles(info.scheduler_name()) {
                return;
            }
            // Terminating pods are not scheduled; gated pods wait until their
            // schedulingGates are removed (upstream's SchedulingGates plugin).
            let gated = info
                .spec()
                .and_then(|s| s.scheduling_gates.as_ref())
                .is_some_and(|g| !g.is_empty());
            if info.is_terminating() || info.terminal || gated {
                sched.queue.delete(&info.key);
                return;
            }
            // Assumed and binding: the informer has not caught up yet.
            if sched.cache().is_placed(&info.key) {
                return;
            }
            sched.queue.add(info);
        }
    }
}

fn delete_pod(sched: &Scheduler, key: &str) {
    sched.queue.delete(key);
    sched.explanations.remove(key);
    if sched.cache().remove_pod(key) {
        sched.on_event(ClusterEvent::AssignedPodDelete);
    }
}

/// Every pod: bound ones into the cache, pending ones of our profiles into the queue.
pub async fn pods(client: Client, sched: Arc<Scheduler>, synced: Arc<Synced>) {
    let api: Api<Pod> = Api::all(client);
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    drive(
        stream,
        "pods",
        |pod| apply_pod(&sched, pod),
        |pod| delete_pod(&sched, &key_of(&pod)),
        |seen| {
            let cached = sched.cache().pod_keys();
            for key in cached.into_iter().chain(sched.queue.keys()) {
                if !seen.contains(&key) {
                    delete_pod(&sched, &key);
                }
            }
            synced.pods.store(true, Ordering::Release);
        },
    )
    .await;
}

/// PodDisruptionBudgets, consulted when choosing preemption victims.
pub async fn pdbs(client: Client, sched: Arc<Scheduler>, synced: Arc<Synced>) {
    let api: Api<PodDisruptionBudget> = Api::all(client);
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let store = |f: &dyn Fn(&mut std::collections::HashMap<String, PodDisruptionBudget>)| {
        if let Ok(mut pdbs) = sched.pdbs.lock() {
            f(&mut pdbs);
        }
    };
    drive(
        stream,
        "poddisruptionbudgets",
        |pdb| {
            store(&|m| {
                m.insert(key_of(&pdb), pdb.clone());
            })
        },
        |pdb| {
            store(&|m| {
                m.remove(&key_of(&pdb));
            })
        },
        |seen| {
            store(&|m| m.retain(|k, _| seen.contains(k)));
            synced.pdbs.store(true, Ordering::Release);
        },
    )
    .await;
}

/// Namespace labels, for pod affinity `namespaceSelector`s; only the labels are kept.
pub async fn namespaces(client: Client, sched: Arc<Scheduler>, synced: Arc<Synced>) {
    let api: Api<Namespace> = Api::all(client);
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    drive(
        stream,
        "namespaces",
        |ns| {
            let name = ns.metadata.name.unwrap_or_default();
            sched
                .cache()
                .set_namespace(&name, ns.metadata.labels.unwrap_or_default());
        },
        |ns| {
            sched
                .cache()
                .remove_namespace(ns.metadata.name.as_deref().unwrap_or(""));
        },
        |seen| {
            sched.cache().retain_namespaces(|n| seen.contains(n));
            synced.namespaces.store(true, Ordering::Release);
        },
    )
    .await;
}

/// The `Synced::workloads` bits of the four kinds `workloads` watches.
const ALL_WORKLOADS: u8 = 0b1111;

/// Watches one workload kind, keeping only its selector.
async fn workload<K>(
    client: Client,
    sched: Arc<Scheduler>,
    synced: Arc<Synced>,
    kind: Kind,
    selector: fn(&K) -> Option<Selector>,
) where
    K: Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
    K::DynamicType: Default,
{
    let store = sched.cache().workloads();
    let set = |obj: &K, sel: Option<Selector>| {
        let meta = obj.meta();
        if let Ok(mut w) = store.write() {
            w.set(
                kind,
                meta.namespace.as_deref().unwrap_or(""),
                meta.name.as_deref().unwrap_or(""),
                sel,
            );
        }
    };
    let api: Api<K> = Api::all(client);
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    drive(
        stream,
        "workloads",
        |obj| set(&obj, selector(&obj)),
        |obj| set(&obj, None),
        |seen| {
            if let Ok(mut w) = store.write() {
                for key in w.keys(kind) {
                    if !seen.contains(&key) {
                        let (ns, name) = key.split_once('/').unwrap_or(("", &key));
                        w.set(kind, ns, name, None);
                    }
                }
            }
            synced.workloads.fetch_or(1 << kind as u8, Ordering::AcqRel);
        },
    )
    .await;
}

/// Services, ReplicationControllers, ReplicaSets and StatefulSets, for the selectors default
/// topology spread constraints use.
pub async fn workloads(client: Client, sched: Arc<Scheduler>, synced: Arc<Synced>) {
    tokio::join!(
        workload::<Service>(
            client.clone(),
            sched.clone(),
            synced.clone(),
            Kind::Service,
            |s| s.spec.as_ref()?.selector.clone().map(Selector::Set),
        ),
        workload::<ReplicationController>(
            client.clone(),
            sched.clone(),
            synced.clone(),
            Kind::ReplicationController,
            |rc| rc.spec.as_ref()?.selector.clone().map(Selector::Set),
        ),
        workload::<ReplicaSet>(
            client.clone(),
            sched.clone(),
            synced.clone(),
            Kind::ReplicaSet,
            |rs| Some(Selector::LabelSelector(rs.spec.as_ref()?.selector.clone())),
        ),
        workload::<StatefulSet>(client, sched, synced, Kind::StatefulSet, |ss| Some(
            Selector::LabelSelector(ss.spec.as_ref()?.selector.clone())
        ),),
    );
}
