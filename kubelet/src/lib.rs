//! ferrokube's kubelet: the node agent that runs the pods bound to its node on any CRI runtime
//! (containerd, CRI-O), reports the node and its pods to the apiserver, runs static pods from
//! manifest files, and serves the node API on port 10250.

pub mod admission;
pub mod auth;
pub mod backoff;
pub mod container;
pub mod cri;
pub mod dns;
pub mod envvars;
pub mod eviction;
pub mod host;
pub mod kubelet;
pub mod lease;
pub mod logs;
pub mod metrics;
pub mod node_status;
pub mod options;
pub mod pleg;
pub mod pod_status;
pub mod pod_workers;
pub mod probes;
pub mod quantity;
pub mod runtime_pod;
pub mod sandbox;
pub mod server;
pub mod static_pods;
pub mod stats;
pub mod streaming;
pub mod sync;
pub mod token;
pub mod volumes;
pub mod websocket;
