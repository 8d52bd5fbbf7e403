//! ferrokube's kube-scheduler: assigns pending pods to nodes with upstream's scheduling
//! framework (queue, cache, filter and score plugins, preemption), and explains every decision.

pub mod app;
pub mod cache;
pub mod config;
pub mod explain;
pub mod framework;
pub mod informers;
pub mod metrics;
pub mod options;
pub mod plugins;
pub mod preemption;
pub mod queue;
pub mod resources;
pub mod scheduler;
pub mod selectors;
pub mod server;
pub mod workloads;
