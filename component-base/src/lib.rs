//! What every ferrokube daemon shares: component configuration, logging, the metrics registry,
//! health checks, TLS material and the HTTP(S) serving loop, and graceful shutdown.

pub mod client;
pub mod component_config;
pub mod config;
pub mod event_recorder;
pub mod health;
pub mod informer;
pub mod leader_election;
pub mod logging;
pub mod metrics;
pub mod serve;
pub mod signals;
pub mod tls;
pub mod workqueue;
