//! The node heartbeat: a Lease named after the node in `kube-node-lease`, renewed every quarter
//! of its duration (10 s for the default 40 s), owned by the Node so it goes when the node does.

use k8s_openapi::{
    api::{
        coordination::v1::{Lease, LeaseSpec},
        core::v1::Node,
    },
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference},
};
use kube::{api::PostParams, Api};
use tokio::sync::watch;

/// The namespace of node leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Renews the node's Lease until `shutdown` flips.
pub async fn run(
    client: kube::Client,
    node: String,
    duration_seconds: i32,
    mut shutdown: watch::Receiver<bool>,
) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), NODE_LEASE_NAMESPACE);
    let nodes: Api<Node> = Api::all(client);
    let interval = std::time::Duration::from_secs_f64(f64::from(duration_seconds.max(4)) / 4.0);
    let mut tick = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(err) = renew(&leases, &nodes, &node, duration_seconds).await {
            tracing::warn!(node = %node, %err, "renewing node lease");
        }
    }
}

async fn renew(
    leases: &Api<Lease>,
    nodes: &Api<Node>,
    node: &str,
    duration: i32,
) -> Result<(), kube::Error> {
    let now = MicroTime(jiff::Timestamp::now());
    match leases.get_opt(node).await? {
        Some(mut lease) => {
            let spec = lease.spec.get_or_insert_with(Default::default);
            spec.holder_identity = Some(node.to_string());
            spec.lease_duration_seconds = Some(duration);
            spec.renew_time = Some(now);
            leases.replace(node, &PostParams::default(), &lease).await?;
        }
        None => {
            // Owned by the Node once it exists, so deleting the node deletes its lease.
            let owner = nodes.get_opt(node).await?.and_then(|n| {
                Some(OwnerReference {
                    api_version: "v1".into(),
                    kind: "Node".into(),
                    name: node.to_string(),
                    uid: n.metadata.uid?,
                    ..Default::default()
                })
            });
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(node.to_string()),
                    namespace: Some(NODE_LEASE_NAMESPACE.into()),
                    owner_references: owner.map(|o| vec![o]),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(node.to_string()),
                    lease_duration_seconds: Some(duration),
                    renew_time: Some(now),
                    ..Default::default()
                }),
            };
            leases.create(&PostParams::default(), &lease).await?;
        }
    }
    Ok(())
}
