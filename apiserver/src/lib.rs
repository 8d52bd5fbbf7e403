//! ferrokube's kube-apiserver: the Kubernetes API over etcd.

pub mod admission;
pub mod auth;
pub mod endpoints;
pub mod errors;
pub mod metrics;
pub mod options;
pub mod registry;
pub mod server;
pub mod storage;
