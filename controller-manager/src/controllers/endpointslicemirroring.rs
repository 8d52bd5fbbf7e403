//! EndpointSlice mirroring: a Service without a selector has its Endpoints written by hand;
//! this controller mirrors those Endpoints into EndpointSlices (one per subset and address
//! family), so that slice consumers such as kube-proxy see them too. Like the EndpointSlice
//! controller it waits for its own writes to reach its cache (`slice_tracker`), so a stale
//! cache never duplicates a slice.

use std::{collections::BTreeMap, sync::Arc};

use component_base::{
    informer::{key, split_key, Informer},
    workqueue::WorkQueue,
};
use k8s_openapi::api::{
    core::v1::{EndpointAddress, Endpoints, Service},
    discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice},
};
use kube::{
    api::{Api, DeleteParams, ObjectMeta, PostParams},
    ResourceExt,
};

use super::{
    endpointslice::{enqueue_services_of_slices, MANAGED_BY_LABEL, SERVICE_NAME_LABEL},
    enqueue_changes,
    slice_tracker::{SliceTracker, STALE_RETRY},
    Context, ControllerError, Running,
};
use crate::pods;

const MANAGED_BY: &str = "endpointslicemirroring-controller.k8s.io";
const SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
/// Endpoints the Endpoints controller manages are already sliced by the EndpointSlice controller.
const ENDPOINTS_MANAGED_BY: &str = "endpoints.kubernetes.io/managed-by";
/// Most addresses mirrored per subset (upstream's --mirroring-max-endpoints-per-subset).
const MAX_PER_SUBSET: usize = 1000;

struct Controller {
    ctx: Arc<Context>,
    services: Arc<Informer<Service>>,
    endpoints: Arc<Informer<Endpoints>>,
    slices: Arc<Informer<EndpointSlice>>,
    queue: WorkQueue<String>,
    /// Slices written that the informer may not show yet: a sync waits for them.
    tracker: SliceTracker,
}

pub fn init(ctx: &Arc<Context>) -> Result<Running, ControllerError> {
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        services: ctx.informers.informer::<Service>(),
        endpoints: ctx.informers.informer::<Endpoints>(),
        slices: ctx.informers.informer::<EndpointSlice>(),
        queue: ctx.queue("endpoint_slice_mirroring"),
        tracker: SliceTracker::default(),
    });
    enqueue_changes(&c.services, &c.queue);
    enqueue_changes(&c.endpoints, &c.queue);
    enqueue_services_of_slices(&c.slices, &c.queue, MANAGED_BY);
    Ok(Box::pin(async move {
        c.services.wait_synced().await;
        c.endpoints.wait_synced().await;
        c.slices.wait_synced().await;
        let queue = c.queue.clone();
        queue
            .run_workers(5, move |k: String| {
                let c = c.clone();
                async move { c.sync(&k).await.map(|()| None) }
            })
            .await;
    }))
}

fn to_endpoint(a: &EndpointAddress, ready: bool) -> Endpoint {
    Endpoint {
        addresses: vec![a.ip.clone()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(ready),
            terminating: Some(false),
        }),
        hostname: a.hostname.clone(),
        node_name: a.node_name.clone(),
        target_ref: a.target_ref.clone(),
        ..Default::default()
    }
}

/// The slices a set of Endpoints calls for, keyed by address family and ports.
fn desired(ep: &Endpoints) -> BTreeMap<String, (String, Vec<EndpointPort>, Vec<Endpoint>)> {
    let mut out: BTreeMap<String, (String, Vec<EndpointPort>, Vec<Endpoint>)> = BTreeMap::new();
    for subset in ep.subsets.iter().flatten() {
        let ports: Vec<EndpointPort> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| EndpointPort {
                name: p.name.clone(),
                port: Some(p.port),
                protocol: p.protocol.clone().or_else(|| Some("TCP".into())),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let addresses = subset
            .addresses
            .iter()
            .flatten()
            .map(|a| (a, true))
            .chain(
                subset
                    .not_ready_addresses
                    .iter()
                    .flatten()
                    .map(|a| (a, false)),
            )
            .take(MAX_PER_SUBSET);
        for (a, ready) in addresses {
            let family = if a.ip.contains(':') { "IPv6" } else { "IPv4" };
            let group = format!(
                "{family}/{}",
                serde_json::to_string(&ports).unwrap_or_default()
            );
            out.entry(group)
                .or_insert_with(|| (family.to_string(), ports.clone(), Vec::new()))
                .2
                .push(to_endpoint(a, ready));
        }
    }
    out
}

impl Controller {
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
        let mut existing: Vec<Arc<EndpointSlice>> = self
            .slices
            .list_in(ns)
            .into_iter()
            .filter(|s| {
                let l = s.labels();
                l.get(SERVICE_NAME_LABEL).map(String::as_str) == Some(name)
                    && l.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
            })
            .collect();
        let selectorless = self.services.get(k).is_some_and(|s| {
            s.spec
                .as_ref()
                .and_then(|sp| sp.selector.as_ref())
                .is_none_or(|m| m.is_empty())
        });
        let ep = self.endpoints.get(k).filter(|e| {
            let l = e.labels();
            selectorless
                && l.get(SKIP_MIRROR).map(String::as_str) != Some("true")
                && !l.contains_key(ENDPOINTS_MANAGED_BY)
        });
        let wanted = ep.as_ref().map(|e| desired(e)).unwrap_or_default();
        for (_, (family, ports, endpoints)) in wanted {
            // Reuse a slice of the same shape, else create one.
            let reuse = existing.iter().position(|s| {
                s.address_type == family
                    && s.ports.as_deref().unwrap_or_default() == ports.as_slice()
            });
            match reuse.map(|i| existing.remove(i)) {
                Some(slice) if slice.endpoints == endpoints => {}
                Some(slice) => {
                    let mut updated = (*slice).clone();
                    updated.endpoints = endpoints;
                    let written = api
                        .replace(&slice.name_any(), &PostParams::default(), &updated)
                        .await?;
                    self.tracker.written(k, &written);
                }
                None => {
                    let Some(ep) = ep.as_ref() else { continue };
                    let mut labels = ep.labels().clone();
                    labels.insert(SERVICE_NAME_LABEL.into(), name.to_string());
                    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
                    let slice = EndpointSlice {
                        metadata: ObjectMeta {
                            generate_name: Some(format!("{name}-")),
                            namespace: Some(ns.to_string()),
                            labels: Some(labels),
                            owner_references: Some(vec![pods::controller_ref(ep.as_ref())]),
                            ..Default::default()
                        },
                        address_type: family,
                        endpoints,
                        ports: Some(ports),
                    };
                    let created = api.create(&PostParams::default(), &slice).await?;
                    self.tracker.written(k, &created);
                }
            }
        }
        for stale in existing {
            match api
                .delete(&stale.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => self.tracker.deleted(k, &stale.name_any()),
                Err(e) if pods::is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
