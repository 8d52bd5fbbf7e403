//! Garbage collector: a graph of ownerReferences across every resource the apiserver serves,
//! built from metadata watches (sharing the process's informers). Dependents whose owners are
//! all gone are deleted (background propagation); owners deleted in the foreground keep their
//! `foregroundDeletion` finalizer until every dependent that blocks owner deletion is gone;
//! owners deleted with orphan propagation have their dependents' references removed first.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use component_base::{informer::MetaChange, workqueue::WorkQueue};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{
    api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy},
    discovery::{verbs, Discovery, Scope},
    ResourceExt,
};
use serde_json::json;

use super::{Context, ControllerError, Running};
use crate::pods;

const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";
/// Resources the collector never tracks (upstream ignores events the same way).
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];

#[derive(Clone)]
struct Resource {
    ar: ApiResource,
    namespaced: bool,
}

/// One object in the graph.
#[derive(Clone)]
struct Node {
    resource: Arc<Resource>,
    namespace: Option<String>,
    name: String,
    owners: Vec<OwnerReference>,
    finalizers: Vec<String>,
    deleting: bool,
}

impl Node {
    fn deleting_with(&self, finalizer: &str) -> bool {
        self.deleting && self.finalizers.iter().any(|f| f == finalizer)
    }
}

#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
    /// Owner UID to the UIDs of objects that reference it (whether or not the owner is known).
    dependents: HashMap<String, HashSet<String>>,
}

struct Collector {
    ctx: Arc<Context>,
    graph: Mutex<Graph>,
    /// (group, kind) to resource, for resolving owner references.
    kinds: HashMap<(String, String), Arc<Resource>>,
    queue: WorkQueue<String>,
}

pub fn init(ctx: &Arc<Context>) -> Result<Running, ControllerError> {
    let ctx = ctx.clone();
    Ok(Box::pin(async move {
        // Discovery needs the apiserver; keep trying until it answers.
        let resources = loop {
            match discover(&ctx).await {
                Ok(r) => break r,
                Err(err) => {
                    tracing::warn!(%err, "garbage collector discovery failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
            }
        };
        let kinds = resources
            .iter()
            .map(|r| ((r.ar.group.clone(), r.ar.kind.clone()), r.clone()))
            .collect();
        let gc = Arc::new(Collector {
            ctx: ctx.clone(),
            graph: Mutex::default(),
            kinds,
            queue: ctx.queue("garbage_collector_attempt_to_delete"),
        });
        let mut informers = Vec::new();
        for resource in resources {
            let informer = ctx.informers.metadata(&resource.ar);
            let weak = Arc::downgrade(&gc);
            informer.add_meta_handler(Box::new(move |change| {
                if let Some(gc) = weak.upgrade() {
                    gc.observe(&resource, change);
                }
            }));
            informers.push(informer);
        }
        ctx.informers.start();
        while !informers.iter().all(|i| i.synced()) {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        tracing::info!("garbage collector graph synced");
        let workers = ctx.options.concurrent_gc_syncs;
        let queue = gc.queue.clone();
        queue
            .run_workers(workers, move |item: String| {
                let gc = gc.clone();
                async move { gc.process(&item).await.map(|()| None) }
            })
            .await;
    }))
}

/// Every resource that can be listed, watched and deleted.
async fn discover(ctx: &Context) -> Result<Vec<Arc<Resource>>, ControllerError> {
    let discovery = Discovery::new(ctx.client.clone()).run().await?;
    let mut out = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            let wanted = [verbs::LIST, verbs::WATCH, verbs::DELETE, verbs::GET]
                .iter()
                .all(|v| caps.supports_operation(v));
            if !wanted || IGNORED.contains(&(ar.group.as_str(), ar.plural.as_str())) {
                continue;
            }
            out.push(Arc::new(Resource {
                namespaced: caps.scope == Scope::Namespaced,
                ar,
            }));
        }
    }
    Ok(out)
}

fn delete_item(uid: &str) -> String {
    format!("delete/{uid}")
}

fn orphan_item(uid: &str) -> String {
    format!("orphan/{uid}")
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

impl Collector {
    /// Updates the graph from one change and queues whatever it may have made collectable.
    fn observe(&self, resource: &Arc<Resource>, change: MetaChange) {
        let mut work = Vec::new();
        {
            let mut graph = self.graph.lock().unwrap_or_else(|e| e.into_inner());
            match change {
                MetaChange::Upserted(meta) => Self::upsert(&mut graph, resource, meta, &mut work),
                MetaChange::Deleted(meta) => Self::remove(&mut graph, &meta, &mut work),
            }
        }
        for item in work {
            self.queue.add(item);
        }
    }

    fn upsert(
        graph: &mut Graph,
        resource: &Arc<Resource>,
        meta: ObjectMeta,
        work: &mut Vec<String>,
    ) {
        let Some(uid) = meta.uid.clone() else { return };
        let node = Node {
            resource: resource.clone(),
            namespace: meta.namespace.clone(),
            name: meta.name.clone().unwrap_or_default(),
            owners: meta.owner_references.clone().unwrap_or_default(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
        };
        let old_owners: Vec<String> = graph
            .nodes
            .get(&uid)
            .map(|n| n.owners.iter().map(|o| o.uid.clone()).collect())
            .unwrap_or_default();
        let new_owners: Vec<String> = node.owners.iter().map(|o| o.uid.clone()).collect();
        for gone in old_owners.iter().filter(|o| !new_owners.contains(o)) {
            if let Some(set) = graph.dependents.get_mut(gone) {
                set.remove(&uid);
            }
            // An owner waiting for its dependents may be done now.
            if graph
                .nodes
                .get(gone)
                .is_some_and(|o| o.deleting_with(FOREGROUND))
            {
                work.push(delete_item(gone));
            }
        }
        for owner in &new_owners {
            graph
                .dependents
                .entry(owner.clone())
                .or_default()
                .insert(uid.clone());
            match graph.nodes.get(owner) {
                None => work.push(delete_item(&uid)),
                Some(o) if o.deleting_with(FOREGROUND) => work.push(delete_item(&uid)),
                Some(_) => {}
            }
        }
        if node.deleting_with(FOREGROUND) {
            work.push(delete_item(&uid));
            for dep in graph.dependents.get(&uid).into_iter().flatten() {
                work.push(delete_item(dep));
            }
        }
        if node.deleting_with(ORPHAN) {
            work.push(orphan_item(&uid));
        }
        graph.nodes.insert(uid, node);
    }

    fn remove(graph: &mut Graph, meta: &ObjectMeta, work: &mut Vec<String>) {
        let Some(uid) = meta.uid.clone() else { return };
        let Some(node) = graph.nodes.remove(&uid) else {
            return;
        };
        for owner in &node.owners {
            if let Some(set) = graph.dependents.get_mut(&owner.uid) {
                set.remove(&uid);
                if set.is_empty() {
                    graph.dependents.remove(&owner.uid);
                }
            }
            if graph
                .nodes
                .get(&owner.uid)
                .is_some_and(|o| o.deleting_with(FOREGROUND))
            {
                work.push(delete_item(&owner.uid));
            }
        }
        for dep in graph.dependents.get(&uid).into_iter().flatten() {
            work.push(delete_item(dep));
        }
    }

    fn node(&self, uid: &str) -> Option<Node> {
        self.graph
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .nodes
            .get(uid)
            .cloned()
    }

    fn dependents(&self, uid: &str) -> Vec<(String, Node)> {
        let graph = self.graph.lock().unwrap_or_else(|e| e.into_inner());
        graph
            .dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| graph.nodes.get(d).map(|n| (d.clone(), n.clone())))
            .collect()
    }

    fn api(&self, resource: &Resource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace.filter(|_| resource.namespaced) {
            Some(ns) => Api::namespaced_with(self.ctx.client.clone(), ns, &resource.ar),
            None => Api::all_with(self.ctx.client.clone(), &resource.ar),
        }
    }

    /// The live object behind a graph node, if it still exists with that UID.
    async fn live(&self, node: &Node, uid: &str) -> Result<Option<DynamicObject>, ControllerError> {
        let obj = self
            .api(&node.resource, node.namespace.as_deref())
            .get_opt(&node.name)
            .await?;
        Ok(obj.filter(|o| o.metadata.uid.as_deref() == Some(uid)))
    }

    async fn process(&self, item: &str) -> Result<(), ControllerError> {
        match item.split_once('/') {
            Some(("delete", uid)) => self.attempt_to_delete(uid).await,
            Some(("orphan", uid)) => self.attempt_to_orphan(uid).await,
            _ => Ok(()),
        }
    }

    /// Whether the graph alone shows every owner alive and not deleting in the foreground, so
    /// that no request is needed.
    fn owners_known_alive(&self, node: &Node) -> bool {
        let graph = self.graph.lock().unwrap_or_else(|e| e.into_inner());
        node.owners.iter().all(|o| {
            graph
                .nodes
                .get(&o.uid)
                .is_some_and(|n| !n.deleting_with(FOREGROUND))
        })
    }

    #[tracing::instrument(skip(self))]
    async fn attempt_to_delete(&self, uid: &str) -> Result<(), ControllerError> {
        let Some(node) = self.node(uid) else {
            return Ok(());
        };
        if !node.deleting && self.owners_known_alive(&node) {
            return Ok(());
        }
        let Some(obj) = self.live(&node, uid).await? else {
            return Ok(());
        };
        let finalizers = obj.finalizers().to_vec();
        if obj.metadata.deletion_timestamp.is_some() {
            if finalizers.iter().any(|f| f == FOREGROUND) {
                return self.finish_foreground(&node, &obj, uid).await;
            }
            return Ok(());
        }
        let owners = obj.owner_references().to_vec();
        if owners.is_empty() {
            return Ok(());
        }
        let (mut solid, mut dangling, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
        for owner in &owners {
            match self.owner_state(&node, owner).await? {
                OwnerState::Solid => solid.push(owner.clone()),
                OwnerState::Dangling => dangling.push(owner.clone()),
                OwnerState::WaitingForDependents => waiting.push(owner.clone()),
            }
        }
        let api = self.api(&node.resource, node.namespace.as_deref());
        if !solid.is_empty() {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(());
            }
            // Other owners still need it: only drop the references to the ones going away.
            let patch = json!({ "metadata": { "ownerReferences": solid, "uid": uid, "resourceVersion": obj.metadata.resource_version } });
            api.patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            return Ok(());
        }
        let policy = if !waiting.is_empty() || finalizers.iter().any(|f| f == FOREGROUND) {
            PropagationPolicy::Foreground
        } else if finalizers.iter().any(|f| f == ORPHAN) {
            PropagationPolicy::Orphan
        } else {
            PropagationPolicy::Background
        };
        tracing::info!(object = %node.name, resource = %node.resource.ar.plural, ?policy, "deleting object whose owners are gone");
        let params = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(kube::api::Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&node.name, &params).await {
            Ok(_) => Ok(()),
            Err(e) if pods::is_not_found(&e) || pods::is_conflict(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A foreground-deleted owner keeps its finalizer while dependents that block owner
    /// deletion remain; those are deleted (in the foreground too) first.
    async fn finish_foreground(
        &self,
        node: &Node,
        obj: &DynamicObject,
        uid: &str,
    ) -> Result<(), ControllerError> {
        let blocking: Vec<(String, Node)> = self
            .dependents(uid)
            .into_iter()
            .filter(|(_, d)| {
                d.owners
                    .iter()
                    .any(|o| o.uid == uid && o.block_owner_deletion == Some(true))
            })
            .collect();
        if blocking.is_empty() {
            return self.remove_finalizer(node, obj, FOREGROUND).await;
        }
        for (dep_uid, dep) in blocking {
            if !dep.deleting {
                self.queue.add(delete_item(&dep_uid));
            }
        }
        Ok(())
    }

    async fn owner_state(
        &self,
        dependent: &Node,
        owner: &OwnerReference,
    ) -> Result<OwnerState, ControllerError> {
        if let Some(known) = self.node(&owner.uid) {
            return Ok(if known.deleting_with(FOREGROUND) {
                OwnerState::WaitingForDependents
            } else {
                OwnerState::Solid
            });
        }
        // Not (yet) in the graph: ask the apiserver.
        let Some(resource) = self
            .kinds
            .get(&(group_of(&owner.api_version).to_string(), owner.kind.clone()))
        else {
            return Err(ControllerError::Invalid(format!(
                "unknown owner kind {} {}",
                owner.api_version, owner.kind
            )));
        };
        let probe = Node {
            resource: resource.clone(),
            namespace: dependent.namespace.clone(),
            name: owner.name.clone(),
            owners: Vec::new(),
            finalizers: Vec::new(),
            deleting: false,
        };
        Ok(match self.live(&probe, &owner.uid).await? {
            None => OwnerState::Dangling,
            Some(o)
                if o.metadata.deletion_timestamp.is_some()
                    && o.finalizers().iter().any(|f| f == FOREGROUND) =>
            {
                OwnerState::WaitingForDependents
            }
            Some(_) => OwnerState::Solid,
        })
    }

    async fn remove_finalizer(
        &self,
        node: &Node,
        obj: &DynamicObject,
        finalizer: &str,
    ) -> Result<(), ControllerError> {
        let rest: Vec<&String> = obj
            .finalizers()
            .iter()
            .filter(|f| *f != finalizer)
            .collect();
        let patch = json!({ "metadata": {
            "finalizers": if rest.is_empty() { serde_json::Value::Null } else { json!(rest) },
            "resourceVersion": obj.metadata.resource_version,
        }});
        let api = self.api(&node.resource, node.namespace.as_deref());
        match api
            .patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if pods::is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Orphan propagation: drop the owner's reference from every dependent, then release the
    /// owner by removing its `orphan` finalizer.
    #[tracing::instrument(skip(self))]
    async fn attempt_to_orphan(&self, uid: &str) -> Result<(), ControllerError> {
        let Some(node) = self.node(uid) else {
            return Ok(());
        };
        let Some(obj) = self.live(&node, uid).await? else {
            return Ok(());
        };
        if obj.metadata.deletion_timestamp.is_none()
            || !obj.finalizers().iter().any(|f| f == ORPHAN)
        {
            return Ok(());
        }
        for (dep_uid, dep) in self.dependents(uid) {
            let Some(live) = self.live(&dep, &dep_uid).await? else {
                continue;
            };
            let refs: Vec<&OwnerReference> = live
                .owner_references()
                .iter()
                .filter(|o| o.uid != uid)
                .collect();
            let patch = json!({ "metadata": {
                "ownerReferences": if refs.is_empty() { serde_json::Value::Null } else { json!(refs) },
                "resourceVersion": live.metadata.resource_version,
            }});
            let api = self.api(&dep.resource, dep.namespace.as_deref());
            match api
                .patch(&dep.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(e) if pods::is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.remove_finalizer(&node, &obj, ORPHAN).await
    }
}

enum OwnerState {
    Solid,
    Dangling,
    WaitingForDependents,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource() -> Arc<Resource> {
        Arc::new(Resource {
            ar: ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
            namespaced: true,
        })
    }

    fn meta(uid: &str, owners: &[&str], finalizers: &[&str], deleting: bool) -> ObjectMeta {
        ObjectMeta {
            uid: Some(uid.into()),
            name: Some(uid.into()),
            namespace: Some("ns".into()),
            owner_references: Some(
                owners
                    .iter()
                    .map(|o| OwnerReference {
                        uid: o.to_string(),
                        block_owner_deletion: Some(true),
                        ..Default::default()
                    })
                    .collect(),
            ),
            finalizers: Some(finalizers.iter().map(|f| f.to_string()).collect()),
            deletion_timestamp: deleting.then(|| {
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now())
            }),
            ..Default::default()
        }
    }

    #[test]
    fn graph_queues_dependents_of_deleted_and_foreground_owners() {
        let mut g = Graph::default();
        let r = resource();
        let mut work = Vec::new();
        Collector::upsert(&mut g, &r, meta("owner", &[], &[], false), &mut work);
        Collector::upsert(&mut g, &r, meta("dep", &["owner"], &[], false), &mut work);
        assert!(work.is_empty(), "owner is known and alive: {work:?}");
        Collector::upsert(
            &mut g,
            &r,
            meta("owner", &[], &[FOREGROUND], true),
            &mut work,
        );
        assert!(work.contains(&delete_item("owner")) && work.contains(&delete_item("dep")));
        work.clear();
        Collector::remove(&mut g, &meta("dep", &["owner"], &[], false), &mut work);
        assert_eq!(work, vec![delete_item("owner")]);
        work.clear();
        Collector::upsert(
            &mut g,
            &r,
            meta("orphan-of-unknown", &["ghost"], &[], false),
            &mut work,
        );
        assert_eq!(work, vec![delete_item("orphan-of-unknown")]);
    }
}
