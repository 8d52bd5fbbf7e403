//! Root CA publisher: every active namespace has a `kube-root-ca.crt` ConfigMap holding the
//! cluster's CA bundle under `ca.crt`, so that pods can verify the apiserver.

use std::{collections::BTreeMap, sync::Arc};

use component_base::informer::Informer;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::{
    api::{Api, ObjectMeta, PostParams},
    ResourceExt,
};

use super::{changed, enqueue_namespaces, namespace_active, Context, ControllerError, Running};

const NAME: &str = "kube-root-ca.crt";
const KEY: &str = "ca.crt";
const DESCRIPTION: &str = "CA bundle for verifying the kube-apiserver through in-cluster endpoints such as kubernetes.default.svc; other uses are not guaranteed across distributions.";

pub fn init(ctx: &Arc<Context>) -> Result<Running, ControllerError> {
    let ca = ctx.root_ca.clone().ok_or_else(|| {
        ControllerError::Invalid(
            "no root CA: set --root-ca-file or a kubeconfig certificate authority".into(),
        )
    })?;
    let namespaces = ctx.informers.informer::<Namespace>();
    let configmaps = ctx.informers.informer::<ConfigMap>();
    let queue = ctx.queue::<String>("root_ca_cert_publisher");
    enqueue_namespaces(&namespaces, &queue);
    let q = queue.clone();
    configmaps.add_handler(move |change| {
        let cm = changed(change);
        if cm.name_any() == NAME {
            q.add(cm.namespace().unwrap_or_default());
        }
    });
    let ctx = ctx.clone();
    Ok(Box::pin(async move {
        namespaces.wait_synced().await;
        configmaps.wait_synced().await;
        queue
            .run_workers(1, move |ns: String| {
                let (ctx, namespaces, configmaps, ca) = (
                    ctx.clone(),
                    namespaces.clone(),
                    configmaps.clone(),
                    ca.clone(),
                );
                async move {
                    sync(&ctx, &namespaces, &configmaps, &ca, &ns)
                        .await
                        .map(|()| None)
                }
            })
            .await;
    }))
}

#[tracing::instrument(skip_all, fields(namespace = %ns))]
async fn sync(
    ctx: &Context,
    namespaces: &Informer<Namespace>,
    configmaps: &Informer<ConfigMap>,
    ca: &str,
    ns: &str,
) -> Result<(), ControllerError> {
    if !namespace_active(namespaces, ns) {
        return Ok(());
    }
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    let data: BTreeMap<String, String> = [(KEY.to_string(), ca.to_string())].into();
    let result = match configmaps.get(&format!("{ns}/{NAME}")) {
        None => {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(NAME.into()),
                    annotations: Some(
                        [(
                            "kubernetes.io/description".to_string(),
                            DESCRIPTION.to_string(),
                        )]
                        .into(),
                    ),
                    ..Default::default()
                },
                data: Some(data),
                ..Default::default()
            };
            api.create(&PostParams::default(), &cm).await.map(|_| ())
        }
        Some(cm) if cm.data.as_ref() == Some(&data) => return Ok(()),
        Some(cm) => {
            let mut cm = (*cm).clone();
            cm.data = Some(data);
            api.replace(NAME, &PostParams::default(), &cm)
                .await
                .map(|_| ())
        }
    };
    match result {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 || e.code == 403 || e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
