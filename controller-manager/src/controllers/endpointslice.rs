//! EndpointSlice controller: for every Service with a selector, EndpointSlices of at most
//! `--max-endpoints-per-slice` endpoints (one set per port mapping and address family) with
//! ready/serving/terminating conditions, node, zone and pod reference. Existing slices are
//! updated in place and only rewritten when their content changes, to keep churn low.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use component_base::{
    informer::{key, split_key, Informer},
    workqueue::WorkQueue,
};
use k8s_openapi::api::{
    core::v1::{Node, ObjectReference, Pod, Service},
    discovery::v1::{Endpoint as SliceEndpoint, EndpointConditions, EndpointPort, EndpointSlice},
};
use kube::{
    api::{Api, DeleteParams, ObjectMeta, PostParams},
    ResourceExt,
};

use super::{
    changed, enqueue_changes,
    service_pods::{self, ResolvedPort},
    slice_tracker::{SliceTracker, STALE_RETRY},
    Context, ControllerError, Running,
};
use crate::pods;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

struct Controller {
    ctx: Arc<Context>,
    services: Arc<Informer<Service>>,
    pods: Arc<Informer<Pod>>,
    slices: Arc<Informer<EndpointSlice>>,
    nodes: Arc<Informer<Node>>,
    queue: WorkQueue<String>,
    /// Slices written that the informer may not show yet: a sync waits for them.
    tracker: SliceTracker,
}

pub fn init(ctx: &Arc<Context>) -> Result<Running, ControllerError> {
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        services: ctx.informers.informer::<Service>(),
        pods: ctx.informers.informer::<Pod>(),
        slices: ctx.informers.informer::<EndpointSlice>(),
        nodes: ctx.informers.informer::<Node>(),
        queue: ctx.queue("endpoint_slice"),
        tracker: SliceTracker::default(),
    });
    enqueue_changes(&c.services, &c.queue);
    let weak = Arc::downgrade(&c);
    c.pods.add_handler(move |change| {
        if let Some(c) = weak.upgrade() {
            service_pods::enqueue_services_for_pod(change, &c.services, &c.queue);
        }
    });
    enqueue_services_of_slices(&c.slices, &c.queue, MANAGED_BY);
    Ok(Box::pin(async move {
        c.services.wait_synced().await;
        c.pods.wait_synced().await;
        c.slices.wait_synced().await;
        c.nodes.wait_synced().await;
        let workers = c.ctx.options.concurrent_service_endpoint_syncs;
        let queue = c.queue.clone();
        queue
            .run_workers(workers, move |k: String| {
                let c = c.clone();
                async move { c.sync(&k).await.map(|()| None) }
            })
            .await;
    }))
}

/// Enqueues the Service of every slice `managed_by` (the label's value) manages.
pub(super) fn enqueue_services_of_slices(
    slices: &Informer<EndpointSlice>,
    queue: &WorkQueue<String>,
    managed_by: &'static str,
) {
    let q = queue.clone();
    slices.add_handler(move |change| {
        let s = changed(change);
        let labels = s.labels();
        if labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(managed_by) {
            if let Some(svc) = labels.get(SERVICE_NAME_LABEL) {
                q.add(key(s.namespace().as_deref(), svc));
            }
        }
    });
}

/// Endpoints sharing a port mapping and address family go into the same slices.
type GroupKey = (String, Vec<ResolvedPort>);

fn address_type(ip: &str) -> &'static str {
    if ip.contains(':') {
        "IPv6"
    } else {
        "IPv4"
    }
}

fn slice_ports(ports: &[ResolvedPort]) -> Vec<EndpointPort> {
    ports
        .iter()
        .map(|p| EndpointPort {
            // Unnamed ports are written as "", which is what the apiserver's defaulting stores.
            name: Some(p.name.clone().unwrap_or_default()),
            port: Some(p.port),
            protocol: Some(p.protocol.clone()),
            app_protocol: p.app_protocol.clone(),
        })
        .collect()
}

fn group_of(slice: &EndpointSlice) -> GroupKey {
    let mut ports: Vec<ResolvedPort> = slice
        .ports
        .iter()
        .flatten()
        .map(|p| ResolvedPort {
            name: p.name.clone().filter(|n| !n.is_empty()),
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            port: p.port.unwrap_or(0),
            app_protocol: p.app_protocol.clone(),
        })
        .collect();
    ports.sort();
    (slice.address_type.clone(), ports)
}

/// Identifies an endpoint across syncs: the pod it stands for.
fn endpoint_id(e: &SliceEndpoint) -> String {
    e.target_ref
        .as_ref()
        .and_then(|r| r.uid.clone())
        .unwrap_or_else(|| e.addresses.join(","))
}

impl Controller {
    fn to_slice_endpoint(&self, e: &service_pods::Endpoint) -> SliceEndpoint {
        let node = e.pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let zone = node
            .as_ref()
            .and_then(|n| self.nodes.get(n))
            .and_then(|n| n.labels().get(ZONE_LABEL).cloned());
        SliceEndpoint {
            addresses: vec![e.ip.clone()],
            conditions: Some(EndpointConditions {
                ready: Some(e.ready),
                serving: Some(e.serving),
                terminating: Some(e.terminating),
            }),
            node_name: node,
            zone,
            hostname: e.hostname.clone(),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: e.pod.namespace(),
                name: Some(e.pod.name_any()),
                uid: e.pod.metadata.uid.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[tracing::instrument(skip(self), fields(service = %k))]
    async fn sync(&self, k: &str) -> Result<(), ControllerError> {
        let (ns, name) = split_key(k);
        if self
            .tracker
            .cache_is_stale(k, |slice| self.slices.get(&key(Some(ns), slice)))
        {
            self.queue.add_after(k.to_string(), STALE_RETRY);
            return Ok(());
        }
        let api: Api<EndpointSlice> = Api::namespaced(self.ctx.client.clone(), ns);
        let existing: Vec<Arc<EndpointSlice>> = self
            .slices
            .list_in(ns)
            .into_iter()
            .filter(|s| {
                let l = s.labels();
                l.get(SERVICE_NAME_LABEL).map(String::as_str) == Some(name)
                    && l.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
            })
            .collect();
        let svc = self.services.get(k);
        let wants_slices = svc.as_ref().is_some_and(|s| {
            s.spec.as_ref().is_some_and(|sp| {
                sp.selector.as_ref().is_some_and(|m| !m.is_empty())
                    && sp.type_.as_deref() != Some("ExternalName")
            })
        });
        let Some(svc) = svc.filter(|_| wants_slices) else {
            for s in existing {
                delete(&api, &s).await?;
                self.tracker.deleted(k, &s.name_any());
            }
            return Ok(());
        };
        if svc.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }

        // Desired endpoints per (address family, ports).
        let mut desired: BTreeMap<GroupKey, Vec<SliceEndpoint>> = BTreeMap::new();
        for e in service_pods::endpoints_for(&svc, &self.pods) {
            // An unnamed port is `None` here and "" once stored: compare them as one.
            let mut ports: Vec<ResolvedPort> = e
                .ports
                .iter()
                .cloned()
                .map(|mut p| {
                    p.name = p.name.filter(|n| !n.is_empty());
                    p
                })
                .collect();
            ports.sort();
            desired
                .entry((address_type(&e.ip).to_string(), ports))
                .or_default()
                .push(self.to_slice_endpoint(&e));
        }
        let max = self.ctx.options.max_endpoints_per_slice.max(1);
        let mut by_group: HashMap<GroupKey, Vec<Arc<EndpointSlice>>> = HashMap::new();
        for s in existing {
            by_group.entry(group_of(&s)).or_default().push(s);
        }
        for (group, wanted) in &desired {
            let slices = by_group.remove(group).unwrap_or_default();
            self.reconcile_group(&api, k, &svc, group, wanted, slices, max)
                .await?;
        }
        // Groups nobody wants any more.
        for slices in by_group.into_values() {
            for s in slices {
                delete(&api, &s).await?;
                self.tracker.deleted(k, &s.name_any());
            }
        }
        Ok(())
    }

    /// Keeps endpoints in the slice that already holds them, fills free room before creating
    /// new slices, and writes only slices whose content changed.
    #[allow(clippy::too_many_arguments)]
    async fn reconcile_group(
        &self,
        api: &Api<EndpointSlice>,
        k: &str,
        svc: &Service,
        group: &GroupKey,
        wanted: &[SliceEndpoint],
        slices: Vec<Arc<EndpointSlice>>,
        max: usize,
    ) -> Result<(), ControllerError> {
        let mut pending: BTreeMap<String, SliceEndpoint> =
            wanted.iter().map(|e| (endpoint_id(e), e.clone())).collect();
        let mut plans: Vec<(Arc<EndpointSlice>, Vec<SliceEndpoint>)> = Vec::new();
        for s in slices {
            let kept: Vec<SliceEndpoint> = s
                .endpoints
                .iter()
                .filter_map(|e| pending.remove(&endpoint_id(e)))
                .collect();
            plans.push((s, kept));
        }
        let mut rest: Vec<SliceEndpoint> = pending.into_values().collect();
        for (_, eps) in plans.iter_mut() {
            while eps.len() < max {
                let Some(e) = rest.pop() else { break };
                eps.push(e);
            }
        }
        for (slice, eps) in plans {
            if eps.is_empty() {
                delete(api, &slice).await?;
                self.tracker.deleted(k, &slice.name_any());
                continue;
            }
            let ports = slice_ports(&group.1);
            if slice.endpoints == eps && group_of(&slice).1 == group.1 {
                continue;
            }
            let mut updated = (*slice).clone();
            updated.endpoints = eps;
            updated.ports = Some(ports);
            match api
                .replace(&slice.name_any(), &PostParams::default(), &updated)
                .await
            {
                Ok(written) => self.tracker.written(k, &written),
                Err(e) if pods::is_conflict(&e) || pods::is_not_found(&e) => {
                    return Err(ControllerError::Invalid(format!(
                        "endpoint slice {} changed underneath; retrying",
                        slice.name_any()
                    )))
                }
                Err(e) => return Err(e.into()),
            }
        }
        for chunk in rest.chunks(max) {
            let mut labels = svc.labels().clone();
            labels.insert(SERVICE_NAME_LABEL.into(), svc.name_any());
            labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
            let slice = EndpointSlice {
                metadata: ObjectMeta {
                    generate_name: Some(format!("{}-", svc.name_any())),
                    namespace: svc.namespace(),
                    labels: Some(labels),
                    owner_references: Some(vec![pods::controller_ref(svc)]),
                    ..Default::default()
                },
                address_type: group.0.clone(),
                endpoints: chunk.to_vec(),
                ports: Some(slice_ports(&group.1)),
            };
            let created = api.create(&PostParams::default(), &slice).await?;
            self.tracker.written(k, &created);
        }
        Ok(())
    }
}

async fn delete(api: &Api<EndpointSlice>, slice: &EndpointSlice) -> Result<(), ControllerError> {
    match api
        .delete(&slice.name_any(), &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if pods::is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
