//! What every ferrokube daemon shares: component configuration, logging, the metrics registry,
//! health checks, TLS material and the HTTP(S) serving loop, and graceful shutdown.

pub mod config;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod serve;
pub mod signals;
pub mod tls;
