//! Endpoints controller (the legacy API): for every Service with a selector, one Endpoints
//! object of the same name listing ready and not-ready pod addresses, grouped by port set.

use std::{collections::BTreeMap, sync::Arc};

use component_base::{
    informer::{key_of, split_key, Change, Informer},
    workqueue::WorkQueue,
};
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use kube::{
    api::{Api, DeleteParams, ObjectMeta, PostParams},
    ResourceExt,
};

use super::{
    enqueue_changes,
    service_pods::{self, ResolvedPort},
    Context, ControllerError, Running,
};
use crate::pods;

/// Most addresses one Endpoints object holds; beyond that it is truncated and annotated.
const MAX_ADDRESSES: usize = 1000;
const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";

struct Controller {
    ctx: Arc<Context>,
    services: Arc<Informer<Service>>,
    pods: Arc<Informer<Pod>>,
    endpoints: Arc<Informer<Endpoints>>,
    queue: WorkQueue<String>,
}

pub fn init(ctx: &Arc<Context>) -> Result<Running, ControllerError> {
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        services: ctx.informers.informer::<Service>(),
        pods: ctx.informers.informer::<Pod>(),
        endpoints: ctx.informers.informer::<Endpoints>(),
        queue: ctx.queue("endpoint"),
    });
    enqueue_changes(&c.services, &c.queue);
    let weak = Arc::downgrade(&c);
    c.pods.add_handler(move |change| {
        if let Some(c) = weak.upgrade() {
            service_pods::enqueue_services_for_pod(change, &c.services, &c.queue);
        }
    });
    let q = c.queue.clone();
    c.endpoints.add_handler(move |change| {
        if let Change::Deleted(e) = change {
            q.add(key_of(e.as_ref()));
        }
    });
    Ok(Box::pin(async move {
        c.services.wait_synced().await;
        c.pods.wait_synced().await;
        c.endpoints.wait_synced().await;
        let workers = c.ctx.options.concurrent_endpoint_syncs;
        let queue = c.queue.clone();
        queue
            .run_workers(workers, move |k: String| {
                let c = c.clone();
                async move { c.sync(&k).await.map(|()| None) }
            })
            .await;
    }))
}

fn address(e: &service_pods::Endpoint) -> EndpointAddress {
    EndpointAddress {
        ip: e.ip.clone(),
        node_name: e.pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        hostname: e.hostname.clone(),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: e.pod.namespace(),
            name: Some(e.pod.name_any()),
            uid: e.pod.metadata.uid.clone(),
            ..Default::default()
        }),
    }
}

/// Subsets grouped by identical port sets, addresses sorted, as upstream repacks them.
pub fn subsets(endpoints: &[service_pods::Endpoint]) -> (Vec<EndpointSubset>, bool) {
    let mut groups: BTreeMap<Vec<ResolvedPort>, (Vec<EndpointAddress>, Vec<EndpointAddress>)> =
        BTreeMap::new();
    let mut truncated = false;
    for (count, e) in endpoints
        .iter()
        .filter(|e| !e.terminating && !e.ports.is_empty())
        .enumerate()
    {
        if count >= MAX_ADDRESSES {
            truncated = true;
            break;
        }
        let mut ports = e.ports.clone();
        ports.sort();
        let entry = groups.entry(ports).or_default();
        if e.ready {
            entry.0.push(address(e));
        } else {
            entry.1.push(address(e));
        }
    }
    let subsets = groups
        .into_iter()
        .map(|(ports, (ready, not_ready))| EndpointSubset {
            addresses: (!ready.is_empty()).then_some(ready),
            not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
            ports: Some(
                ports
                    .into_iter()
                    .map(|p| EndpointPort {
                        name: p.name,
                        port: p.port,
                        protocol: Some(p.protocol),
                        app_protocol: p.app_protocol,
                    })
                    .collect(),
            ),
        })
        .collect();
    (subsets, truncated)
}

impl Controller {
    #[tracing::instrument(skip(self), fields(service = %k))]
    async fn sync(&self, k: &str) -> Result<(), ControllerError> {
        let (ns, name) = split_key(k);
        let api: Api<Endpoints> = Api::namespaced(self.ctx.client.clone(), ns);
        let Some(svc) = self.services.get(k) else {
            return match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => Ok(()),
                Err(e) if pods::is_not_found(&e) => Ok(()),
                Err(e) => Err(e.into()),
            };
        };
        // Services without a selector have user-managed Endpoints.
        if svc
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .is_none_or(|m| m.is_empty())
        {
            return Ok(());
        }
        let (subsets, truncated) = subsets(&service_pods::endpoints_for(&svc, &self.pods));
        let mut labels = svc.labels().clone();
        labels.insert(
            "endpoints.kubernetes.io/managed-by".into(),
            "endpoint-controller".into(),
        );
        let current = self.endpoints.get(k);
        let mut annotations = current
            .as_ref()
            .and_then(|e| e.metadata.annotations.clone())
            .unwrap_or_default();
        if truncated {
            annotations.insert(OVER_CAPACITY.into(), "truncated".into());
        } else {
            annotations.remove(OVER_CAPACITY);
        }
        let subsets = (!subsets.is_empty()).then_some(subsets);
        let desired_annotations = (!annotations.is_empty()).then_some(annotations);
        if let Some(cur) = &current {
            if cur.subsets == subsets
                && cur.metadata.labels.as_ref() == Some(&labels)
                && cur.metadata.annotations == desired_annotations
            {
                return Ok(());
            }
        }
        let mut ep = current.as_deref().cloned().unwrap_or_else(|| Endpoints {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(ns.to_string()),
                ..Default::default()
            },
            ..Default::default()
        });
        ep.subsets = subsets;
        ep.metadata.labels = Some(labels);
        ep.metadata.annotations = desired_annotations;
        let result = if current.is_some() {
            api.replace(name, &PostParams::default(), &ep).await
        } else {
            api.create(&PostParams::default(), &ep).await
        };
        match result {
            Ok(_) => Ok(()),
            // The namespace is going away: nothing to keep up to date.
            Err(kube::Error::Api(e)) if e.code == 403 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
