//! What exists from start-up, as upstream's bootstrap controllers create it: the system
//! namespaces, the system priority classes, and the `kubernetes` Service in `default` whose
//! endpoints are the live apiserver addresses (each apiserver keeps a lease key under
//! `masterleases/`, and every apiserver reconciles the endpoints from those keys).

use std::{net::IpAddr, time::Duration};

use serde_json::{json, Value};

use super::{catalog, meta, store::Store};
use crate::{errors::ApiResult, server::ApiServer};

/// Namespaces created at start-up.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

fn def(group: &str, plural: &str) -> ApiResult<&'static crate::registry::ResourceDef> {
    catalog::find(group, "v1", plural)
        .ok_or_else(|| crate::errors::ApiError::internal(format!("no resource {plural}")))
}

/// Creates `obj` unless it exists.
async fn ensure(
    server: &ApiServer,
    group: &str,
    plural: &str,
    ns: &str,
    obj: Value,
) -> ApiResult<()> {
    let store = Store::new(server, def(group, plural)?);
    match store.read(ns, meta::name(&obj)).await {
        Ok(_) => return Ok(()),
        Err(e) if e.code == 404 => {}
        Err(e) => return Err(e),
    }
    match store.create(ns, obj, &Default::default()).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates the system namespaces, priority classes and the `kubernetes` Service.
pub async fn run(server: &ApiServer) -> ApiResult<()> {
    for ns in SYSTEM_NAMESPACES {
        ensure(
            server,
            "",
            "namespaces",
            "",
            json!({"metadata": {"name": ns}}),
        )
        .await?;
    }
    for (name, value, description) in [
        ("system-node-critical", 2_000_001_000, "Used for system critical pods that must not be moved from their current node."),
        ("system-cluster-critical", 2_000_000_000, "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."),
    ] {
        ensure(
            server,
            "scheduling.k8s.io",
            "priorityclasses",
            "",
            json!({"metadata": {"name": name}, "value": value, "description": description}),
        )
        .await?;
    }
    let ip = server.config.service_ip_range.first().to_string();
    ensure(
        server,
        "",
        "services",
        "default",
        json!({
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": ip,
                "sessionAffinity": "None",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": server.config.secure_port}],
            },
        }),
    )
    .await
}

fn lease_prefix(server: &ApiServer) -> String {
    format!("{}masterleases/", server.root)
}

/// Keeps this apiserver's lease key fresh and the `kubernetes` endpoints equal to the set of
/// apiservers whose keys are fresh.
pub async fn reconcile_endpoints(server: std::sync::Arc<ApiServer>, address: IpAddr) {
    const TTL: i64 = 15;
    loop {
        let now = chrono::Utc::now().timestamp();
        let key = format!("{}{address}", lease_prefix(&server));
        if let Err(err) = server.etcd.put(&key, now.to_string().into_bytes()).await {
            tracing::warn!(%err, "renewing the apiserver lease");
        }
        match live_addresses(&server, now - TTL).await {
            Ok(addresses) => {
                if let Err(err) = write_endpoints(&server, &addresses).await {
                    tracing::warn!(error = %err.message, "updating the kubernetes endpoints");
                }
            }
            Err(err) => tracing::warn!(error = %err.message, "listing apiserver leases"),
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn live_addresses(server: &ApiServer, oldest: i64) -> ApiResult<Vec<String>> {
    let prefix = lease_prefix(server);
    let range = server.etcd.range(&prefix, None, 0, 0).await?;
    let mut live: Vec<String> = range
        .kvs
        .iter()
        .filter(|kv| {
            std::str::from_utf8(&kv.value)
                .ok()
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|t| t >= oldest)
        })
        .filter_map(|kv| kv.key.strip_prefix(&prefix).map(str::to_string))
        .collect();
    live.sort();
    Ok(live)
}

async fn write_endpoints(server: &ApiServer, addresses: &[String]) -> ApiResult<()> {
    let port = server.config.secure_port;
    let endpoints_def = def("", "endpoints")?;
    let store = Store::new(server, endpoints_def);
    let desired_subsets = json!([{
        "addresses": addresses.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>(),
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }]);
    let current = store
        .read("default", "kubernetes")
        .await
        .ok()
        .map(|(v, _)| v);
    if current.as_ref().and_then(|c| c.get("subsets")) != Some(&desired_subsets) {
        let mut obj = json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": desired_subsets,
        });
        if let Some(c) = &current {
            obj["metadata"]["resourceVersion"] = json!(meta::resource_version(c));
        }
        store
            .update("default", "kubernetes", obj, None, &Default::default())
            .await?;
    }
    let slice_def = def("discovery.k8s.io", "endpointslices")?;
    let slices = Store::new(server, slice_def);
    let desired = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
            "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4",
        "endpoints": addresses.iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}})).collect::<Vec<_>>(),
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    });
    match slices.read("default", "kubernetes").await {
        Ok((current, _)) => {
            if current.get("endpoints") != desired.get("endpoints")
                || current.get("ports") != desired.get("ports")
            {
                let mut obj = desired;
                obj["metadata"]["resourceVersion"] = json!(meta::resource_version(&current));
                slices
                    .update("default", "kubernetes", obj, None, &Default::default())
                    .await?;
            }
        }
        Err(e) if e.code == 404 => {
            slices
                .create("default", desired, &Default::default())
                .await?;
        }
        Err(e) => return Err(e),
    }
    Ok(())
}
