//! Node IPAM (`--allocate-node-cidrs`): carves `--cluster-cidr` into blocks of
//! `--node-cidr-mask-size` and gives every node one block as `spec.podCIDR`, never the same
//! block to two nodes. Blocks return to the pool when their node is deleted.

use std::{collections::HashSet, net::Ipv4Addr, sync::Arc};

use component_base::informer::{Change, Informer};
use k8s_openapi::api::core::v1::Node;
use kube::{
    api::{Api, Patch, PatchParams},
    ResourceExt,
};
use serde_json::json;
use std::sync::Mutex;

use super::{Context, ControllerError, Running};

/// An IPv4 cluster CIDR divided into equal node blocks.
#[derive(Debug, Clone)]
pub struct CidrSet {
    base: u32,
    cluster_bits: u8,
    node_bits: u8,
}

impl CidrSet {
    pub fn parse(cluster_cidr: &str, node_mask: u8) -> Result<CidrSet, ControllerError> {
        let bad = || {
            ControllerError::Invalid(format!("--cluster-cidr {cluster_cidr:?} with --node-cidr-mask-size {node_mask} is not a usable IPv4 CIDR"))
        };
        let (addr, bits) = cluster_cidr.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let cluster_bits: u8 = bits.parse().map_err(|_| bad())?;
        if cluster_bits > 32
            || node_mask > 32
            || node_mask < cluster_bits
            || node_mask - cluster_bits > 24
        {
            return Err(bad());
        }
        let mask = if cluster_bits == 0 {
            0
        } else {
            u32::MAX << (32 - cluster_bits)
        };
        Ok(CidrSet {
            base: u32::from(addr) & mask,
            cluster_bits,
            node_bits: node_mask,
        })
    }

    fn blocks(&self) -> u32 {
        1 << (self.node_bits - self.cluster_bits)
    }

    fn block(&self, i: u32) -> String {
        let size = if self.node_bits == 32 {
            1
        } else {
            1u32 << (32 - self.node_bits)
        };
        format!(
            "{}/{}",
            Ipv4Addr::from(self.base + i * size),
            self.node_bits
        )
    }

    fn index_of(&self, cidr: &str) -> Option<u32> {
        (0..self.blocks()).find(|i| self.block(*i) == cidr)
    }
}

struct Allocator {
    set: CidrSet,
    used: HashSet<u32>,
}

impl Allocator {
    fn occupy(&mut self, cidr: &str) {
        if let Some(i) = self.set.index_of(cidr) {
            self.used.insert(i);
        }
    }

    fn release(&mut self, cidr: &str) {
        if let Some(i) = self.set.index_of(cidr) {
            self.used.remove(&i);
        }
    }

    fn allocate(&mut self) -> Option<String> {
        let i = (0..self.set.blocks()).find(|i| !self.used.contains(i))?;
        self.used.insert(i);
        Some(self.set.block(i))
    }
}

pub fn init(ctx: &Arc<Context>) -> Result<Running, ControllerError> {
    let options = &ctx.options;
    let cidr = options.cluster_cidr.clone().ok_or_else(|| {
        ControllerError::Invalid("--allocate-node-cidrs needs --cluster-cidr".into())
    })?;
    let set = CidrSet::parse(&cidr, options.node_cidr_mask_size)?;
    let allocator = Arc::new(Mutex::new(Allocator {
        set,
        used: HashSet::new(),
    }));
    let nodes: Arc<Informer<Node>> = ctx.informers.informer::<Node>();
    let queue = ctx.queue::<String>("node_ipam");
    let (q, a) = (queue.clone(), allocator.clone());
    nodes.add_handler(move |change| {
        let mut alloc = a.lock().unwrap_or_else(|e| e.into_inner());
        match change {
            Change::Added(n) | Change::Updated { new: n, .. } => {
                match n.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()) {
                    Some(cidr) => alloc.occupy(cidr),
                    None => q.add(n.name_any()),
                }
            }
            Change::Deleted(n) => {
                if let Some(cidr) = n.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()) {
                    alloc.release(cidr);
                }
            }
        }
    });
    let ctx = ctx.clone();
    Ok(Box::pin(async move {
        nodes.wait_synced().await;
        queue
            .run_workers(1, move |name: String| {
                let (ctx, nodes, allocator) = (ctx.clone(), nodes.clone(), allocator.clone());
                async move { assign(&ctx, &nodes, &allocator, &name).await.map(|()| None) }
            })
            .await;
    }))
}

#[tracing::instrument(skip(ctx, nodes, allocator), fields(node = %name))]
async fn assign(
    ctx: &Context,
    nodes: &Informer<Node>,
    allocator: &Mutex<Allocator>,
    name: &str,
) -> Result<(), ControllerError> {
    let Some(node) = nodes.get(name) else {
        return Ok(());
    };
    if node
        .spec
        .as_ref()
        .and_then(|s| s.pod_cidr.as_ref())
        .is_some()
    {
        return Ok(());
    }
    let cidr = allocator
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .allocate()
        .ok_or_else(|| {
            ControllerError::Invalid("the cluster CIDR has no free node block left".into())
        })?;
    let api: Api<Node> = Api::all(ctx.client.clone());
    let patch = json!({ "spec": { "podCIDR": cidr, "podCIDRs": [cidr] } });
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            tracing::info!(%cidr, "allocated pod CIDR");
            Ok(())
        }
        Err(e) => {
            allocator
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .release(&cidr);
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_distinct_and_reused_after_release() {
        let mut a = Allocator {
            set: CidrSet::parse("10.244.0.0/16", 24).unwrap(),
            used: HashSet::new(),
        };
        a.occupy("10.244.0.0/24");
        assert_eq!(a.allocate().as_deref(), Some("10.244.1.0/24"));
        assert_eq!(a.allocate().as_deref(), Some("10.244.2.0/24"));
        a.release("10.244.1.0/24");
        assert_eq!(a.allocate().as_deref(), Some("10.244.1.0/24"));
        let mut tiny = Allocator {
            set: CidrSet::parse("10.0.0.0/30", 31).unwrap(),
            used: HashSet::new(),
        };
        assert!(tiny.allocate().is_some() && tiny.allocate().is_some());
        assert!(tiny.allocate().is_none());
        assert!(CidrSet::parse("10.0.0.0/24", 16).is_err());
    }
}
