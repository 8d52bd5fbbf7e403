//! ServiceAccount controller: every active namespace has a `default` ServiceAccount, recreated
//! if it is deleted.

use std::sync::Arc;

use component_base::informer::Change;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::{
    api::{Api, ObjectMeta, PostParams},
    ResourceExt,
};

use super::{enqueue_namespaces, namespace_active, Context, ControllerError, Running};

/// The accounts every namespace gets (upstream's `--service-accounts` default).
const ACCOUNTS: &[&str] = &["default"];

pub fn init(ctx: &Arc<Context>) -> Result<Running, ControllerError> {
    let namespaces = ctx.informers.informer::<Namespace>();
    let accounts = ctx.informers.informer::<ServiceAccount>();
    let queue = ctx.queue::<String>("serviceaccount");
    enqueue_namespaces(&namespaces, &queue);
    let q = queue.clone();
    accounts.add_handler(move |change| {
        if let Change::Deleted(sa) = change {
            if ACCOUNTS.contains(&sa.name_any().as_str()) {
                q.add(sa.namespace().unwrap_or_default());
            }
        }
    });
    let ctx = ctx.clone();
    Ok(Box::pin(async move {
        namespaces.wait_synced().await;
        accounts.wait_synced().await;
        let workers = ctx.options.concurrent_serviceaccount_token_syncs;
        queue
            .run_workers(workers, move |ns: String| {
                let (ctx, namespaces, accounts) =
                    (ctx.clone(), namespaces.clone(), accounts.clone());
                async move { sync(&ctx, &namespaces, &accounts, &ns).await.map(|()| None) }
            })
            .await;
    }))
}

#[tracing::instrument(skip_all, fields(namespace = %ns))]
async fn sync(
    ctx: &Context,
    namespaces: &component_base::informer::Informer<Namespace>,
    accounts: &component_base::informer::Informer<ServiceAccount>,
    ns: &str,
) -> Result<(), ControllerError> {
    if !namespace_active(namespaces, ns) {
        return Ok(());
    }
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), ns);
    for name in ACCOUNTS {
        if accounts.get(&format!("{ns}/{name}")).is_some() {
            continue;
        }
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &sa).await {
            Ok(_) => tracing::info!(account = name, "created service account"),
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            // A terminating namespace refuses new content; its deletion will be seen shortly.
            Err(kube::Error::Api(e)) if e.code == 403 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
