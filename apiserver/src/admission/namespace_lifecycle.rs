//! NamespaceLifecycle: nothing is created in a namespace that does not exist or is being
//! terminated.

use serde_json::json;

use crate::{
    errors::{ApiError, ApiResult},
    registry::{catalog, namespace, Store},
    server::ApiServer,
};

/// Checks that namespace `ns` accepts new objects of a namespaced resource.
pub async fn check_create(server: &ApiServer, ns: &str) -> ApiResult<()> {
    let Some(def) = catalog::find("", "v1", "namespaces") else {
        return Ok(());
    };
    // The cache is usually current; a miss falls back to etcd so that a namespace created a
    // moment ago is found.
    let cached = server.cache(def).get(ns).0.and_then(|o| o.value().ok());
    let found = match cached {
        Some(v) => Some(v),
        None => match Store::new(server, def).read("", ns).await {
            Ok((v, _)) => Some(v),
            Err(e) if e.code == 404 => None,
            Err(e) => return Err(e),
        },
    };
    match found {
        None => Err(ApiError::not_found(def, ns)),
        Some(v) if namespace::is_terminating(&v) => {
            let mut err = ApiError::forbidden(format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ));
            err.details = Some(json!({
                "name": ns, "kind": "namespaces",
                "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}],
            }));
            Err(err)
        }
        Some(_) => Ok(()),
    }
}
