//! ferrokube's kube-proxy: watches Services and EndpointSlices and makes Service IPs and node
//! ports reach endpoints, through nftables, iptables, or by forwarding traffic itself.

pub mod config;
pub mod conntrack;
pub mod exec;
pub mod healthcheck;
pub mod iptables;
pub mod metrics;
pub mod mode;
pub mod model;
pub mod net;
pub mod nftables;
pub mod options;
pub mod proxier;
pub mod server;
pub mod tracker;
pub mod userspace;
