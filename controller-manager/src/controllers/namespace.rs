//! Namespace controller: once a namespace is being deleted, deletes everything in it across
//! every namespaced resource the apiserver serves, reports progress in the namespace's status
//! conditions, and finally removes the `kubernetes` finalizer through `namespaces/finalize`.

use std::{sync::Arc, time::Duration};

use component_base::informer::{Change, Informer};
use k8s_openapi::{
    api::core::v1::{Namespace, NamespaceCondition},
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::{
    api::{Api, DeleteParams, DynamicObject, ListParams, PostParams},
    discovery::{verbs, Discovery, Scope},
    ResourceExt,
};

use super::{Context, ControllerError, Running};
use crate::pods;

const FINALIZER: &str = "kubernetes";

pub fn init(ctx: &Arc<Context>) -> Result<Running, ControllerError> {
    let namespaces = ctx.informers.informer::<Namespace>();
    let queue = ctx.queue::<String>("namespace");
    let q = queue.clone();
    namespaces.add_handler(move |change| {
        if let Change::Added(ns) | Change::Updated { new: ns, .. } = change {
            if ns.metadata.deletion_timestamp.is_some() {
                q.add(ns.name_any());
            }
        }
    });
    let ctx = ctx.clone();
    Ok(Box::pin(async move {
        namespaces.wait_synced().await;
        let workers = ctx.options.concurrent_namespace_syncs;
        queue
            .run_workers(workers, move |name: String| {
                let (ctx, namespaces) = (ctx.clone(), namespaces.clone());
                async move { sync(&ctx, &namespaces, &name).await }
            })
            .await;
    }))
}

/// What deleting the content left behind.
#[derive(Default)]
struct Remaining {
    /// `resource: count` for every resource with objects left.
    counts: Vec<String>,
    /// Finalizers those objects still carry.
    finalizers: Vec<String>,
    /// Resources that could not be listed or deleted.
    failures: Vec<String>,
}

async fn delete_content(ctx: &Context, ns: &str) -> Result<Remaining, ControllerError> {
    let discovery = Discovery::new(ctx.client.clone()).run().await?;
    let mut remaining = Remaining::default();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if caps.scope != Scope::Namespaced
                || !caps.supports_operation(verbs::LIST)
                || !caps.supports_operation(verbs::DELETE)
            {
                continue;
            }
            let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &ar);
            let items = match api.list(&ListParams::default()).await {
                Ok(list) => list.items,
                Err(e) if pods::is_not_found(&e) => continue,
                Err(e) => {
                    remaining.failures.push(format!("{}: {e}", ar.plural));
                    continue;
                }
            };
            if items.is_empty() {
                continue;
            }
            let params = DeleteParams::background();
            for item in &items {
                if item.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                match api.delete(&item.name_any(), &params).await {
                    Ok(_) => {}
                    Err(e) if pods::is_not_found(&e) => {}
                    Err(e) => {
                        remaining
                            .failures
                            .push(format!("{}/{}: {e}", ar.plural, item.name_any()))
                    }
                }
            }
            let left = api
                .list(&ListParams::default())
                .await
                .map(|l| l.items)
                .unwrap_or(items);
            if !left.is_empty() {
                let resource = if ar.group.is_empty() {
                    ar.plural.clone()
                } else {
                    format!("{}.{}", ar.plural, ar.group)
                };
                remaining
                    .counts
                    .push(format!("{resource} has {} resource instances", left.len()));
                for f in left.iter().flat_map(|o| o.finalizers().iter()) {
                    if !remaining.finalizers.contains(f) {
                        remaining
                            .finalizers
                            .push(format!("{f} in {} resource instances", left.len()));
                    }
                }
            }
        }
    }
    Ok(remaining)
}

fn condition(type_: &str, failed: bool, reason: &str, message: String) -> NamespaceCondition {
    NamespaceCondition {
        type_: type_.into(),
        status: if failed { "True" } else { "False" }.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: Some(Time(jiff::Timestamp::now())),
    }
}

#[tracing::instrument(skip(ctx, namespaces), fields(namespace = %name))]
async fn sync(
    ctx: &Context,
    namespaces: &Informer<Namespace>,
    name: &str,
) -> Result<Option<Duration>, ControllerError> {
    let Some(ns) = namespaces.get(name) else {
        return Ok(None);
    };
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(None);
    }
    let finalizers = ns
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default();
    if !finalizers.iter().any(|f| f == FINALIZER) {
        return Ok(None);
    }
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let remaining = delete_content(ctx, name).await?;
    let done = remaining.counts.is_empty() && remaining.failures.is_empty();
    let conditions = vec![
        condition(
            "NamespaceDeletionDiscoveryFailure",
            false,
            "ResourcesDiscovered",
            "All resources successfully discovered".into(),
        ),
        condition(
            "NamespaceDeletionGroupVersionParsingFailure",
            false,
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed".into(),
        ),
        if remaining.failures.is_empty() {
            condition(
                "NamespaceDeletionContentFailure",
                false,
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization".into(),
            )
        } else {
            condition(
                "NamespaceDeletionContentFailure",
                true,
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    remaining.failures.len(),
                    remaining.failures.join(", ")
                ),
            )
        },
        if remaining.counts.is_empty() {
            condition(
                "NamespaceContentRemaining",
                false,
                "ContentRemoved",
                "All content successfully removed".into(),
            )
        } else {
            condition(
                "NamespaceContentRemaining",
                true,
                "SomeResourcesRemain",
                format!(
                    "Some resources are remaining: {}",
                    remaining.counts.join(", ")
                ),
            )
        },
        if remaining.finalizers.is_empty() {
            condition(
                "NamespaceFinalizersRemaining",
                false,
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished".into(),
            )
        } else {
            condition(
                "NamespaceFinalizersRemaining",
                true,
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    remaining.finalizers.join(", ")
                ),
            )
        },
    ];
    let mut updated = (*ns).clone();
    let status = updated.status.get_or_insert_with(Default::default);
    let unchanged = status.conditions.as_ref().is_some_and(|old| {
        old.len() == conditions.len()
            && old
                .iter()
                .zip(&conditions)
                .all(|(a, b)| a.type_ == b.type_ && a.status == b.status && a.message == b.message)
    });
    if !unchanged {
        status.conditions = Some(conditions);
        match api
            .replace_status(name, &PostParams::default(), &updated)
            .await
        {
            Ok(fresh) => updated = fresh,
            Err(e) if pods::is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    if !done {
        // Objects with grace periods or finalizers take a while; look again shortly.
        return Ok(Some(Duration::from_secs(2)));
    }
    if let Some(spec) = updated.spec.as_mut() {
        spec.finalizers = Some(finalizers.into_iter().filter(|f| f != FINALIZER).collect());
    }
    match api
        .replace_subresource("finalize", name, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => {
            tracing::info!("namespace content removed; finalized");
            Ok(None)
        }
        Err(e) if pods::is_not_found(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
