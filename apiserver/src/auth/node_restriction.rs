//! NodeRestriction: what the Node authorizer cannot see without the request body. A kubelet
//! creates only its own Node and Lease, only mirror pods bound to itself that use no
//! secrets, configmaps or service accounts, and only service-account tokens bound to a pod
//! on its node.

use serde_json::Value;

use super::{authorizer::Attributes, reviews};
use crate::{errors::ApiError, registry::catalog, server::ApiServer};

const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Whether a request by a node must have its body checked.
pub fn applies(attrs: &Attributes) -> bool {
    attrs.resource_request
        && attrs.verb == "create"
        && attrs.user.node_name().is_some()
        && matches!(
            (
                attrs.api_group.as_str(),
                attrs.resource.as_str(),
                attrs.subresource.as_str()
            ),
            ("", "nodes", "")
                | ("", "pods", "")
                | ("coordination.k8s.io", "leases", "")
                | ("", "serviceaccounts", "token")
        )
}

fn refuse(attrs: &Attributes, name: &str, why: String) -> ApiError {
    let qualified = if attrs.api_group.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}.{}", attrs.resource, attrs.api_group)
    };
    ApiError::forbidden(format!("{qualified} \"{name}\" is forbidden: {why}"))
}

/// Checks the body of a node's create.
pub fn check(
    server: &ApiServer,
    attrs: &Attributes,
    content_type: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    let Some(node) = attrs.user.node_name() else {
        return Ok(());
    };
    let obj = reviews::decode(content_type, body, &attrs.resource)?;
    let name = obj["metadata"]["name"].as_str().unwrap_or(&attrs.name);
    match attrs.resource.as_str() {
        "nodes" | "leases" if name != node => Err(refuse(
            attrs,
            name,
            format!(
                "node \"{node}\" is not allowed to modify {} \"{name}\"",
                attrs.resource
            ),
        )),
        "pods" => check_pod(attrs, node, name, &obj),
        "serviceaccounts" => check_token(server, attrs, node, &obj),
        _ => Ok(()),
    }
}

fn check_pod(attrs: &Attributes, node: &str, name: &str, pod: &Value) -> Result<(), ApiError> {
    if pod["metadata"]["annotations"][MIRROR_ANNOTATION].is_null() {
        return Err(refuse(
            attrs,
            name,
            format!("pod does not have \"{MIRROR_ANNOTATION}\" annotation, node \"{node}\" can only create mirror pods"),
        ));
    }
    if pod["spec"]["nodeName"].as_str() != Some(node) {
        return Err(refuse(
            attrs,
            name,
            format!("node \"{node}\" can only create pods with spec.nodeName set to itself"),
        ));
    }
    let spec = &pod["spec"];
    let uses_service_account = spec["serviceAccountName"]
        .as_str()
        .is_some_and(|s| !s.is_empty());
    let uses_objects = spec["volumes"].as_array().into_iter().flatten().any(|v| {
        v.get("secret").is_some()
            || v.get("configMap").is_some()
            || v.get("persistentVolumeClaim").is_some()
            || v.get("projected").is_some()
    }) || ["containers", "initContainers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten())
        .any(|c| {
            c["envFrom"].as_array().is_some_and(|e| !e.is_empty())
                || c["env"].as_array().into_iter().flatten().any(|e| {
                    e["valueFrom"].get("secretKeyRef").is_some()
                        || e["valueFrom"].get("configMapKeyRef").is_some()
                })
        });
    if uses_service_account || uses_objects {
        return Err(refuse(
            attrs,
            name,
            format!("node \"{node}\" can not create pods that reference secrets, configmaps, persistentvolumeclaims or service accounts"),
        ));
    }
    Ok(())
}

fn check_token(
    server: &ApiServer,
    attrs: &Attributes,
    node: &str,
    request: &Value,
) -> Result<(), ApiError> {
    let bound = &request["spec"]["boundObjectRef"];
    if bound["kind"].as_str() != Some("Pod") {
        return Err(refuse(
            attrs,
            &attrs.name,
            format!("node \"{node}\" requested token not bound to a pod"),
        ));
    }
    let pod_name = bound["name"].as_str().unwrap_or_default();
    let pod = catalog::find("", "v1", "pods").and_then(|def| {
        let (obj, _) = server.cache(def).get(&def.key(&attrs.namespace, pod_name));
        serde_json::from_slice::<Value>(&obj?.raw).ok()
    });
    match pod {
        Some(p) if p["spec"]["nodeName"].as_str() == Some(node) => Ok(()),
        _ => Err(refuse(
            attrs,
            &attrs.name,
            format!("node \"{node}\" requested token bound to a pod scheduled on a different node"),
        )),
    }
}
