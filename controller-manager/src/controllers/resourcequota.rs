//! ResourceQuota controller: keeps every quota's `status.hard` and `status.used` current —
//! object counts (`pods`, `services`, `count/deployments.apps`, …) and the compute requests and
//! limits of non-terminal pods — so that admission can compare new objects against them.

use std::{collections::BTreeMap, sync::Arc};

use component_base::{
    informer::{key_of, split_key, Change, Informer},
    workqueue::WorkQueue,
};
use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
        batch::v1::{CronJob, Job},
        core::v1::{ConfigMap, Pod, ResourceQuota, ResourceQuotaStatus, Secret, Service},
    },
    apimachinery::pkg::api::resource::Quantity,
};
use kube::{
    api::{Api, PostParams},
    Resource,
};
use serde::de::DeserializeOwned;

use super::{Context, ControllerError, Running};
use crate::pods;

/// A quantity in nano-units, enough for both millicores and exbibytes.
pub fn parse_quantity(q: &str) -> Option<i128> {
    apimachinery::quantity::parse_scaled(q, 9)
}

/// Formats nano-units the way quantities are usually written: whole units, else milli-units
/// (rounded up), as upstream canonicalises.
pub fn format_quantity(nanos: i128) -> String {
    if nanos % 1_000_000_000 == 0 {
        (nanos / 1_000_000_000).to_string()
    } else {
        format!("{}m", (nanos + 999_999).div_euclid(1_000_000))
    }
}

/// The total of `name` (e.g. `cpu`) over a pod's containers: the larger of the sum of its
/// regular containers and its largest init container, plus the pod overhead.
fn pod_resource(pod: &Pod, name: &str, limits: bool) -> i128 {
    let Some(spec) = pod.spec.as_ref() else {
        return 0;
    };
    let pick = |r: Option<&k8s_openapi::api::core::v1::ResourceRequirements>| -> i128 {
        let map = r.and_then(|r| {
            if limits {
                r.limits.as_ref()
            } else {
                r.requests.as_ref()
            }
        });
        map.and_then(|m| m.get(name))
            .and_then(|q| parse_quantity(&q.0))
            .unwrap_or(0)
    };
    let regular: i128 = spec
        .containers
        .iter()
        .map(|c| pick(c.resources.as_ref()))
        .sum();
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| pick(c.resources.as_ref()))
        .max()
        .unwrap_or(0);
    let overhead = spec
        .overhead
        .as_ref()
        .and_then(|o| o.get(name))
        .and_then(|q| parse_quantity(&q.0))
        .unwrap_or(0);
    regular.max(init) + overhead
}

/// Counts objects of one kind per namespace.
struct Counted {
    names: Vec<String>,
    count: Box<dyn Fn(&str) -> usize + Send + Sync>,
    synced: Box<dyn Fn() -> bool + Send + Sync>,
}

fn counted<K>(
    ctx: &Context,
    queue: &WorkQueue<String>,
    quotas: &Arc<Informer<ResourceQuota>>,
    names: &[&str],
) -> Counted
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let informer = ctx.informers.informer::<K>();
    let (q, quotas_for_handler) = (queue.clone(), quotas.clone());
    informer.add_handler(move |change| {
        let (Change::Added(o) | Change::Updated { new: o, .. } | Change::Deleted(o)) = change;
        if let Some(ns) = o.meta().namespace.as_deref() {
            for quota in quotas_for_handler.list_in(ns) {
                q.add(key_of(quota.as_ref()));
            }
        }
    });
    let probe = informer.clone();
    Counted {
        names: names.iter().map(|n| n.to_string()).collect(),
        count: Box::new(move |ns| informer.list_in(ns).len()),
        synced: Box::new(move || probe.has_synced()),
    }
}

pub fn init(ctx: &Arc<Context>) -> Result<Running, ControllerError> {
    let quotas = ctx.informers.informer::<ResourceQuota>();
    let queue = ctx.queue::<String>("resource_quota_primary");
    let q = queue.clone();
    quotas.add_handler(move |change| {
        if let Change::Added(o) | Change::Updated { new: o, .. } = change {
            q.add(key_of(o.as_ref()));
        }
    });
    let pods = ctx.informers.informer::<Pod>();
    let counts = Arc::new(vec![
        counted::<Pod>(ctx, &queue, &quotas, &["count/pods"]),
        counted::<Service>(ctx, &queue, &quotas, &["services", "count/services"]),
        counted::<ConfigMap>(ctx, &queue, &quotas, &["configmaps", "count/configmaps"]),
        counted::<Secret>(ctx, &queue, &quotas, &["secrets", "count/secrets"]),
        counted::<ResourceQuota>(
            ctx,
            &queue,
            &quotas,
            &["resourcequotas", "count/resourcequotas"],
        ),
        counted::<Deployment>(ctx, &queue, &quotas, &["count/deployments.apps"]),
        counted::<ReplicaSet>(ctx, &queue, &quotas, &["count/replicasets.apps"]),
        counted::<StatefulSet>(ctx, &queue, &quotas, &["count/statefulsets.apps"]),
        counted::<DaemonSet>(ctx, &queue, &quotas, &["count/daemonsets.apps"]),
        counted::<Job>(ctx, &queue, &quotas, &["count/jobs.batch"]),
        counted::<CronJob>(ctx, &queue, &quotas, &["count/cronjobs.batch"]),
    ]);
    let ctx = ctx.clone();
    Ok(Box::pin(async move {
        quotas.wait_synced().await;
        while !counts.iter().all(|c| (c.synced)()) {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        queue
            .run_workers(5, move |k: String| {
                let (ctx, quotas, pods, counts) =
                    (ctx.clone(), quotas.clone(), pods.clone(), counts.clone());
                async move { sync(&ctx, &quotas, &pods, &counts, &k).await.map(|()| None) }
            })
            .await;
    }))
}

#[tracing::instrument(skip(ctx, quotas, pods, counts), fields(quota = %k))]
async fn sync(
    ctx: &Context,
    quotas: &Informer<ResourceQuota>,
    pods: &Informer<Pod>,
    counts: &[Counted],
    k: &str,
) -> Result<(), ControllerError> {
    let Some(quota) = quotas.get(k) else {
        return Ok(());
    };
    let (ns, name) = split_key(k);
    let hard = quota
        .spec
        .as_ref()
        .and_then(|s| s.hard.clone())
        .unwrap_or_default();
    let live: Vec<Arc<Pod>> = pods
        .list_in(ns)
        .into_iter()
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .collect();
    let mut used = BTreeMap::new();
    for resource in hard.keys() {
        let value: Option<i128> = match resource.as_str() {
            "pods" => Some(live.len() as i128 * 1_000_000_000),
            "requests.cpu" | "cpu" => {
                Some(live.iter().map(|p| pod_resource(p, "cpu", false)).sum())
            }
            "requests.memory" | "memory" => {
                Some(live.iter().map(|p| pod_resource(p, "memory", false)).sum())
            }
            "requests.ephemeral-storage" | "ephemeral-storage" => Some(
                live.iter()
                    .map(|p| pod_resource(p, "ephemeral-storage", false))
                    .sum(),
            ),
            "limits.cpu" => Some(live.iter().map(|p| pod_resource(p, "cpu", true)).sum()),
            "limits.memory" => Some(live.iter().map(|p| pod_resource(p, "memory", true)).sum()),
            other => counts
                .iter()
                .find(|c| c.names.iter().any(|n| n == other))
                .map(|c| (c.count)(ns) as i128 * 1_000_000_000),
        };
        if let Some(v) = value {
            used.insert(resource.clone(), Quantity(format_quantity(v)));
        }
    }
    let status = ResourceQuotaStatus {
        hard: Some(hard),
        used: Some(used),
    };
    if quota.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let mut updated = (*quota).clone();
    updated.status = Some(status);
    let api: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), ns);
    match api
        .replace_status(name, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if pods::is_conflict(&e) || pods::is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_parse_and_format() {
        assert_eq!(parse_quantity("100m"), Some(100_000_000));
        assert_eq!(parse_quantity("2"), Some(2_000_000_000));
        assert_eq!(parse_quantity("1Ki"), Some(1024 * 1_000_000_000));
        assert_eq!(parse_quantity("1.5G"), Some(1_500_000_000 * 1_000_000_000));
        assert_eq!(parse_quantity("1e3"), Some(1000 * 1_000_000_000));
        assert_eq!(parse_quantity("x"), None);
        assert_eq!(format_quantity(1_500_000_000), "1500m");
        assert_eq!(format_quantity(3_000_000_000), "3");
    }

    #[test]
    fn pod_requests_take_the_larger_of_containers_and_init() {
        let pod: Pod = serde_json::from_value(json!({ "spec": {
            "containers": [
                { "name": "a", "resources": { "requests": { "cpu": "100m" }, "limits": { "cpu": "1" } } },
                { "name": "b", "resources": { "requests": { "cpu": "200m" } } },
            ],
            "initContainers": [{ "name": "i", "resources": { "requests": { "cpu": "500m" } } }],
        }}))
        .unwrap();
        assert_eq!(format_quantity(pod_resource(&pod, "cpu", false)), "500m");
        assert_eq!(format_quantity(pod_resource(&pod, "cpu", true)), "1");
    }
}
